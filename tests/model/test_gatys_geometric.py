"""Gatys on the real bundled VGG19 with thin-line styles: smooth or flat content must take them and stay recognisable.

A ramp against a red and blue grid of 1-pixel lines on black, a flat avatar against pinstripes and a ramp against a
checkerboard (bench.patterns), 64 px (the avatar 96 px), one scale. With the Gram loss alone the image stays the ramp
(the Gram gradient is proportional to the ramp's weak features); the default Gram + mean/std loss paints the grid in,
the content term's layout keeps the avatar visible under the stripes, and the spectrum term puts the checkerboard's
squares on one lattice. Scored by the benchmark's judges: model.quality.gatys_score's Gram distance as a fraction of
the content image's own, and model.quality.layout_similarity.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from PIL import Image

from bench.patterns import avatar, checkerboard, grid, pinstripes, ramp
from model.encoders import BUNDLED, load_encoder
from model.gatys import ContentLoss, GatysOptions, GatysProgress, SpectrumLoss, layout, stylize_gatys
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import gatys_score, layout_similarity

pytestmark = pytest.mark.slow  # ~50 steps of the real VGG19 per case

SIZE = 64
AVATAR_SIZE = 96
STEPS = 50


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(BUNDLED, RELU5_1)[0]


def gram_ratio(encoder: Encoder, result, content, style) -> float:
    c, s = image_to_tensor(content), image_to_tensor(style)
    return gatys_score(encoder, image_to_tensor(result), c, s).style / gatys_score(encoder, c, c, s).style


@pytest.mark.parametrize("style_loss, bound", [("gram_mean_std", 0.5), ("gram", None)])
def test_a_ramp_moves_towards_a_grid_of_thin_lines(encoder: Encoder, style_loss: str, bound: float | None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if bound is None:  # the Gram loss alone, without the spectrum term that comes with every style loss
        monkeypatch.setattr(SpectrumLoss, "WEIGHT", 0.0)
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
    """The stripes come in either way; without the layout term the face goes with them. At 96 px, where the layout
    keeps 0.91 (0.87 at 128 px with a job's defaults); at 64 px the stripes take more of the face (0.75)."""
    monkeypatch.setattr(ContentLoss, "LAYOUT_WEIGHT", layout_weight)
    content, style = avatar(AVATAR_SIZE), pinstripes(AVATAR_SIZE)
    out = stylize_gatys(encoder, content, [(style, 1.0)], GatysOptions(iterations=STEPS, num_scales=1))
    assert gram_ratio(encoder, out, content, style) < 0.5
    kept = layout_similarity(image_to_tensor(out), image_to_tensor(content))
    if layout_weight:
        assert kept > 0.8  # the content at half its contrast scores 0.8
    else:
        assert kept < 0.6  # measured 0.33 before the layout term


def lattice_coherence(image: Image.Image, period: int) -> float:
    """How much of the image's pattern (its luminance less the layout's blur) lies on a checkerboard's four
    fundamental frequencies: near 0.66 for one lattice, less where patches sit on different phases of it (their
    energy spreads around the peaks), 0 for no checker at all."""
    luma = image_to_tensor(image).mean(dim=1, keepdim=True)
    pattern = luma - layout(luma, ContentLoss.LAYOUT_CELLS) - luma.mean()
    power = torch.fft.fft2(pattern[0, 0]).abs().pow(2)
    k = luma.shape[-1] // period
    peaks = power[k, k] + power[k, -k] + power[-k, k] + power[-k, -k]
    return float(peaks / power.sum())


@pytest.mark.parametrize("spectrum_weight", [SpectrumLoss.WEIGHT, 0.0])
def test_a_checkerboard_is_drawn_on_one_lattice(encoder: Encoder, spectrum_weight: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Gram and mean/std losses are blind to where a square sits, so patches of the result settle on different
    phases of the lattice, with seams between them; the spectrum term sees the whole image's period and phase."""
    monkeypatch.setattr(SpectrumLoss, "WEIGHT", spectrum_weight)
    content, style = ramp(SIZE), checkerboard(SIZE)
    out = stylize_gatys(encoder, content, [(style, 1.0)], GatysOptions(iterations=STEPS, num_scales=1))
    coherence = lattice_coherence(out, period=8)
    if spectrum_weight:
        assert coherence > 0.15  # measured 0.26 (the style itself: 0.68)
    else:
        assert coherence < 0.05  # measured 0.008: squares in patches of every phase
