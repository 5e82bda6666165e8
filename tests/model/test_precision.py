"""bfloat16 against float32 on real photos: the bundled ImageNet VGG19 (real features) behind a seeded decoder, the
same model run in both precisions. Pixels stay within a level or so, the judge's distances within a few percent,
style codes within a percent; Train's bfloat16 autocast follows float32's loss.

On CPUs without native bfloat16 (AVX2 ones) torch runs these convolutions on a generic path tens of times slower
than float32, hence small photos and the slow mark.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench.photos import load_photo
from model.adain.stylizer import AdaINModel
from model.encoders import BUNDLED
from model.family import ColorMode, StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.quality import quality_score

pytestmark = pytest.mark.slow

SIDE = 96  # shorter side of the photos and the style size
PAIRS = (("astronaut", "immunohistochemistry"), ("coffee", "hubble_deep_field"))
# Bounds, in 8-bit levels, on |bfloat16 - float32| per pixel channel: the bench's precision section measures means of
# 0.6 and worst differences of 4 at 128 px (bfloat16 keeps 8 significant bits, and the decoder's last conv sums
# hundreds of products).
MEAN_LEVELS, WORST_LEVELS = 1.0, 8
JUDGE_TOLERANCE = 0.03  # relative change of the judge's content and style distances


def photo(name: str) -> Image.Image:
    return load_photo(name, SIDE, fit="shorter")


@pytest.fixture(scope="module")
def models() -> dict[torch.dtype, AdaINModel]:
    return {dtype: AdaINModel.random(0, device="cpu", precision=name, encoder=BUNDLED)
            for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16"))}


@pytest.fixture(scope="module")
def outputs(models: dict[torch.dtype, AdaINModel]) -> dict[tuple[str, str], dict[torch.dtype, np.ndarray]]:
    found = {}
    for pair in PAIRS:
        content, style = photo(pair[0]), photo(pair[1])
        found[pair] = {dtype: np.asarray(model.stylize(content, [StyleSource(image=style)],
                                                       StylizeOptions(style_size=SIDE)), dtype=np.int16)
                       for dtype, model in models.items()}
    return found


def test_bfloat16_runs_in_bfloat16(models: dict[torch.dtype, AdaINModel]) -> None:
    assert models[torch.bfloat16].info.dtype == "bfloat16"
    assert all(p.dtype == torch.bfloat16 for p in models[torch.bfloat16]._encoder_net.parameters())


@pytest.mark.parametrize("pair", PAIRS, ids="x".join)
def test_pixels_stay_within_a_level_or_so_of_float32(outputs, pair: tuple[str, str]) -> None:
    difference = np.abs(outputs[pair][torch.bfloat16] - outputs[pair][torch.float32])
    assert difference.mean() <= MEAN_LEVELS and difference.max() <= WORST_LEVELS
    assert difference.max() > 0  # the two precisions did run differently


@pytest.mark.parametrize("pair", PAIRS, ids="x".join)
def test_the_judge_sees_the_same_stylization(models, outputs, pair: tuple[str, str]) -> None:
    judge = models[torch.float32].encoder  # float32, as the quality benchmark scores
    content, style = image_to_tensor(photo(pair[0])), image_to_tensor(photo(pair[1]))
    scores = {dtype: quality_score(judge, torch.from_numpy(out).permute(2, 0, 1)[None].float() / 255, content, style)
              for dtype, out in outputs[pair].items()}
    full, reduced = scores[torch.float32], scores[torch.bfloat16]
    assert reduced.content == pytest.approx(full.content, rel=JUDGE_TOLERANCE)
    assert reduced.style == pytest.approx(full.style, rel=JUDGE_TOLERANCE)


def test_style_codes_are_float32_and_within_a_percent(models: dict[torch.dtype, AdaINModel]) -> None:
    style = photo("immunohistochemistry")
    codes = {dtype: model.encode_style(style, style_size=SIDE).tensors for dtype, model in models.items()}
    for name in ("mean", "std"):
        reduced, full = codes[torch.bfloat16][name], codes[torch.float32][name]
        assert reduced.dtype == torch.float32  # statistics are summed and kept in float32
        assert float((reduced - full).norm() / full.norm()) < 0.01


def test_colour_modes_and_tiles_run_in_bfloat16(models: dict[torch.dtype, AdaINModel]) -> None:
    content, style = photo("coffee").resize((48, 32)), photo("immunohistochemistry")
    for options in (StylizeOptions(style_size=32, color=ColorMode.LUMINANCE),
                    StylizeOptions(style_size=32, color=ColorMode.CORAL), StylizeOptions(style_size=32, tile_size=16)):
        out = {dtype: np.asarray(m.stylize(content, [StyleSource(image=style)], options), dtype=np.int16)
               for dtype, m in models.items()}
        assert np.abs(out[torch.bfloat16] - out[torch.float32]).mean() <= MEAN_LEVELS
