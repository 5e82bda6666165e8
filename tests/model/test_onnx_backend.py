"""The onnxruntime backend runs only the two networks; every option around them is the torch path's, to 1 level."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model.adain.stylizer import AdaINModel
from model.errors import Cancelled
from model.export import MAX_LEVEL_DIFF
from model.family import BatchItem, ColorMode, StyleSource, StylizeOptions
from tests.helpers import make_image

pytestmark = pytest.mark.slow  # ONNX Runtime against torch, pass by pass


def _half_mask(width: int, height: int) -> Image.Image:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, : width // 2] = 255
    return Image.fromarray(mask, mode="L")


def _levels(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return int(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())


@pytest.fixture(scope="module")
def ort_model(random_model: AdaINModel) -> AdaINModel:
    return random_model.with_backend("onnxruntime")


CASES = {
    "inline style": ([StyleSource(image=make_image(80, 64, 1))], StylizeOptions()),
    "blend, mask, alpha": ([StyleSource(image=make_image(64, 64, 1), weight=2.0, mask=_half_mask(100, 76)),
                            StyleSource(image=make_image(72, 64, 3))], StylizeOptions(alpha=0.7)),
    "luminance": ([StyleSource(image=make_image(64, 64, 1))], StylizeOptions(color=ColorMode.LUMINANCE)),
    "coral": ([StyleSource(image=make_image(64, 64, 1))], StylizeOptions(color=ColorMode.CORAL)),
    "tiled": ([StyleSource(image=make_image(64, 64, 1))], StylizeOptions(tile_size=48)),
}


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_matches_torch(random_model: AdaINModel, ort_model: AdaINModel, case: str) -> None:
    styles, options = CASES[case]
    content = make_image(100, 76, 2)
    want = random_model.stylize(content, styles, options)
    got = ort_model.stylize(content, styles, options)
    assert _levels(got, want) <= MAX_LEVEL_DIFF


def test_registered_style_and_batch_match_torch(random_model: AdaINModel, ort_model: AdaINModel) -> None:
    style = make_image(64, 64, 1)
    stats = ort_model.encode_style(style, style_size=0)
    torch_stats = random_model.encode_style(style, style_size=0)
    assert stats.producer == torch_stats.producer  # the same encoder: stored styles serve both backends
    assert torch.allclose(stats.tensors["mean"], torch_stats.tensors["mean"], rtol=1e-4, atol=1e-3)
    items = [BatchItem(make_image(64, 48, 4), [StyleSource(code=stats)]),
             BatchItem(make_image(64, 48, 5), [StyleSource(code=stats)], StylizeOptions(alpha=0.5))]
    for got, want in zip(ort_model.stylize_batch(items), random_model.stylize_batch(items), strict=True):
        assert _levels(got, want) <= MAX_LEVEL_DIFF


def test_stop_check_is_asked_between_networks(ort_model: AdaINModel) -> None:
    calls: list[int] = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        ort_model.stylize(make_image(64, 64, 2), [StyleSource(image=make_image(64, 64, 1))], should_stop=stop_after_two)
    assert len(calls) == 3


def test_trained_decoders_keep_the_backend(random_model: AdaINModel, ort_model: AdaINModel) -> None:
    other = AdaINModel.random(seed=1, device="cpu")
    trained = ort_model.with_decoder(other.decoder, other.info)
    assert trained.backend == "onnxruntime"
    content, styles = make_image(64, 64, 2), [StyleSource(image=make_image(64, 64, 1))]
    want = random_model.with_decoder(other.decoder, other.info).stylize(content, styles)
    assert _levels(trained.stylize(content, styles), want) <= MAX_LEVEL_DIFF


def test_backend_choices_are_checked(random_model: AdaINModel) -> None:
    assert random_model.with_backend("torch") is random_model
    with pytest.raises(ValueError, match="backend must be one of torch, onnxruntime"):
        random_model.with_backend("tensorrt")
    with pytest.raises(ValueError, match="float32"):
        AdaINModel(random_model.encoder, random_model.decoder, random_model.info, dtype=torch.float16,
                   backend="onnxruntime")


def test_sessions_do_not_spin_after_a_run(random_model: AdaINModel) -> None:
    """A session's workers sleep between runs, leaving the cores to the server's other threads."""
    from model.export import decoder_onnx
    from model.ort import make_session

    options = make_session(decoder_onnx(random_model.decoder), device="cpu").get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
