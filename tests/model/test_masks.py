"""Masks for every family: native families get them as they are; the others by compositing renders (model.masks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from PIL import Image

from model.errors import InvalidOptionError
from model.family import (
    BatchItem,
    Capabilities,
    ColorMode,
    MaskMode,
    ModelInfo,
    StyleCode,
    StyleSource,
    StyleSpec,
    StylizeOptions,
    check_request,
)
from model.images import resize_shorter
from model.masks import FEATHER, composite, feathered, render_batch
from tests.helpers import make_image

RED, BLUE = (220, 30, 30), (30, 30, 220)


@dataclass
class Painter:
    """A fake family: paints the content the weighted mean of its styles' colours (times alpha) and records every
    ``stylize_batch`` call, so the plan the compositor makes can be read back."""

    masks: MaskMode = MaskMode.COMPOSITED
    calls: list[list[BatchItem]] = field(default_factory=list)
    presets: tuple = ()
    code_identity: str = "paint:0"

    def __post_init__(self) -> None:
        self.capabilities = Capabilities(masks=self.masks, colors=frozenset({ColorMode.NONE}))
        self.info = ModelInfo("paint", "paint", "v1", {}, {})

    def check(self, styles: Sequence[StyleSpec], options: StylizeOptions) -> None:
        check_request(self.info, self.capabilities, styles, options)

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop=None) -> list[Image.Image]:
        self.calls.append(list(items))
        out = []
        for item in items:
            weights = check_request(self.info, self.capabilities, [s.spec for s in item.styles], item.options)
            colour = sum(w * s.code.tensors["rgb"] for w, s in zip(weights, item.styles, strict=True))
            content = np.asarray(resize_shorter(item.content, item.options.content_size), dtype=np.float32)
            a = item.options.alpha
            pixels = content * (1 - a) + colour.numpy() * a
            out.append(Image.fromarray(np.round(pixels).clip(0, 255).astype(np.uint8), "RGB"))
        return out


def paint(rgb: tuple[int, int, int], **kwargs) -> StyleSource:
    return StyleSource(code=StyleCode("paint:0", {"rgb": torch.tensor(rgb, dtype=torch.float32)}, 1, 1), **kwargs)


def half(width: int, height: int, *, left: bool = True) -> Image.Image:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, : width // 2] = 255
    return Image.fromarray(mask if left else 255 - mask, "L")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_native_families_get_their_masks_unchanged() -> None:
    model = Painter(MaskMode.NATIVE)
    item = BatchItem(make_image(32, 24), (paint(RED, mask=half(32, 24)),))
    render_batch(model, [item])
    assert model.calls == [[item]]


def test_items_without_masks_go_to_the_model_as_they_are() -> None:
    model = Painter()
    items = [BatchItem(make_image(32, 24), (paint(RED),)), BatchItem(make_image(32, 24), (paint(BLUE),))]
    render_batch(model, items)
    assert model.calls == [items]


def test_complementary_masks_give_each_style_its_half_with_a_soft_seam() -> None:
    model = Painter()
    content = make_image(200, 100, seed=3)
    item = BatchItem(content, (paint(RED, mask=half(200, 100)), paint(BLUE, mask=half(200, 100, left=False))))
    out = pixels(render_batch(model, [item])[0])
    assert len(model.calls) == 1 and len(model.calls[0]) == 2  # one call: a render per masked style
    assert (np.abs(out[:, :90] - RED) <= 1).all() and (np.abs(out[:, 110:] - BLUE) <= 1).all()
    seam = out[50, 95:106, 0]
    assert (np.diff(seam) <= 0).all() and seam[0] > seam[4] > seam[5] > seam[-1]  # red fades into blue
    assert 100 < (int(seam[4]) + int(seam[5])) / 2 < 150  # across the edge a mix, not either colour


def test_an_unmasked_style_is_rendered_once_and_blends_with_masked_ones_by_weight() -> None:
    model = Painter()
    item = BatchItem(make_image(40, 20), (paint(RED, weight=1.0), paint(BLUE, weight=3.0, mask=half(40, 20))))
    out = pixels(render_batch(model, [item])[0])
    assert [len(i.styles) for i in model.calls[0]] == [1, 1]
    assert np.abs(out[:, -10:] - RED).max() <= 1  # only the unmasked style on the right
    assert np.abs(out[:, :10] - np.round(0.25 * np.array(RED) + 0.75 * np.array(BLUE))).max() <= 1


def test_where_no_style_applies_the_content_shows() -> None:
    model = Painter()
    content = make_image(40, 20, seed=5)
    out = pixels(render_batch(model, [BatchItem(content, (paint(RED, mask=half(40, 20)),))])[0])
    assert np.abs(out[:, -10:] - pixels(content)[:, -10:]).max() <= 1
    assert np.abs(out[:, :10] - RED).max() <= 1


def test_styles_that_apply_nowhere_are_not_rendered() -> None:
    model = Painter()
    content = make_image(40, 20, seed=5)
    black = Image.new("L", (40, 20), 0)
    item = BatchItem(content, (paint(RED, mask=black), paint(BLUE, weight=0.0, mask=half(40, 20)), paint(RED)))
    render_batch(model, [item])
    assert [len(i.styles) for c in model.calls for i in c] == [1]  # the unmasked style only
    nothing = BatchItem(content, (paint(RED, mask=black),))
    assert pixels(render_batch(model, [nothing])[0]).tolist() == pixels(content).tolist()


def test_options_apply_to_every_render_and_masks_follow_the_resized_content() -> None:
    model = Painter()
    options = StylizeOptions(alpha=0.5, content_size=20)
    item = BatchItem(make_image(80, 40, seed=1), (paint(RED, mask=half(8, 4)),), options)
    out = render_batch(model, [item])[0]
    assert out.size == (40, 20)
    rendered = model.calls[0][0]
    assert rendered.content.size == (40, 20) and rendered.options.alpha == 0.5
    assert rendered.options.content_size == 0 and rendered.styles[0].mask is None


def test_the_whole_request_is_checked_before_any_render() -> None:
    model = Painter()
    bad = BatchItem(make_image(20, 20), (paint(RED, weight=-1.0, mask=half(20, 20)), paint(BLUE)))
    with pytest.raises(InvalidOptionError, match="weight"):
        render_batch(model, [bad])
    assert model.calls == []


def test_feathering_keeps_full_masks_full_and_scales_with_the_image() -> None:
    assert feathered(Image.new("L", (10, 10), 255), (300, 200)).min() == 1.0
    for width in (200, 800):
        edge = feathered(half(width, width), (width, width))[0]
        soft = int(((edge > 0.02) & (edge < 0.98)).sum())
        assert FEATHER * width * 2 <= soft <= FEATHER * width * 6  # a few standard deviations wide


def test_composite_is_the_mask_weighted_average() -> None:
    content = Image.new("RGB", (2, 1), (0, 0, 0))
    outs = [Image.new("RGB", (2, 1), (100, 100, 100)), Image.new("RGB", (2, 1), (200, 200, 200))]
    masks = [np.array([[1.0, 0.5]], np.float32), np.array([[1.0, 0.0]], np.float32)]
    got = pixels(composite(content, outs, [0.5, 0.5], masks))[0, :, 0]
    assert got.tolist() == [150, 50]  # full coverage: the average; half coverage of one: half of it on the content
