"""Gatys on the real bundled VGG19 with a thin-line style: smooth content must move towards it.

A ramp against a red and blue grid of 1-pixel lines on black (bench.patterns), 64 px, one scale. With the Gram loss
alone the image stays the ramp (the Gram gradient is proportional to the ramp's weak features); the default Gram +
mean/std loss paints the grid in. Scored by the benchmark's judge, model.quality.gatys_score, as a fraction of the
content image's own Gram distance to the style.
"""

from __future__ import annotations

import itertools

import pytest

from bench.patterns import grid, ramp
from model.encoders import BUNDLED, load_encoder
from model.gatys import GatysOptions, GatysProgress, stylize_gatys
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import gatys_score

pytestmark = pytest.mark.slow  # ~50 steps of the real VGG19 per case

SIZE = 64
STEPS = 50


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(BUNDLED, RELU5_1)[0]


def gram_ratio(encoder: Encoder, result, content, style) -> float:
    c, s = image_to_tensor(content), image_to_tensor(style)
    return gatys_score(encoder, image_to_tensor(result), c, s).style / gatys_score(encoder, c, c, s).style


@pytest.mark.parametrize("style_loss, bound", [("gram_mean_std", 0.6), ("gram", None)])
def test_a_ramp_moves_towards_a_grid_of_thin_lines(encoder: Encoder, style_loss: str, bound: float | None) -> None:
    content, style = ramp(SIZE), grid(SIZE)
    progress: list[GatysProgress] = []
    options = GatysOptions(iterations=STEPS, num_scales=1, style_loss=style_loss)
    out = stylize_gatys(encoder, content, [(style, 1.0)], options, on_progress=progress.append)
    ratio = gram_ratio(encoder, out, content, style)
    if bound is None:  # the Gram loss alone: the failure the default exists for (measured 0.93)
        assert ratio > 0.8
        return
    assert ratio < bound  # measured 0.51
    losses = [p.loss for p in progress]
    assert losses[-1] < 0.5 * losses[0]
    falling = sum(b <= a * 1.001 for a, b in itertools.pairwise(losses))
    assert falling >= len(losses) - 5  # steadily: nearly every step improves
