"""The playground in a real browser: loads cleanly, stylizes with the alpha and mask the user set, follows a Gatys
job's progress, and explains a refused token. Servers use random weights and tiny images."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import free_port

pytestmark = pytest.mark.slow  # a real browser

SCREENSHOT_ENV = "STYLETRANSFER_SCREENSHOT"  # where test_stylize_* also saves a screenshot (README's image)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """Real photos from scikit-image's wheel, tiny: a cat (96x64) and a stained-tissue texture (64x64)."""
    from skimage import data

    paths = {"content": tmp_path / "photo.png", "style": tmp_path / "texture.png"}
    Image.fromarray(data.chelsea()).resize((96, 64), Image.Resampling.LANCZOS).save(paths["content"])
    Image.fromarray(data.immunohistochemistry()).resize((64, 64), Image.Resampling.LANCZOS).save(paths["style"])
    return paths


@pytest.fixture
def http(start_server):
    return start_server(http_port=free_port())


def open_page(page, server) -> None:
    page.goto(server.http_url + "/")
    page.wait_for_function("document.querySelector('#model').options.length > 0")


def prepare(page, images: dict[str, Path], *, register: bool = False, own_size: bool = True) -> None:
    """Content photo (at its own size unless ``own_size`` is False), one uploaded style, PNG output."""
    page.set_input_files("#content-file", str(images["content"]))
    page.wait_for_selector("#stack:not([hidden])")
    if register:
        page.check("#style-register")
        page.fill("#style-name", "Tissue texture")
    page.set_input_files("#style-file", str(images["style"]))
    page.wait_for_selector("#selected li")
    if own_size:
        page.select_option("#content-size", "0")


def stylize(page) -> dict:
    """Presses Stylize; returns the JSON request the page sent once the result is shown."""
    with page.expect_request(lambda r: r.url.endswith("/v1/stylize") and r.method == "POST") as sent:
        page.click("#stylize")
    page.wait_for_function("document.querySelector('#result-image').complete && "
                           "!document.querySelector('#result-image').hidden && "
                           "document.querySelector('#stylize').disabled === false")
    return json.loads(sent.value.post_data)


def result_image(page) -> Image.Image:
    src = page.get_attribute("#result-image", "src")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")


def set_range(page, selector: str, value: str) -> None:
    page.eval_on_selector(selector, "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", value)


