"""``spd serve``: the page's logic, and the page driven in a real headless browser (Chromium)."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from predict_helpers import write_checkpoint
from spd.predict import Predictor
from spd.serve import DemoApp, make_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    checkpoint = write_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.ckpt")
    app = DemoApp(Predictor.from_checkpoint(checkpoint, device="cpu"), "test model", max_bytes=200_000,
                  max_pixels=1_000_000)
    httpd = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _post(url: str, body: bytes, name: str = "x.png") -> tuple[int, dict]:
    request = urllib.request.Request(url + "predict", data=body, headers={"X-Filename": name}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_uploads_get_results_or_a_clear_message(server):
    status, reply = _post(server, _png_bytes(np.zeros((30, 20, 3), np.uint8)), "person.png")
    assert status == 200 and (reply["width"], reply["height"]) == (20, 30)
    assert set(reply["panels"]) == {"parsing", "skeleton", "densepose"}
    with urllib.request.urlopen(server + reply["downloads"]["keypoints (JSON)"], timeout=30) as response:
        assert len(json.loads(response.read())["keypoints"]) == 48
    with urllib.request.urlopen(server + reply["panels"]["parsing"], timeout=30) as response:
        assert Image.open(io.BytesIO(response.read())).size == (20, 30)
    cases = [(b"", 400, "the upload is empty"), (_png_bytes(np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8))[:3000], 400,
              "damaged or unreadable image"),
             (b"%PDF-1.4 a document", 400, "not an image"), (b"\x00" * 300_000, 413, "larger than the"),
             (_png_bytes(np.zeros((1200, 1000), np.uint8)), 413, "megapixel limit")]
    for body, code, message in cases:
        status, reply = _post(server, body, "bad.bin")
        assert status == code and message in reply["error"] and "bad.bin" in reply["error"], reply
    status, _ = _post(server, _png_bytes(np.zeros((8, 8, 3), np.uint8)))
    assert status == 200  # still serving after the bad requests


def _chromium() -> str:
    path = os.environ.get("SPD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise AssertionError("the browser test needs Chromium: `bash scripts/run.sh test` installs Debian's chromium "
                             "package; elsewhere install it or set SPD_CHROMIUM to a Chromium executable")
    return path


def test_the_page_in_a_headless_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 40, 3), dtype=np.uint8)).save(photo)
    (tmp_path / "notes.png").write_text("not an image")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(server)
            expect(page.locator("#model")).to_have_text("test model")
            page.set_input_files("#file", str(photo))
            expect(page.locator("img.panel")).to_have_count(3, timeout=60_000)
            for kind in ("parsing", "skeleton", "densepose"):
                image = page.locator(f"img.panel[data-kind={kind}]")
                expect(image).to_be_visible()
                page.wait_for_function("(img) => img.complete && img.naturalWidth === 40", arg=image.element_handle())
            expect(page.locator("#status")).to_contain_text("photo.jpg: 40 x 60 px")
            expect(page.locator("#downloads a")).to_have_count(3)
            expect(page.locator("#legend")).to_be_visible()
            page.set_input_files("#file", str(tmp_path / "notes.png"))
            expect(page.locator("#status.error")).to_contain_text("notes.png: not an image")
            expect(page.locator("img.panel")).to_have_count(0)
            page.click("#example")
            expect(page.locator("img.panel")).to_have_count(3, timeout=60_000)
            expect(page.locator("#status")).to_contain_text("example.png: 256 x 384 px")
        finally:
            browser.close()


def _raw_request(url: str, payload: bytes, timeout: float = 30.0) -> bytes:
    """Sends bytes as they are (a client that lies) and returns whatever the server answers."""
    import socket

    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


@pytest.fixture
def strict_server(tmp_path):
    """A server with a short read timeout and room for two uploads at once."""
    checkpoint = write_checkpoint(tmp_path / "m.ckpt")
    app = DemoApp(Predictor.from_checkpoint(checkpoint, device="cpu"), "test model", max_bytes=200_000,
                  max_requests=2, read_timeout=1.0)
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", app
    httpd.shutdown()
    httpd.server_close()


def test_a_lying_or_negative_content_length_gets_an_answer_and_the_server_keeps_serving(strict_server):
    url, _ = strict_server
    short = _raw_request(url, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nonly this")
    assert short.startswith(b"HTTP/1.0 408") and b"bytes short of its Content-Length" in short
    negative = _raw_request(url, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    assert negative.startswith(b"HTTP/1.0 400") and b"negative" in negative
    missing = _raw_request(url, b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n")
    assert missing.startswith(b"HTTP/1.0 411")
    status, reply = _post(url, _png_bytes(np.zeros((30, 20, 3), np.uint8)))
    assert status == 200 and reply["width"] == 20


def test_every_concurrent_upload_gets_an_http_answer(strict_server):
    """20 uploads at once against room for 2: each gets its result or a 503, none a reset."""
    from concurrent.futures import ThreadPoolExecutor

    url, _ = strict_server
    body = _png_bytes(np.zeros((40, 30, 3), np.uint8))
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: _post(url, body), range(20)))
    statuses = sorted(status for status, _ in answers)
    # Predictions take turns, so more than two arrive while two are held: those are refused at once.
    assert set(statuses) == {200, 503}, statuses
    assert all("busy" in reply["error"] for status, reply in answers if status == 503)


def test_a_multipart_form_upload_is_accepted(strict_server):
    """What ``curl -F image=@photo.jpg URL/predict`` sends."""
    url, _ = strict_server
    image = _png_bytes(np.zeros((24, 16, 3), np.uint8))
    boundary = "spdboundary42"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "predict", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        reply = json.loads(response.read())
    assert (reply["width"], reply["height"]) == (16, 24)
    empty = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    request = urllib.request.Request(url + "predict", data=empty, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 400 and "no file field" in json.loads(caught.value.read())["error"]


@pytest.fixture
def slow_client_server(tmp_path):
    """Room for two uploads; each request's headers within 1 s, its body within 1 s more plus one
    second per 1000 bytes received."""
    checkpoint = write_checkpoint(tmp_path / "m.ckpt")
    app = DemoApp(Predictor.from_checkpoint(checkpoint, device="cpu"), "test model", max_bytes=200_000,
                  max_requests=2, read_timeout=5.0, header_seconds=1.0, min_upload_rate=1000.0)
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _trickle(url: str, head: bytes, stop: threading.Event, every: float = 0.3) -> None:
    """A slow client: ``head`` at once, then one byte every ``every`` seconds (each read of the
    server's finds something within its read timeout), until the server closes or ``stop``."""
    import socket

    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        try:
            while not stop.wait(every):
                sock.sendall(b"x")
        except OSError:  # the server closed the connection: what is wanted
            pass


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_clients_that_trickle_bytes_cannot_hold_the_uploads(slow_client_server, phase):
    """Eight connections that send a byte every 0.3 s (in their headers, or in a body that claims
    100 kB) held every upload slot for ever when only each read was timed: now each request has a
    deadline as a whole, the slow ones are cut, and an ordinary upload gets through."""
    url = slow_client_server
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\n" if phase == "headers"
            else b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
    stop = threading.Event()
    clients = [threading.Thread(target=_trickle, args=(url, head, stop), daemon=True) for _ in range(8)]
    for c in clients:
        c.start()
    try:
        import time

        time.sleep(0.5)
        start = time.monotonic()
        while True:  # at most the deadline (1 s + a few bytes' worth) plus the reply
            status, reply = _post(url, _png_bytes(np.zeros((30, 20, 3), np.uint8)))
            if status == 200 or time.monotonic() - start > 10:
                break
            time.sleep(0.2)
        assert status == 200 and reply["width"] == 20, (status, reply)
        assert time.monotonic() - start < 6
        for c in clients:
            c.join(timeout=5)
        assert not any(c.is_alive() for c in clients)  # the server closed each of them
    finally:
        stop.set()


def test_an_upload_limit_below_any_photo_is_refused_at_start(tmp_path):
    from spd.cli.main import main

    checkpoint = write_checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match="--max-mb 0: the upload limit must be at least 0.01 MB"):
        DemoApp(Predictor.from_checkpoint(checkpoint, device="cpu"), "m", max_bytes=int(1e-9 * 1e6))
    assert main(["serve", str(checkpoint), "--max-mb", "0.001", "--device", "cpu"]) == 2


def test_an_address_that_cannot_be_listened_on_names_host(tmp_path, capsys):
    from spd.cli.main import main

    checkpoint = write_checkpoint(tmp_path / "m.ckpt")
    assert main(["serve", str(checkpoint), "--host", "256.1.1.1", "--device", "cpu"]) == 2
    assert "--host 256.1.1.1 --port 8000: cannot listen there" in capsys.readouterr().err
