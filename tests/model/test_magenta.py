"""The Magenta family: faithful to the bundled graphs, exact output sizes, and the paper's operations on style vectors.

The reference is the shipped transfer graph run directly by ONNX Runtime at its declared 384x384, fed exactly as the
TF Hub model expects (NHWC RGB in [0, 1]); our output must match it within one 8-bit level per pixel.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from skimage.data import astronaut

from model.color import rgb_to_yiq
from model.errors import Cancelled, IncompatibleModelError, InvalidOptionError, WeightsIntegrityError
from model.family import ColorMode, StyleCode, StyleModel, StyleSource, StylizeOptions, code_identity
from model.magenta import engine as magenta_engine
from model.magenta import graphs
from model.magenta.engine import STYLE_DIM, blend, interpolate, prepare_style, recolour_style
from model.magenta.model import MagentaModel
from tests.helpers import make_image


@pytest.fixture(scope="module")
def style() -> Image.Image:
    return make_image(96, 64, seed=7)


@pytest.fixture(scope="module")
def code(magenta_model: MagentaModel, style: Image.Image) -> StyleCode:
    return magenta_model.encode_style(style, style_size=256)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def shipped(graph: graphs.BundledGraph) -> ort.InferenceSession:
    """The graph exactly as the package ships it, with ONNX Runtime's defaults."""
    return ort.InferenceSession(graphs.read_graph(graph), providers=["CPUExecutionProvider"])


def test_it_is_a_style_model_with_honest_provenance(magenta_model: MagentaModel) -> None:
    assert isinstance(magenta_model, StyleModel)
    info = magenta_model.info
    assert (info.family, info.untrained, info.address) == ("magenta", False, "magenta/v1-256-int8")
    assert info.weights == {"predict": graphs.PREDICT.sha256, "transform": graphs.TRANSFORM.sha256}
    assert "arbitrary_transform.onnx" in info.provenance["transform"] and "Apache-2.0" in info.metadata["license"]


def test_stylize_at_384_matches_the_shipped_graph_within_one_level(magenta_model: MagentaModel,
                                                                   code: StyleCode) -> None:
    content = make_image(384, 384, seed=1)
    feeds = {
        "content_image": np.asarray(content, np.float32)[None] / 255,
        "mobilenet_conv/Conv/BiasAdd": code.tensors["vector"].numpy().reshape(1, 1, 1, STYLE_DIM),
    }
    expected = (shipped(graphs.TRANSFORM).run(None, feeds)[0][0] * 255 + 0.5).clip(0, 255).astype(np.int16)
    assert np.abs(pixels(magenta_model.stylize(content, [StyleSource(code=code)])) - expected).max() <= 1


def test_a_square_style_at_256_gets_the_shipped_predict_graphs_vector(magenta_model: MagentaModel) -> None:
    style = make_image(256, 256, seed=3)
    reference = shipped(graphs.PREDICT).run(None, {"style_image": np.asarray(style, np.float32)[None] / 255})[0]
    vector = magenta_model.encode_style(style, style_size=256).tensors["vector"].numpy()
    np.testing.assert_allclose(vector, reference.reshape(STYLE_DIM), atol=1e-5)


def test_an_inline_style_equals_its_code_and_the_code_survives_serialisation(
    magenta_model: MagentaModel, style: Image.Image, code: StyleCode
) -> None:
    content, options = make_image(64, 48, seed=2), StylizeOptions(style_size=256)
    inline = magenta_model.stylize(content, [StyleSource(style)], options)
    restored = StyleCode.from_bytes(code.to_bytes())
    assert restored.producer == magenta_model.code_identity
    assert np.array_equal(pixels(inline), pixels(magenta_model.stylize(content, [StyleSource(code=restored)], options)))


def test_another_models_code_is_refused(magenta_model: MagentaModel, code: StyleCode) -> None:
    foreign = dataclasses.replace(code, producer=code_identity("adain", "0" * 64))
    with pytest.raises(IncompatibleModelError, match="magenta"):
        magenta_model.stylize(make_image(32, 32), [StyleSource(code=foreign)])


