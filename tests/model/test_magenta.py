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

from model.color import rgb_to_yiq
from model.errors import WeightsIntegrityError
from model.magenta import graphs
from model.magenta.engine import STYLE_DIM, MagentaEngine, blend, interpolate, keep_chrominance
from tests.helpers import make_image


@pytest.fixture(scope="module")
def engine() -> MagentaEngine:
    return MagentaEngine(device="cpu", threads=1)


@pytest.fixture(scope="module")
def style_vector(engine: MagentaEngine) -> np.ndarray:
    return engine.style_vector(make_image(300, 200, seed=7))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_render_at_384_matches_the_shipped_graph_within_one_level(engine: MagentaEngine, style_vector) -> None:
    content = make_image(384, 384, seed=1)
    shipped = ort.InferenceSession(graphs.read_graph(graphs.TRANSFORM), providers=["CPUExecutionProvider"])
    feeds = {
        "content_image": np.asarray(content, np.float32)[None] / 255,
        "mobilenet_conv/Conv/BiasAdd": style_vector.reshape(1, 1, 1, STYLE_DIM).astype(np.float32),
    }
    reference = shipped.run(None, feeds)[0][0]
    expected = (reference * 255 + 0.5).clip(0, 255).astype(np.int16)
    assert np.abs(pixels(engine.render(content, style_vector)) - expected).max() <= 1


def test_style_vector_comes_from_the_shipped_predict_graph(engine: MagentaEngine) -> None:
    style = make_image(256, 256, seed=3)
    shipped = ort.InferenceSession(graphs.read_graph(graphs.PREDICT), providers=["CPUExecutionProvider"])
    reference = shipped.run(None, {"style_image": np.asarray(style, np.float32)[None] / 255})[0].reshape(STYLE_DIM)
    np.testing.assert_allclose(engine.style_vector(style), reference, atol=1e-5)


@pytest.mark.parametrize("size", [(97, 130), (130, 97), (1, 1), (5, 3), (101, 64)])
def test_output_has_exactly_the_content_size(engine: MagentaEngine, style_vector, size: tuple[int, int]) -> None:
    assert engine.render(make_image(*size, seed=2), style_vector).size == size


def test_a_tampered_file_is_refused() -> None:
    wrong = dataclasses.replace(graphs.PREDICT, sha256="0" * 64)
    with pytest.raises(WeightsIntegrityError, match="arbitrary_predict.onnx"):
        graphs.read_graph(wrong)


def test_blend_is_the_normalised_weighted_average() -> None:
    a, b = np.arange(STYLE_DIM, dtype=np.float32), np.ones(STYLE_DIM, np.float32)
    np.testing.assert_allclose(blend([a, b], [3.0, 0.0]), a)
    np.testing.assert_allclose(blend([a, b], [1.0, 3.0]), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError):
        blend([a, b], [0.0, 0.0])


def test_interpolate_ends_at_the_content_and_the_style() -> None:
    style, content = np.full(STYLE_DIM, 2.0), np.zeros(STYLE_DIM)
    np.testing.assert_allclose(interpolate(style, content, 0.0), content)
    np.testing.assert_allclose(interpolate(style, content, 1.0), style)
    np.testing.assert_allclose(interpolate(style, content, 0.25), np.full(STYLE_DIM, 0.5))


def test_keep_chrominance_takes_the_contents_iq_and_the_stylized_y(engine: MagentaEngine, style_vector) -> None:
    content = make_image(64, 48, seed=5)
    stylized = engine.render(content, style_vector)
    kept = keep_chrominance(stylized, content)

    def yiq(image: Image.Image) -> torch.Tensor:
        return rgb_to_yiq(torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None])[0]

    # Where no channel had to be clamped into [0, 255], only rounding to 8 bits separates I and Q from the content's.
    inside = torch.from_numpy(((pixels(kept) > 0) & (pixels(kept) < 255)).all(axis=2))
    assert inside.float().mean() > 0.5
    assert (yiq(kept)[1:] - yiq(content)[1:]).abs()[:, inside].max() < 1 / 255
    assert (yiq(kept)[0] - yiq(stylized)[0]).abs()[inside].max() < 1 / 255
    assert (yiq(stylized)[1:] - yiq(content)[1:]).abs().mean() > 5 / 255  # the style did change the colours
