"""The neutral quality measures: zero at their target, growing with distance, independent of the style's size."""

from __future__ import annotations

import pytest
import torch

from model.gatys import gram
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import gatys_score, layout_similarity, quality_score
from model.weights import random_vgg_state
from tests.helpers import make_image

CONTENT = image_to_tensor(make_image(64, 48, seed=1))
STYLE = image_to_tensor(make_image(64, 48, seed=2))  # the result is compared at the content's size


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    enc = Encoder(RELU5_1)
    enc.load_official(random_vgg_state(0))
    return enc


@pytest.mark.parametrize("score", [quality_score, gatys_score])
def test_zero_at_the_target_and_larger_away_from_it(encoder: Encoder, score) -> None:
    at_content = score(encoder, CONTENT, CONTENT, STYLE)
    at_style = score(encoder, STYLE, CONTENT, STYLE)
    assert at_content.content == pytest.approx(0.0, abs=1e-6)
    assert at_style.style == pytest.approx(0.0, abs=1e-6)
    assert at_content.style > 0.05 and at_style.content > 0.05
    noise = torch.rand(CONTENT.shape, generator=torch.Generator().manual_seed(3)) - 0.5
    near, far = (score(encoder, (CONTENT + k * noise).clamp(0, 1), CONTENT, STYLE) for k in (0.05, 0.5))
    assert 0 < near.content < far.content


def test_style_measures_ignore_the_style_images_size(encoder: Encoder) -> None:
    tiled = STYLE.repeat(1, 1, 2, 2)  # the same texture, four times the area: same statistics away from borders
    a = quality_score(encoder, CONTENT, CONTENT, STYLE).style
    b = quality_score(encoder, CONTENT, CONTENT, tiled).style
    assert b == pytest.approx(a, rel=0.25)


def test_gram_is_normalised_by_positions() -> None:
    feat = torch.rand(1, 4, 6, 5)
    assert torch.allclose(gram(feat), gram(feat.repeat(1, 1, 2, 1)), atol=1e-6)


def test_layout_similarity_sees_the_picture_through_a_fine_pattern() -> None:
    """A thin-line pattern over the picture keeps its layout; a faint copy, a flat image or a negative do not."""
    from bench.patterns import avatar, pinstripes

    content = image_to_tensor(avatar(128))
    stripes = image_to_tensor(pinstripes(128))
    assert layout_similarity(content, content) == pytest.approx(1.0)
    assert layout_similarity(content * stripes, content) > 0.9  # dark lines every 6 px mostly average out
    half, faint = (content.mean() + k * (content - content.mean()) for k in (0.5, 0.1))
    assert layout_similarity(half, content) == pytest.approx(0.8, abs=0.01)  # 2k / (1 + k^2)
    assert layout_similarity(faint, content) < 0.25  # the same structure, too little of it to see
    assert layout_similarity(torch.full_like(content, 0.5), content) == 0.0
    assert layout_similarity(1 - content, content) < -0.9
    assert layout_similarity(content + 0.2, content) == pytest.approx(1.0, abs=1e-4)  # a tone change is not a loss