@pytest.mark.parametrize("size", [(97, 130), (130, 97), (1, 1), (5, 3), (101, 64)])
def test_output_has_exactly_the_content_size(magenta_model: MagentaModel, code: StyleCode,
                                             size: tuple[int, int]) -> None:
    assert magenta_model.stylize(make_image(*size, seed=2), [StyleSource(code=code)]).size == size


def test_content_size_resizes_the_shorter_side(magenta_model: MagentaModel, code: StyleCode) -> None:
    out = magenta_model.stylize(make_image(90, 60), [StyleSource(code=code)], StylizeOptions(content_size=40))
    assert out.size == (60, 40)


def test_alpha_moves_the_result_from_the_content_towards_the_style(magenta_model: MagentaModel) -> None:
    content = Image.fromarray(astronaut()).resize((128, 128), Image.Resampling.BILINEAR)  # a photo: alpha 0 is ~itself
    stripes = np.where((np.arange(96) // 4 % 2 == 0)[None, :, None], [20, 40, 200], [250, 220, 30]).astype(np.uint8)
    code = magenta_model.encode_style(Image.fromarray(np.broadcast_to(stripes, (96, 96, 3)).copy()), style_size=256)
    target = code.tensors["vector"].numpy()
    changes, distances = [], []
    for alpha in (0.0, 0.5, 1.0):
        out = magenta_model.stylize(content, [StyleSource(code=code)], StylizeOptions(alpha=alpha, style_size=256))
        changes.append(np.abs(pixels(out) - pixels(content)).mean())
        vector = magenta_model.encode_style(out, style_size=256).tensors["vector"].numpy()
        distances.append(np.linalg.norm(vector - target))
    assert changes[0] < changes[1] < changes[2]  # ever further from the content's pixels
    assert distances[0] > distances[1] > distances[2]  # ever nearer the style's own style vector
    assert changes[0] < 0.5 * changes[2]  # alpha 0 renders the content under its own style: near a reconstruction


def test_blend_weights_are_normalised_and_a_zero_weight_drops_a_style(magenta_model: MagentaModel,
                                                                      code: StyleCode) -> None:
    other = magenta_model.encode_style(make_image(64, 64, seed=11), style_size=256)
    content = make_image(64, 64, seed=5)

    def run(*weights: float) -> np.ndarray:
        styles = [StyleSource(code=code, weight=weights[0]), StyleSource(code=other, weight=weights[1])]
        return pixels(magenta_model.stylize(content, styles))

    alone = pixels(magenta_model.stylize(content, [StyleSource(code=code)]))
    assert np.array_equal(run(1.0, 0.0), alone)
    assert np.array_equal(run(1.0, 1.0), run(3.0, 3.0))
    assert np.abs(run(1.0, 1.0) - alone).mean() > 2


def test_blend_and_interpolate_are_the_weighted_averages() -> None:
    a, b = np.arange(STYLE_DIM, dtype=np.float32), np.ones(STYLE_DIM, np.float32)
    np.testing.assert_allclose(blend([a, b], [1.0, 3.0]), 0.25 * a + 0.75 * b)
    np.testing.assert_allclose(interpolate(a, b, 0.0), b)
    np.testing.assert_allclose(interpolate(a, b, 0.25), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError):
        blend([a, b], [0.0, 0.0])


def yiq(image: Image.Image) -> torch.Tensor:
    return rgb_to_yiq(torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None])[0]


def test_luminance_mode_keeps_the_contents_chrominance(magenta_model: MagentaModel, code: StyleCode) -> None:
    content = make_image(64, 48, seed=5)
    plain = magenta_model.stylize(content, [StyleSource(code=code)])
    kept = magenta_model.stylize(content, [StyleSource(code=code)], StylizeOptions(color=ColorMode.LUMINANCE))
    # Where no channel had to be clamped into [0, 255], only rounding to 8 bits separates I and Q from the content's.
    inside = torch.from_numpy(((pixels(kept) > 0) & (pixels(kept) < 255)).all(axis=2))
    assert inside.float().mean() > 0.5
    assert (yiq(kept)[1:] - yiq(content)[1:]).abs()[:, inside].max() < 1 / 255
    assert (yiq(kept)[0] - yiq(plain)[0]).abs()[inside].max() < 1 / 255
    assert (yiq(plain)[1:] - yiq(content)[1:]).abs().mean() > 5 / 255  # the style did change the colours


def test_coral_brings_the_results_colours_nearer_the_contents(magenta_model: MagentaModel, style: Image.Image) -> None:
    content = Image.fromarray((pixels(make_image(64, 64, seed=6)) * [1.0, 0.4, 0.2]).astype(np.uint8))  # reddish

    def colour_gap(color: ColorMode) -> float:
        out = magenta_model.stylize(content, [StyleSource(style)], StylizeOptions(color=color))
        return float(np.abs(pixels(out).mean(axis=(0, 1)) - pixels(content).mean(axis=(0, 1))).sum())

    assert colour_gap(ColorMode.CORAL) < colour_gap(ColorMode.NONE)


def test_masks_are_composited(magenta_model: MagentaModel, code: StyleCode) -> None:
    """No native masks: a white mask renders as no mask, a black one leaves the content, half a mask half of each."""
    content = make_image(48, 32, seed=2)
    plain = pixels(magenta_model.stylize(content, [StyleSource(code=code)]))
    masked = [pixels(magenta_model.stylize(content, [StyleSource(code=code, mask=Image.new("L", (8, 8), level))]))
              for level in (255, 0)]
    assert np.abs(masked[0] - plain).max() <= 1 and np.abs(masked[1] - pixels(content)).max() <= 1
    half = np.zeros((32, 48), dtype=np.uint8)
    half[:, :24] = 255
    out = pixels(magenta_model.stylize(content, [StyleSource(code=code, mask=Image.fromarray(half, "L"))]))
    assert np.abs(out[:, :20] - plain[:, :20]).max() <= 1
    assert np.abs(out[:, -20:] - pixels(content)[:, -20:]).max() <= 1
    assert magenta_model.capabilities.masks == "composited"


def test_tiling_is_refused_naming_the_option_and_the_model(magenta_model: MagentaModel, style: Image.Image) -> None:
    with pytest.raises(InvalidOptionError, match="magenta") as err:
        magenta_model.check([StyleSource(style).spec], StylizeOptions(tile_size=512))
    assert err.value.option == "tile_size"


def test_should_stop_cancels(magenta_model: MagentaModel, code: StyleCode) -> None:
    with pytest.raises(Cancelled):
        magenta_model.stylize(make_image(32, 32), [StyleSource(code=code)], should_stop=lambda: True)


def test_contents_too_large_for_the_fused_pooling_run_unfused(
    magenta_model: MagentaModel, code: StyleCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = make_image(64, 40, seed=8)
    fused = pixels(magenta_model.stylize(content, [StyleSource(code=code)]))
    monkeypatch.setattr(magenta_engine, "FUSED_POOL_LIMIT", 1)
    unfused = pixels(magenta_model.stylize(content, [StyleSource(code=code)]))
    assert unfused.shape == fused.shape and np.abs(unfused - fused).mean() < 3


@pytest.mark.parametrize(("size", "style_size", "expected"), [((256, 256), 256, (256, 256)),
                                                              ((640, 427), 256, (384, 256)),
                                                              ((10, 20), 0, (32, 32))])
def test_styles_are_resized_and_snapped_to_multiples_of_32(size, style_size, expected) -> None:
    assert prepare_style(make_image(*size), style_size).size == expected


def test_a_tampered_file_is_refused() -> None:
    wrong = dataclasses.replace(graphs.PREDICT, weights=dataclasses.replace(graphs.PREDICT.weights, sha256="0" * 64))
    with pytest.raises(WeightsIntegrityError, match="arbitrary_predict.onnx"):
        graphs.read_graph(wrong)


def test_coral_matches_the_contents_contrast_whatever_the_sizes() -> None:
    style, content = make_image(256, 256, seed=12), make_image(48, 40, seed=13)
    recoloured = pixels(recolour_style(style, content)).reshape(-1, 3)
    np.testing.assert_allclose(recoloured.std(axis=0), pixels(content).reshape(-1, 3).std(axis=0), rtol=0.15)
    np.testing.assert_allclose(recoloured.mean(axis=0), pixels(content).reshape(-1, 3).mean(axis=0), atol=6)
