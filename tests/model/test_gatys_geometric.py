"""Gatys on the real bundled VGG19 with thin-line styles: smooth or flat content must take them and stay recognisable.

A ramp against a red and blue grid of 1-pixel lines on black and a flat avatar against pinstripes (bench.patterns),
64 px, one scale. With the Gram loss alone the image stays the ramp (the Gram gradient is proportional to the ramp's
weak features); the default Gram + mean/std loss paints the grid in, and the content term's layout keeps the avatar
visible under the stripes. Scored by the benchmark's judges: model.quality.gatys_score's Gram distance as a fraction
of the content image's own, and model.quality.layout_similarity.
"""

from __future__ import annotations

import itertools

import pytest

from bench.patterns import avatar, grid, pinstripes, ramp
from model.encoders import BUNDLED, load_encoder
from model.gatys import ContentLoss, GatysOptions, GatysProgress, stylize_gatys
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import gatys_score, layout_similarity

pytestmark = pytest.mark.slow  # ~50 steps of the real VGG19 per case

SIZE = 64
STEPS = 50


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(BUNDLED, RELU5_1)[0]


def gram_ratio(encoder: Encoder, result, content, style) -> float:
    c, s = image_to_tensor(content), image_to_tensor(style)
    return gatys_score(encoder, image_to_tensor(result), c, s).style / gatys_score(encoder, c, c, s).style


@pytest.mark.parametrize("style_loss, bound", [("gram_mean_std", 0.5), ("gram", None)])
def test_a_ramp_moves_towards_a_grid_of_thin_lines(encoder: Encoder, style_loss: str, bound: float | None) -> None:
    content, style = ramp(SIZE), grid(SIZE)
    progress: list[GatysProgress] = []
    options = GatysOptions(iterations=STEPS, num_scales=1, style_loss=style_loss)
    out = stylize_gatys(encoder, content, [(style, 1.0)], options, on_progress=progress.append)
    ratio = gram_ratio(encoder, out, content, style)
    if bound is None:  # the Gram loss alone: the failure the default exists for (measured 0.93)
        assert ratio > 0.8
        return
    assert ratio < bound  # measured 0.43
    losses = [p.loss for p in progress]
    assert losses[-1] < 0.5 * losses[0]
    best_so_far = [min(losses[: k + 10]) for k in range(0, len(losses), 10)]
    assert all(b < a for a, b in itertools.pairwise(best_so_far))  # steadily: every 10 steps reach a new low


@pytest.mark.parametrize("layout_weight", [ContentLoss.LAYOUT_WEIGHT, 0.0])
def test_a_flat_avatar_stays_recognisable_under_pinstripes(encoder: Encoder, layout_weight: float,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The stripes come in either way; without the layout term the face goes with them."""
    monkeypatch.setattr(ContentLoss, "LAYOUT_WEIGHT", layout_weight)
    content, style = avatar(SIZE), pinstripes(SIZE)
    out = stylize_gatys(encoder, content, [(style, 1.0)], GatysOptions(iterations=STEPS, num_scales=1))
    assert gram_ratio(encoder, out, content, style) < 0.5
    kept = layout_similarity(image_to_tensor(out), image_to_tensor(content))
    if layout_weight:
        assert kept > 0.8  # the content at half its contrast scores 0.8
    else:
        assert kept < 0.6  # measured 0.33 before the layout term
