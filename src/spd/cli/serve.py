"""``spd serve CHECKPOINT``: a local web page to try a model on one's own photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import PORT, number
from .predict import add_densepose_rcnn_flags, add_test_time_flags, load_predictor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a local web page: upload a photo, see parsing, skeleton and DensePose")
    p.add_argument("checkpoint", type=Path, help="a training checkpoint (.ckpt) or exported weights (.safetensors); or a "
                                                 "DensePose model-zoo .pkl (DensePose R-CNN: the DensePose panel and IUV)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=PORT, default=8000, help="0 picks a free port")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-mb", type=number(0, 2048, low_open=True), default=20.0,
                   help="largest upload accepted, in MB (0.01 to 2048)")
    add_test_time_flags(p)
    add_densepose_rcnn_flags(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve import DemoApp, make_server

    predictor = load_predictor(args, 1)
    app = DemoApp(predictor, f"{predictor.description} ({args.checkpoint.name})", max_bytes=int(args.max_mb * 1e6))
    try:
        server = make_server(app, args.host, args.port)
    except OSError as err:  # an address that does not resolve, is not this machine's, or is taken
        raise OSError(err.errno, f"--host {args.host} --port {args.port}: cannot listen there ({err.strerror or err})") from None
    host, port = server.server_address[:2]
    print(f"spd serve: http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
