"""The presets family: the bundled 26-style network behind the seam, its presets, blends, options and refusals.

The reference is the shipped graph run directly by ONNX Runtime, fed as its interface says (NCHW RGB in [0, 1] and
26 style weights): at sizes that need no padding our output must equal it exactly."""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from model.color import rgb_to_yiq
from model.errors import IncompatibleModelError, InvalidOptionError
from model.family import ColorMode, MaskMode, StyleCode, StyleModel, StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.pins import read_packaged
from model.presets import CATALOGUE, MULTISTYLE26, NUM_STYLES, PresetsModel
from model.previews import preview
from tests.helpers import make_image


def preset(model: PresetsModel, slug: str, **kwargs) -> StyleSource:
    code = next(p.code for p in model.presets if p.style_id == f"presets.{slug}")
    return StyleSource(code=code, preset=True, **kwargs)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def shipped(content: Image.Image, weights: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(read_packaged(MULTISTYLE26), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": image_to_tensor(content).numpy(), "style_weights": weights.astype(np.float32)})
    return np.round(out[0][0].transpose(1, 2, 0) * 255).astype(np.int16)


def test_it_is_a_style_model_that_declares_its_26_presets(presets_model: PresetsModel) -> None:
    assert isinstance(presets_model, StyleModel)
    assert (presets_model.info.address, presets_model.info.untrained) == ("presets/multistyle26", False)
    assert presets_model.info.weights == {"transform": MULTISTYLE26.sha256}
    assert "multistyle26.onnx" in presets_model.info.provenance["transform"]
    ids = [p.style_id for p in presets_model.presets]
    assert len(ids) == len(set(ids)) == NUM_STYLES == len(CATALOGUE)
    assert all(re.fullmatch(r"presets\.[a-z]+(-[a-z]+)*", i) for i in ids)  # never a registered style's 32 hex
    assert len({p.display_name for p in presets_model.presets}) == NUM_STYLES
    for i, p in enumerate(presets_model.presets):  # each preset is its own row of the network's style weights
        assert p.code.producer == presets_model.code_identity
        assert p.code.tensors["weights"].argmax().item() == i and p.code.tensors["weights"].sum().item() == 1.0


def test_a_preset_renders_exactly_what_the_shipped_graph_does(presets_model: PresetsModel) -> None:
    content = make_image(64, 48, seed=4)
    out = presets_model.stylize(content, [preset(presets_model, "night-swirls")])
    weights = np.zeros(NUM_STYLES)
    weights[19] = 1.0
    assert np.array_equal(pixels(out), shipped(content, weights))


@pytest.mark.parametrize("size", [(9, 9), (13, 30), (65, 33)])
def test_outputs_have_exactly_the_contents_size(presets_model: PresetsModel, size: tuple[int, int]) -> None:
    out = presets_model.stylize(make_image(*size, seed=1), [preset(presets_model, "ember")])
    assert out.size == size


def test_presets_differ_and_blends_are_the_paper_s_weighted_rows(presets_model: PresetsModel) -> None:
    content = make_image(64, 48, seed=2)
    a, b = preset(presets_model, "pastel-sky"), preset(presets_model, "ember")
    one, other = pixels(presets_model.stylize(content, [a])), pixels(presets_model.stylize(content, [b]))
    assert np.abs(one - other).mean() > 20
    blend = presets_model.stylize(content, [preset(presets_model, "pastel-sky", weight=3.0),
                                            preset(presets_model, "ember")])
    weights = np.zeros(NUM_STYLES)
    weights[[0, 20]] = 0.75, 0.25
    assert np.abs(pixels(blend) - shipped(content, weights)).max() <= 1  # the conditional norms blend, not pixels
    zero = presets_model.stylize(content, [a, preset(presets_model, "ember", weight=0.0)])
    assert np.array_equal(pixels(zero), one)


def test_alpha_mixes_with_the_content_and_luminance_keeps_its_colours(presets_model: PresetsModel) -> None:
    content = make_image(48, 48, seed=3)
    full = pixels(presets_model.stylize(content, [preset(presets_model, "ember")]))
    none = pixels(presets_model.stylize(content, [preset(presets_model, "ember")], StylizeOptions(alpha=0.0)))
    half = pixels(presets_model.stylize(content, [preset(presets_model, "ember")], StylizeOptions(alpha=0.5)))
    assert np.abs(none - pixels(content)).max() <= 1
    assert np.abs(half - (full + pixels(content)) / 2).max() <= 1
    kept = presets_model.stylize(content, [preset(presets_model, "ember")], StylizeOptions(color=ColorMode.LUMINANCE))

    def chroma(image: np.ndarray) -> np.ndarray:
        return rgb_to_yiq(image_to_tensor(Image.fromarray(image.astype(np.uint8))))[0, 1:].numpy()

    kept_gap = np.abs(chroma(pixels(kept)) - chroma(pixels(content))).mean()
    ember_gap = np.abs(chroma(full) - chroma(pixels(content))).mean()  # ember recolours the photo...
    assert kept_gap < ember_gap / 3  # ...luminance keeps its colours (up to clipping at the gamut's edge)


def test_what_it_cannot_do_is_refused_naming_the_option_and_the_model(presets_model: PresetsModel) -> None:
    content = make_image(32, 32)
    for styles, options, option in (
        ([StyleSource(image=make_image(32, 32))], StylizeOptions(), "styles[0]"),
        ([preset(presets_model, "ember")], StylizeOptions(color=ColorMode.CORAL), "color_preservation"),
        ([preset(presets_model, "ember")], StylizeOptions(tile_size=512), "tile_size"),
    ):
        with pytest.raises(InvalidOptionError, match="'presets'") as err:
            presets_model.stylize(content, styles, options)
        assert err.value.option == option
    with pytest.raises(InvalidOptionError, match="'presets'"):
        presets_model.encode_style(make_image(32, 32))
    foreign = StyleCode("magenta:0123456789abcdef", {"weights": presets_model.presets[0].code.tensors["weights"]}, 0, 0)
    with pytest.raises(IncompatibleModelError):
        presets_model.stylize(content, [StyleSource(code=foreign, preset=True)])


def test_masks_are_composited(presets_model: PresetsModel) -> None:
    assert presets_model.capabilities.masks is MaskMode.COMPOSITED
    content = make_image(48, 32, seed=6)
    left = np.zeros((32, 48), dtype=np.uint8)
    left[:, :24] = 255
    out = pixels(presets_model.stylize(content, [preset(presets_model, "ember", mask=Image.fromarray(left, "L")),
                                           preset(presets_model, "teal-wash", mask=Image.fromarray(255 - left, "L"))]))
    ember = pixels(presets_model.stylize(content, [preset(presets_model, "ember")]))
    teal = pixels(presets_model.stylize(content, [preset(presets_model, "teal-wash")]))
    assert np.abs(out[:, :20] - ember[:, :20]).max() <= 1 and np.abs(out[:, -20:] - teal[:, -20:]).max() <= 1


def test_outputs_are_deterministic(presets_model: PresetsModel) -> None:
    """The response cache serves a repeated request's bytes: the model must give the same ones each time."""
    content = make_image(72, 40, seed=8)
    styles = [preset(presets_model, "ember", weight=0.4), preset(presets_model, "night-swirls", weight=0.6)]
    first = presets_model.stylize(content, styles, StylizeOptions(alpha=0.8))
    assert all(presets_model.stylize(content, styles, StylizeOptions(alpha=0.8)).tobytes() == first.tobytes()
               for _ in range(3))


def test_previews_are_renders_of_the_bundled_portrait(presets_model: PresetsModel) -> None:
    image = preview(presets_model, presets_model.presets[0], 160)
    assert max(image.size) == 160
    other = preview(presets_model, presets_model.presets[17], 160)
    assert np.abs(pixels(image) - pixels(other)).mean() > 20
