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
