"""The playground's live camera in Debian's Chromium with its fake camera playing a clip the test writes (a y4m of a
panning photo with a cat crossing it): frames go over the StylizeStream WebSocket and stylized frames are shown,
with their counters; a refused token is explained, and the right one travels as a subprotocol."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ConsoleLog
from tests.helpers import free_port

pytestmark = pytest.mark.slow
SCREENSHOT_ENV = "STYLETRANSFER_LIVE_SCREENSHOT"  # where the first test also saves a screenshot of the live mode
CLIP_SIZE = (80, 64)  # the fake camera's frames: bench.clips at side 64


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    from bench.clips import make_clip, write_y4m

    clip = make_clip("pan", frames=12, side=CLIP_SIZE[1])
    assert clip.frames[0].size == CLIP_SIZE
    return write_y4m(clip.frames, tmp_path_factory.mktemp("camera") / "pan.y4m", fps=10)


@pytest.fixture(scope="module")
def camera_browser(camera_clip: Path) -> Iterator[object]:
    """Chromium whose camera plays ``camera_clip`` in a loop, with camera permission granted without a prompt."""
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_clip}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def live_page(camera_browser) -> Iterator[object]:
    """A page under the server's own Content-Security-Policy (the stream's ws:// must pass connect-src 'self')."""
    context = camera_browser.new_context(viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def style_file(tmp_path: Path) -> Path:
    from skimage import data

    path = tmp_path / "texture.png"
    Image.fromarray(data.immunohistochemistry()).resize((64, 64), Image.Resampling.LANCZOS).save(path)
    return path


def open_with_style(page, url: str, style: Path) -> None:
    page.goto(url + "/")
    page.locator("#model option").first.wait_for(state="attached")
    page.set_input_files("#style-file", str(style))
    page.wait_for_selector("#selected li")


def counter(page, name: str) -> str:
    return page.locator(f"#live-{name}").text_content() or ""


def wait_for_stylized(page, frames: int) -> None:
    for _ in range(600):  # bounded: 600 x 0.2 s
        if int(counter(page, "stylized")) >= frames:
            return
        if page.locator("#alert").is_visible():
            raise AssertionError(page.locator("#alert").text_content())
        page.wait_for_timeout(200)
    raise AssertionError(f"fewer than {frames} stylized frames were shown")


def shown(page, selector: str) -> np.ndarray:
    png = page.locator(selector).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def stop_while_frames_decode(page) -> None:
    """Stops while results are still being decoded (each image's decoding held back 1.5 s, as on a busy machine):
    none of them may paint over "Stopped." when it finishes."""
    page.evaluate("""() => {
      const decode = window.createImageBitmap;
      Object.assign(window, { heldBack: 0, decoded: 0 });
      window.createImageBitmap = (...args) => {
        window.heldBack += 1;
        return new Promise((done) => setTimeout(() => done(decode(...args)), 1500))
          .finally(() => { window.decoded += 1; });
      };
    }""")
    page.wait_for_function("() => window.heldBack > 0")
    page.click("#live-stop")
    page.locator("#live-caption", has_text="Stopped.").wait_for()
    page.wait_for_function("() => window.decoded === window.heldBack")
    assert page.locator("#live-caption").text_content() == "Stopped."


def test_live_mode_stylizes_the_fake_camera(live_page, trained_server, style_file: Path) -> None:
    page, server = live_page, trained_server
    console = ConsoleLog(page)
    open_with_style(page, server.http_url, style_file)
    page.select_option("#model", "magenta")
    page.click("#live-start")
    wait_for_stylized(page, 6)
    canvas = page.locator("#live-result")
    assert canvas.is_visible()
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == tuple(map(str, CLIP_SIZE))
    assert float(counter(page, "fps")) > 0 and int(counter(page, "latency")) > 0
    assert "magenta" in (page.locator("#live-caption").text_content() or "")
    result, camera = shown(page, "#live-result"), shown(page, "#live-video")
    assert result.std() > 10  # a picture, not a blank canvas
    assert abs(result.mean(axis=(0, 1)) - camera.mean(axis=(0, 1))).max() > 10  # repainted, not the camera itself
    sent = server.metric("styletransfer_stream_frames_total", model="magenta", event="received")
    assert sent >= 6 and server.metric("styletransfer_stream_frames_total", model="magenta", event="stylized") >= 6
    if path := os.environ.get(SCREENSHOT_ENV):
        page.locator("#live-heading").scroll_into_view_if_needed()
        page.locator("section[aria-labelledby=live-heading]").screenshot(path=path)
    stop_while_frames_decode(page)
    assert page.locator("#live-start").is_enabled() and console.errors == []
    for _ in range(100):  # the server ends the call once it sees the socket closed
        if server.metric("styletransfer_http_streams") == 0:
            break
        page.wait_for_timeout(100)
    assert server.metric("styletransfer_http_streams") == 0 and server.metric("styletransfer_streams_active") == 0


def test_live_mode_sends_the_token_and_explains_a_refused_one(live_page, start_server, style_file: Path,
                                                              tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("right-token+/=\n")
    server = start_server(http_port=free_port(), auth_tokens_file=str(tokens))
    page = live_page
    page.goto(server.http_url + "/")
    page.fill("#token", "right-token+/=")
    page.click("#token-form button[type=submit]")
    page.locator("#model option").first.wait_for(state="attached")
    page.set_input_files("#style-file", str(style_file))
    page.wait_for_selector("#selected li")
    assert not page.locator("#alert").is_visible()
    page.evaluate("() => sessionStorage.setItem('styletransfer.token', 'wrong-token')")
    page.click("#live-start")
    page.locator("#alert", has_text="refused the access token").wait_for()
    assert page.locator("#live-start").is_enabled() and counter(page, "stylized") == "0"
    page.evaluate("() => sessionStorage.setItem('styletransfer.token', 'right-token+/=')")
    page.click("#live-start")
    wait_for_stylized(page, 2)
    page.click("#live-stop")
