"""``spd serve``: a small local web page over a Predictor. Standard library HTTP server, one
prediction at a time; every failure of a request becomes a message on the page, never a crash.

    GET  /                      the page
    GET  /example.png           a bundled example (a generated synthetic person)
    POST /predict               raw image bytes in the body -> JSON (panels, downloads, size)
    GET  /result/ID/NAME        a result file (kept for the last ``keep`` predictions)
"""

from __future__ import annotations

import html
import io
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import unquote

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.image_io import iuv_image, label_image, pil_to_tensor
from ..labels import label_space
from ..predict import Predictor
from ..predict.writers import keypoints_document
from ..vis.legend import legend
from ..vis.overlay import panels

log = logging.getLogger(__name__)


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def _png_bytes(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def _png(array: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """An RGB [H, W, 3] array, or class ids [H, W] with their palette, as PNG bytes."""
    return _png_bytes(label_image(array, palette) if palette is not None else Image.fromarray(np.ascontiguousarray(array)))


def example_image(size: tuple[int, int] = (384, 256), seed: int = 7) -> bytes:
    from ..data.synthetic import get_domain, render_person

    person = render_person(np.random.default_rng(seed), get_domain("A"), size)
    return _png(person.image)


class DemoApp:
    """The page's logic, independent of HTTP: ``predict(bytes, name) -> reply dict``."""

    def __init__(self, predictor: Predictor, name: str, max_bytes: int = 20 << 20, max_pixels: int = 40_000_000,
                 keep: int = 16, min_score: float = 0.2):
        self.predictor, self.name = predictor, name
        self.max_bytes, self.max_pixels, self.keep, self.min_score = max_bytes, max_pixels, keep, min_score
        self.results: OrderedDict[str, dict[str, tuple[str, bytes]]] = OrderedDict()
        self.lock = threading.Lock()
        self.page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8").replace(
            "__MODEL__", html.escape(name))
        self.example = example_image()

    def decode(self, body: bytes, filename: str):
        if not body:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{filename}: the upload is empty")
        if len(body) > self.max_bytes:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"{filename}: {len(body) / 1e6:.1f} MB is larger than the {self.max_bytes / 1e6:.1f} MB limit")
        try:
            with Image.open(io.BytesIO(body)) as im:
                if im.width * im.height > self.max_pixels:
                    raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                       f"{filename}: {im.width} x {im.height} px is more than the "
                                       f"{self.max_pixels / 1e6:.0f} megapixel limit")
                return pil_to_tensor(im)
        except RequestError:
            raise
        except UnidentifiedImageError as err:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{filename}: not an image (its format is not one that "
                                                       "Pillow reads)") from err
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{filename}: a damaged or unreadable image ({err})") from err

    def predict(self, body: bytes, filename: str) -> dict:
        image = self.decode(body, filename)
        start = time.perf_counter()
        with self.lock:
            result = self.predictor.predict_tensors([(image, filename)])[0]
        rgb = image.permute(1, 2, 0).numpy()
        space = self.predictor.model.config.parsing_space
        views = panels(rgb, result, space, self.min_score)
        files = {f"{kind}.png": ("image/png", _png(panel)) for kind, panel in views.items()}
        downloads = {}
        if result.parsing is not None:
            present = np.unique(result.parsing.numpy()).tolist()
            files["legend.png"] = ("image/png", _png(legend(space, 640, only=present)))
            files["parsing_labels.png"] = ("image/png", _png(result.parsing.numpy(), label_space(space).palette_array()))
            downloads["parsing (class ids)"] = "parsing_labels.png"
        if result.keypoints is not None:
            files["keypoints.json"] = ("application/json", json.dumps(keypoints_document(result)).encode())
            downloads["keypoints (JSON)"] = "keypoints.json"
        if result.dp_index is not None:
            files["iuv.png"] = ("image/png", _png_bytes(iuv_image(result.dp_index, result.dp_uv)))
            downloads["DensePose (IUV PNG)"] = "iuv.png"
        key = uuid.uuid4().hex
        with self.lock:
            self.results[key] = files
            while len(self.results) > self.keep:
                self.results.popitem(last=False)
        url = f"result/{key}/"
        return {"id": key, "width": image.shape[2], "height": image.shape[1],
                "seconds": round(time.perf_counter() - start, 2),
                "panels": {kind: f"{url}{kind}.png" for kind in views},
                "legend": url + "legend.png" if "legend.png" in files else None,
                "downloads": {label: url + name for label, name in downloads.items()}}

    def result_file(self, key: str, name: str) -> tuple[str, bytes]:
        with self.lock:
            files = self.results.get(key)
        if files is None or name not in files:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no result {key}/{name} (results are kept for the last "
                                                     f"{self.keep} predictions)")
        return files[name]


def make_handler(app: DemoApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "spd-serve"

        def log_message(self, fmt: str, *args) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def _send(self, status: HTTPStatus, mime: str, body: bytes, filename: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(body)))
            if filename:
                self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: HTTPStatus, doc: dict) -> None:
            self._send(status, "application/json", json.dumps(doc).encode())

        def _guarded(self, work) -> None:
            try:
                work()
            except RequestError as err:
                self._json(err.status, {"error": str(err)})
            except Exception as err:  # noqa: BLE001 - one bad request must not stop the server
                log.exception("request failed")
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(err).__name__}: {err}"})

        def do_GET(self) -> None:
            def work():
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", app.page.encode())
                elif path == "/example.png":
                    self._send(HTTPStatus.OK, "image/png", app.example)
                elif path.startswith("/result/") and path.count("/") == 3:
                    _, _, key, name = path.split("/")
                    mime, body = app.result_file(key, name)
                    self._send(HTTPStatus.OK, mime, body, name if not name.endswith(".png") or "labels" in name
                               or name == "iuv.png" else None)
                else:
                    raise RequestError(HTTPStatus.NOT_FOUND, f"no page {path}")
            self._guarded(work)

        def do_POST(self) -> None:
            def work():
                if self.path != "/predict":
                    raise RequestError(HTTPStatus.NOT_FOUND, f"no page {self.path}")
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    raise RequestError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
                name = unquote(self.headers.get("X-Filename", "upload"))[:200]
                if length > app.max_bytes:
                    self.close_connection = True  # do not read what will not be used
                    raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                       f"{name}: {length / 1e6:.1f} MB is larger than the "
                                       f"{app.max_bytes / 1e6:.1f} MB limit")
                self._json(HTTPStatus.OK, app.predict(self.rfile.read(length), name))
            self._guarded(work)

    return Handler


def make_server(app: DemoApp, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(app))
    server.daemon_threads = True
    return server
