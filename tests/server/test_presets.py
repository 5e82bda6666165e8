"""Built-in presets over the API: listed beside registered styles, used (on their own model), blended, read-only;
what `make run` serves offline (Magenta, the default, and the presets model)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from PIL import Image

from clients import StyleClient, StyleRef, cli
from model.family import ColorMode, StyleSource, StylizeOptions
from model.presets import PresetsModel
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, base_config, encode, free_port, make_image

CONTENT = make_image(48, 32, seed=1)
STYLE = encode(make_image(40, 40, seed=2))


@pytest.fixture(scope="module")
def offline(tmp_path_factory, magenta_model, presets_model) -> Iterator[RunningServer]:
    """One server for the module (its presets' thumbnails are rendered once): tests must not depend on which
    registered styles the others added."""
    config = base_config(data_dir=str(tmp_path_factory.mktemp("offline") / "data"), metrics_port=free_port(),
                         http_port=free_port())
    server = RunningServer(config, [magenta_model, presets_model])
    yield server
    server.stop(1.0)


def stylize(server: RunningServer, *styles: pb.StyleInput, **fields) -> pb.StylizeResponse:
    request = pb.StylizeRequest(content=encode(CONTENT), styles=list(styles), **fields)
    return server.stub().Stylize(request, timeout=60)


def preset(slug: str, **fields) -> pb.StyleInput:
    return pb.StyleInput(style_id=f"presets.{slug}", **fields)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def direct(model: PresetsModel, weights: dict[str, float], **options) -> np.ndarray:
    codes = {p.style_id: p.code for p in model.presets}
    styles = [StyleSource(code=codes[f"presets.{slug}"], weight=w, preset=True) for slug, w in weights.items()]
    return np.asarray(model.stylize(CONTENT, styles, StylizeOptions(**options)), dtype=np.int16)


def error_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.mark.slow  # renders the 26 thumbnails
def test_presets_are_listed_first_read_only_with_their_model_and_thumbnail(offline: RunningServer,
                                                                           presets_model: PresetsModel) -> None:
    stub = offline.stub()
    registered = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32, display_name="mine"), timeout=60)
    pages, token = [], ""
    while True:  # pages of 10 cross from the presets into the registered styles
        page = stub.ListStyles(pb.ListStylesRequest(page_size=10, page_token=token), timeout=60)
        pages.append(list(page.styles))
        token = page.next_page_token
        if not token:
            break
    styles = [s for page in pages for s in page]
    assert [len(p) for p in pages[:2]] == [10, 10] and len(styles) > 26
    assert [s.style_id for s in styles[:26]] == [p.style_id for p in presets_model.presets]
    mine = next(s for s in styles[26:] if s.style_id == registered.style_id)
    assert not mine.builtin and mine.model == "" and mine.style_size == 32
    for style in styles[:26]:
        assert style.builtin and style.model == "presets" and (style.width, style.size_bytes) == (0, 0)
        thumbnail = Image.open(io.BytesIO(style.thumbnail))
        assert thumbnail.format == "JPEG" and max(thumbnail.size) == 160
    got = stub.GetStyle(pb.GetStyleRequest(style_id="presets.ember"), timeout=60)
    assert (got.display_name, got.builtin, got.model) == ("Ember", True, "presets")
    for bad in ("presets.no-such-preset", "presets:3"):
        err = error_of(lambda bad=bad: stub.GetStyle(pb.GetStyleRequest(style_id=bad), timeout=10))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    err = error_of(lambda: stub.ListStyles(pb.ListStylesRequest(page_token="presets:x"), timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_preset_runs_on_its_model_without_naming_it(offline: RunningServer, presets_model: PresetsModel) -> None:
    out = stylize(offline, preset("night-swirls"))
    assert out.model == "presets" and (out.width, out.height) == CONTENT.size
    assert np.array_equal(decoded(out.image), direct(presets_model, {"night-swirls": 1.0}))
    assert stylize(offline, preset("night-swirls"), model="presets/multistyle26").model == "presets"
    assert stylize(offline, pb.StyleInput(image=STYLE)).model == "magenta"  # the default is unchanged


def test_presets_blend_by_weight_with_alpha_and_colour_preservation(offline: RunningServer,
                                                                   presets_model: PresetsModel) -> None:
    out = stylize(offline, preset("pastel-sky", weight=3.0), preset("ember", weight=1.0), alpha=0.6,
                  color_preservation=pb.COLOR_PRESERVATION_LUMINANCE)
    expected = direct(presets_model, {"pastel-sky": 3.0, "ember": 1.0}, alpha=0.6, color=ColorMode.LUMINANCE)
    assert np.array_equal(decoded(out.image), expected)
    err = error_of(lambda: stylize(offline, preset("ember"), color_preservation=pb.COLOR_PRESERVATION_CORAL))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "color_preservation" in err.details()


def test_presets_and_masks_composite(offline: RunningServer, presets_model: PresetsModel) -> None:
    left = np.zeros((32, 48), dtype=np.uint8)
    left[:, :24] = 255
    mask = encode(Image.fromarray(left, "L"))
    out = decoded(stylize(offline, preset("ember", weight=1, mask=mask), preset("teal-wash", weight=1)).image)
    teal = direct(presets_model, {"teal-wash": 1.0})
    assert np.abs(out[:, -20:] - teal[:, -20:]).max() <= 1  # only the unmasked preset outside the mask
    assert np.abs(out[:, :20] - teal[:, :20]).mean() > 10  # both inside it


def test_a_preset_cannot_be_deleted(offline: RunningServer) -> None:
    stub = offline.stub()
    err = error_of(lambda: stub.DeleteStyle(pb.DeleteStyleRequest(style_id="presets.ember"), timeout=10))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "preset" in err.details()
    request = urllib.request.Request(f"{offline.http_url}/v1/styles/presets.ember", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(request, timeout=10)
    assert http_err.value.code == 400
    assert json.loads(http_err.value.read())["status"] == "FAILED_PRECONDITION"
    with urllib.request.urlopen(f"{offline.http_url}/v1/styles/presets.ember", timeout=30) as reply:
        assert json.loads(reply.read())["builtin"] is True


@pytest.mark.parametrize(("fields", "styles", "words"), [
    ({"model": "magenta"}, [preset("ember")], ["styles[0].style_id", "'presets'", "'magenta'"]),
    ({"model": "presets"}, [pb.StyleInput(image=STYLE)], ["styles[0]", "'presets'", "style images"]),
    ({}, [preset("ember"), pb.StyleInput(image=STYLE)], ["styles[1]", "'presets'", "style images"]),
])
def test_what_presets_cannot_do_is_invalid_argument(offline: RunningServer, fields: dict,
                                                    styles: list[pb.StyleInput], words: list[str]) -> None:
    err = error_of(lambda: stylize(offline, *styles, **fields))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert all(word in err.details() for word in words), err.details()


def test_list_models_says_how_each_model_takes_masks_and_styles(offline: RunningServer) -> None:
    with StyleClient(offline.target) as client:
        models = {m.name: m for m in client.models()}
        assert (models["magenta"].masks, models["magenta"].style_images) == ("composited", True)
        assert (models["presets"].masks, models["presets"].style_images) == ("composited", False)
        style = client.get_style("presets.ember")
        assert (style.builtin, style.model, style.display_name) == (True, "presets", "Ember") and style.thumbnail
        assert client.stylize(CONTENT, StyleRef("presets.ember")).model == "presets"


def test_the_cli_shows_presets_as_read_only_with_their_model(offline: RunningServer, capsys) -> None:
    assert cli.main(["--target", offline.target, "styles", "get", "presets.night-swirls"]) == 0
    assert capsys.readouterr().out == "presets.night-swirls  preset of presets, read-only  Night Swirls\n"
    assert cli.main(["--target", offline.target, "styles", "delete", "presets.ember"]) == 1
    assert "FAILED_PRECONDITION" in capsys.readouterr().err
    assert cli.main(["--target", offline.target, "models"]) == 0
    assert "takes its built-in presets only (styles list); masks composited" in capsys.readouterr().out


def test_a_presets_only_default_model_still_registers_styles(start_server, presets_model, magenta_model) -> None:
    server = start_server(models=[presets_model, magenta_model])
    style = server.stub().PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    assert (style.width, style.style_size) == (40, 32)  # kept without a code; Magenta makes its own on first use
    assert stylize(server, pb.StyleInput(style_id=style.style_id), model="magenta").model == "magenta"
