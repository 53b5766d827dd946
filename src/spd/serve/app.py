"""``spd serve``: a small local web page over a Predictor. Standard library HTTP server, one
prediction at a time; every failure of a request becomes a message on the page, never a crash.

    GET  /                      the page
    GET  /example.png           a bundled example (a generated synthetic person)
    POST /predict               an image: the raw body, or a multipart form's file field
                                (curl -F image=@photo.jpg) -> JSON (panels, downloads, size)
    GET  /result/ID/NAME        a result file (kept for the last ``keep`` predictions)
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import mimetypes
import socket
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.image_io import label_image, pil_to_tensor
from ..data.synthetic import get_domain, render_person
from ..ops.arrays import as_numpy
from ..ops.errors import InputError
from ..predict.batched import BatchedPredictor
from ..predict.writers import OutputSpec, kinds_of
from ..vis.legend import legend
from ..vis.overlay import panels

log = logging.getLogger(__name__)


MIN_UPLOAD_BYTES = 10_000  # the smallest upload limit: a small JPEG photo is tens of kB


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
    person = render_person(np.random.default_rng(seed), get_domain("A"), size)
    return _png(person.image)


class DemoApp:
    """The page's logic, independent of HTTP: ``predict(bytes, name) -> reply dict``."""

    def __init__(self, predictor: BatchedPredictor, name: str, max_bytes: int = 20 << 20, max_pixels: int = 40_000_000,
                 keep: int = 16, min_score: float = 0.2, max_requests: int = 8, read_timeout: float = 30.0,
                 header_seconds: float = 20.0, min_upload_rate: float = 50_000.0):
        if not (read_timeout and read_timeout > 0 and header_seconds > 0 and min_upload_rate > 0):
            raise InputError(f"read_timeout, header_seconds and min_upload_rate must be > 0, got {read_timeout}, "
                             f"{header_seconds}, {min_upload_rate}")
        if max_bytes < MIN_UPLOAD_BYTES:
            raise InputError(f"--max-mb {max_bytes / 1e6:g}: the upload limit must be at least {MIN_UPLOAD_BYTES / 1e6:g} "
                             f"MB ({MIN_UPLOAD_BYTES} bytes); below it every photo would be refused")
        self.predictor, self.name = predictor, name
        self.max_bytes, self.max_pixels, self.keep, self.min_score = max_bytes, max_pixels, keep, min_score
        # Uploads held at once (each up to max_bytes in memory); more get 503 at once.
        self.max_requests, self.slots = max_requests, threading.BoundedSemaphore(max_requests)
        # A request's time is bounded as a whole, not only each read (a byte every few seconds would
        # hold a connection, and an upload slot, for ever): its request line and headers within
        # header_seconds, its body within header_seconds more plus one second per min_upload_rate
        # bytes received (Apache's mod_reqtimeout rule).
        self.read_timeout, self.header_seconds, self.min_upload_rate = read_timeout, header_seconds, min_upload_rate
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
        rgb = as_numpy(image.permute(1, 2, 0))
        space = self.predictor.parsing_space
        views = panels(rgb, result, space, self.min_score)
        files = {f"{kind}.png": ("image/png", _png(panel)) for kind, panel in views.items()}
        downloads = {}
        if result.parsing is not None:
            present = np.unique(as_numpy(result.parsing)).tolist()
            files["legend.png"] = ("image/png", _png(legend(space, 640, only=present)))
        # The files `spd predict` writes of each of the model's tasks (each task declares its own).
        with tempfile.TemporaryDirectory(prefix="spd_serve_") as folder:
            for kind, (_, writer) in kinds_of(self.predictor.tasks).items():
                if writer.needs_relabel or writer.needs_mask:  # options of spd predict
                    continue
                path = Path(folder) / f"image{writer.suffix}"
                writer.write(path, result, OutputSpec((kind,), space))
                files[path.name] = (mimetypes.guess_type(path.name)[0] or "application/octet-stream", path.read_bytes())
                downloads[writer.label or kind] = path.name
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
        timeout = app.read_timeout  # seconds a read of the request may wait: a body that never comes ends

        def log_message(self, fmt: str, *args) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def handle_one_request(self) -> None:
            # The request line and headers are read by the standard library: a timer closes the
            # connection's reading side when they take longer than header_seconds in all.
            self._deadline_lock, self._headers_in, self._headers_late = threading.Lock(), False, False
            timer = threading.Timer(app.header_seconds, self._stop_reading)
            timer.start()
            try:
                super().handle_one_request()
            finally:
                timer.cancel()

        def _stop_reading(self) -> None:
            with self._deadline_lock:
                if self._headers_in:
                    return
                self._headers_late = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RD)

        def parse_request(self) -> bool:
            parsed = super().parse_request()
            with self._deadline_lock:  # the headers are in; the body has a deadline of its own
                self._headers_in = True
                late = self._headers_late
            if late and parsed:  # cut short: what was read is not a whole request
                self.close_connection = True
                self.send_error(HTTPStatus.REQUEST_TIMEOUT, f"the request's headers took longer than "
                                                            f"{app.header_seconds:g} s")
                return False
            return parsed

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
                    # The files of `downloads` (named as spd predict's for an image called "image") are
                    # saved, not shown: a class-id PNG looks black.
                    self._send(HTTPStatus.OK, mime, body, name if name.startswith("image_") else None)
                else:
                    raise RequestError(HTTPStatus.NOT_FOUND, f"no page {path}")
            self._guarded(work)

        def do_POST(self) -> None:
            if not app.slots.acquire(blocking=False):
                # Every request gets an answer: one beyond what the server takes at once is refused now.
                self.close_connection = True
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"busy: {app.max_requests} uploads are in "
                                                                     "progress; try again in a moment"})
                return
            try:
                self._guarded(self._predict)
            finally:
                app.slots.release()

        def _predict(self) -> None:
            if self.path != "/predict":
                raise RequestError(HTTPStatus.NOT_FOUND, f"no page {self.path}")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                raise RequestError(HTTPStatus.LENGTH_REQUIRED, "the upload needs a Content-Length") from None
            name = unquote(self.headers.get("X-Filename", "upload"))[:200]
            if length < 0:
                self.close_connection = True
                raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {length} is negative")
            if length > app.max_bytes:
                self.close_connection = True  # do not read what will not be used
                raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                   f"{name}: {length / 1e6:.1f} MB is larger than the {app.max_bytes / 1e6:.1f} MB limit")
            body = self._read_body(length)
            body, name = upload_content(self.headers.get("Content-Type", ""), body, name)
            self._json(HTTPStatus.OK, app.predict(body, name))

        def _read_body(self, length: int) -> bytes:
            chunks, left, start = [], length, time.monotonic()
            try:
                while left > 0:
                    # Each read waits at most read_timeout, and never past the body's deadline.
                    allowed = app.header_seconds + (length - left) / app.min_upload_rate - (time.monotonic() - start)
                    if allowed <= 0:
                        break
                    self.connection.settimeout(min(self.timeout, allowed))
                    chunk = self.rfile.read1(min(left, 1 << 20))  # read1: one receive, not until n bytes
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
            except (TimeoutError, OSError):
                left = left or 1
            finally:
                with contextlib.suppress(OSError):
                    self.connection.settimeout(self.timeout)
            if left > 0:
                self.close_connection = True
                raise RequestError(HTTPStatus.REQUEST_TIMEOUT, f"the upload ended {left} bytes short of its "
                                                               f"Content-Length ({length}) after "
                                                               f"{time.monotonic() - start:.0f} s")
            return b"".join(chunks)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted (the default, 5, resets the rest)


def make_server(app: DemoApp, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    return Server((host, port), make_handler(app))


def upload_content(content_type: str, body: bytes, name: str) -> tuple[bytes, str]:
    """The image bytes of an upload and its name: the raw body, or the file field of a
    ``multipart/form-data`` form (``curl -F image=@photo.jpg``)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return body, name
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
    if not message.is_multipart():
        raise RequestError(HTTPStatus.BAD_REQUEST, "a multipart form without parts (or without its boundary)")
    parts = [p for p in message.iter_parts() if p.get_content_disposition() == "form-data"]
    files = [p for p in parts if p.get_filename()] or [p for p in parts if p.get_param("name", header="content-disposition")
                                                        == "image"]
    if not files:
        raise RequestError(HTTPStatus.BAD_REQUEST, "the form has no file field (send it as image=@photo.jpg)")
    return files[0].get_payload(decode=True) or b"", (files[0].get_filename() or name)[:200]