def test_page_loads_and_stylizes_on_a_phone_without_console_errors(strict_page, strict_console, http, images) -> None:
    page, console = strict_page, strict_console  # the server's CSP holds: no inline script or style may run
    page.goto(http.http_url + "/")
    page.locator("#model option").first.wait_for(state="attached")
    for label in ("Access token", "Choose a photo", "Take a photo", "Style strength (alpha)", "Model",
                  "Output format", "Brush size", "Keep the photo's colours"):
        assert page.get_by_label(label).count() == 1, label
    assert page.get_attribute("#content-camera", "capture") == "environment"
    prepare(page, images)
    page.click("#stylize")
    page.locator("#result-image").wait_for(state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    assert console.errors == []


def test_stylize_shows_the_result_and_the_alpha_slider_changes_the_request(page, console, http, images) -> None:
    open_page(page, http)
    prepare(page, images, register=True)
    assert page.get_attribute("#gallery img", "src").startswith("data:image/jpeg;base64,")  # the thumbnail
    first = stylize(page)
    assert first["alpha"] == 1 and first["styles"][0]["styleId"] and first["outputFormat"] == "IMAGE_FORMAT_PNG"
    assert result_image(page).size == (96, 64)
    assert page.get_attribute("#download", "download") == "stylized.png"
    set_range(page, "#alpha", "0.3")
    assert page.text_content("#alpha-out") == "0.30"
    second = stylize(page)
    assert second["alpha"] == pytest.approx(0.3)
    assert console.errors == []


def test_the_output_size_is_a_ceiling_that_never_upscales_the_photo(page, console, http, images) -> None:
    open_page(page, http)
    prepare(page, images, own_size=False)
    assert page.input_value("#content-size") == "512"  # the default, above this 96x64 photo's shorter side
    assert "contentSize" not in stylize(page)
    assert result_image(page).size == (96, 64)
    page.select_option("#content-size", "256")
    assert "contentSize" not in stylize(page) and result_image(page).size == (96, 64)
    assert console.errors == []


def test_a_trained_model_from_the_list_stylizes(page, console, trained_server, images) -> None:
    """The model menu offers what ListModels lists; the trained one gives a real stylization: the README's
    screenshot."""
    open_page(page, trained_server)
    options = page.eval_on_selector_all("#model option", "options => options.map(o => [o.value, o.text])")
    assert options == [["default", "default (untrained)"], ["magenta", "magenta"]]
    prepare(page, images, register=True)
    page.select_option("#model", "magenta")
    request = stylize(page)
    assert request["model"] == "magenta"
    assert result_image(page).size == (96, 64)
    assert "untrained" not in page.text_content("#result-caption")
    if os.environ.get(SCREENSHOT_ENV):
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
        shot.quantize(256, method=Image.Quantize.MEDIANCUT).save(os.environ[SCREENSHOT_ENV], optimize=True)
    assert console.errors == []


@pytest.mark.parametrize("server_name", ["http", "offline_server"])
def test_a_painted_mask_confines_the_style(page, console, images, request, server_name: str) -> None:
    """With masks inside the network (AdaIN) and by compositing (Magenta, the offline default)."""
    open_page(page, request.getfixturevalue(server_name))
    prepare(page, images)
    page.check("#paint")
    set_range(page, "#brush-size", "60")
    box = page.locator("#mask-canvas").bounding_box()
    for x in (0.02, 0.1, 0.2):  # three strokes down the left fifth of the photo
        page.mouse.move(box["x"] + box["width"] * x, box["y"] + 1)
        page.mouse.down()
        for y in np.linspace(box["y"] + 1, box["y"] + box["height"] - 1, 8):
            page.mouse.move(box["x"] + box["width"] * x, float(y))
        page.mouse.up()
    page.select_option("#region-0", "inside")
    request = stylize(page)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(request["styles"][0]["mask"]))).convert("L"))
    width = mask.shape[1]
    assert mask[:, : width // 10].mean() > 250 and mask[:, width // 2:].mean() < 5  # white where painted
    # The server used it as a mask: without it the output changes, and mostly where the mask kept the style out.
    masked = np.asarray(result_image(page), dtype=np.float32)
    page.select_option("#region-0", "all")
    assert "mask" not in stylize(page)["styles"][0]
    everywhere = np.asarray(result_image(page), dtype=np.float32)
    change = np.abs(masked - everywhere).mean(axis=(0, 2))
    assert change[width * 2 // 3:].mean() > 2 * max(change[: width // 10].mean(), 1.0)
    assert console.errors == []


def test_the_gallery_shows_the_presets_and_one_stylizes_with_its_model(page, console, offline_server, images
                                                                       ) -> None:
    open_page(page, offline_server)
    page.wait_for_selector("#gallery .badge")
    tiles = page.eval_on_selector_all("#gallery button", "bs => bs.map(b => [b.dataset.key, b.textContent])")
    presets = [(key, text) for key, text in tiles if key.startswith("presets.")]
    assert len(presets) == 26 and all("preset · presets" in text for _, text in presets)
    assert page.get_attribute("#gallery img", "src").startswith("data:image/jpeg;base64,")  # the model's render
    assert page.input_value("#model") == "magenta"
    page.set_input_files("#content-file", str(images["content"]))
    page.wait_for_selector("#stack:not([hidden])")
    page.select_option("#content-size", "0")
    page.click("#gallery button[data-key='presets.night-swirls']")
    assert page.input_value("#model") == "presets"  # a preset picks its own model
    request = stylize(page)
    assert request["styles"] == [{"styleId": "presets.night-swirls", "weight": 1}] and request["model"] == "presets"
    assert result_image(page).size == (96, 64) and "presets" in page.text_content("#result-caption")
    page.click("#gallery button[data-key='presets.night-swirls']")  # deselected
    page.set_input_files("#style-file", str(images["style"]))  # a style image: back to a model that takes one
    page.wait_for_selector("#selected li")
    assert page.input_value("#model") == "magenta"
    assert console.errors == []


def test_a_gatys_job_shows_its_progress(page, console, http, images) -> None:
    open_page(page, http)
    prepare(page, images)
    page.fill("#gatys-iterations", "40")
    page.fill("#gatys-size", "64")
    page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => window.seen.push(document.querySelector('#gatys-text').textContent))
            .observe(document.querySelector('#gatys-text'), {childList: true, characterData: true, subtree: true});
    }""")
    assert page.locator("#gatys-download").is_hidden() and page.locator("#download").is_hidden()
    page.click("#gatys-submit")
    page.wait_for_function("document.querySelector('#gatys-text').textContent.startsWith('succeeded')",
                           timeout=240_000)
    page.wait_for_selector("#gatys-result:not([hidden])")
    assert page.get_attribute("#gatys-download", "download") == "gatys.png"
    seen = page.evaluate("window.seen")
    assert any(text.startswith("running, step") for text in seen), seen
    step, total = map(int, re.search(r"step (\d+) of (\d+)", seen[-1]).groups())
    assert step == total and total % 40 == 0 and "loss" in seen[-1]  # 40 steps per scale
    assert page.eval_on_selector("#gatys-progress", "e => [e.value, e.max]") == [total, total]
    assert page.eval_on_selector("#gatys-result", "e => [e.naturalWidth, e.naturalHeight]") == [64, 43]
    page.wait_for_selector("#jobs li button")
    assert "gatys: succeeded" in page.text_content("#jobs")
    assert console.errors == []


def test_a_refused_token_shows_a_clear_message(page, start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("current-token\n")
    server = start_server(http_port=free_port(), auth_tokens_file=str(tokens))
    page.add_init_script("sessionStorage.setItem('styletransfer.token', 'expired-token')")
    page.goto(server.http_url + "/")
    alert = page.locator("#alert")
    alert.wait_for(state="visible")
    assert "refused the access token" in alert.text_content()
    assert page.evaluate("document.activeElement.id") == "token"
    page.fill("#token", "current-token")
    page.click("text=Use token")
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    assert alert.is_hidden()
    assert page.evaluate("sessionStorage.getItem('styletransfer.token')") == "current-token"


