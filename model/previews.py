"""Previews of built-in presets: each rendered by its own model on one bundled photo, since presets have no image.

``preview_portrait.jpg`` is a 256x256 crop of scikit-image's ``astronaut`` (Eileen Collins, NASA: public domain),
a portrait because avatars are what presets are mostly used for. Previews are rendered at the photo's size and
reduced, which keeps a style's strokes at the scale users will see on a 256 px output.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from model.family import BatchItem, Preset, StyleModel, StyleSource
from model.masks import render_batch

__all__ = ["PREVIEW_PHOTO", "preview"]

PREVIEW_PHOTO = Path(__file__).with_name("preview_portrait.jpg")


def preview(model: StyleModel, preset: Preset, size: int) -> Image.Image:
    """``preset`` rendered by ``model`` on the bundled portrait, at most ``size`` px a side."""
    with Image.open(PREVIEW_PHOTO) as photo:
        content = photo.convert("RGB")
    item = BatchItem(content, (StyleSource(code=preset.code, preset=True),))
    out = render_batch(model, [item])[0]
    out.thumbnail((size, size), Image.Resampling.LANCZOS)
    return out
