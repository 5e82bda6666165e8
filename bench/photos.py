"""The photos the benchmarks and tools work on, and the contact sheets they show their results in.

Every benchmark loads its pictures with :func:`load_photo` (a file, or a photo shipped inside scikit-image's wheel,
by name) and lays results out with :func:`contact_sheet`, so sizes, resampling and layout are the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

__all__ = ["Fit", "contact_sheet", "fit_photo", "load_photo"]

#: How ``side`` applies: to the longer side, to the shorter side (both keep the aspect), or to both (a square).
Fit = Literal["longer", "shorter", "square"]
_TITLE_HEIGHT = 22


def load_photo(source: str | os.PathLike[str], side: int | None = None, *, fit: Fit = "longer") -> Image.Image:
    """An RGB photo: a file, or the name of a photo in scikit-image's wheel (``skimage.data.<name>``, e.g.
    ``"astronaut"``); resized with :func:`fit_photo` when ``side`` is given."""
    if isinstance(source, str) and not Path(source).suffix:
        from skimage import data  # local: only the benchmarks, tools and tests need scikit-image

        image = Image.fromarray(getattr(data, source)()).convert("RGB")
    else:
        with Image.open(source) as opened:
            image = opened.convert("RGB")
    return image if side is None else fit_photo(image, side, fit)


def fit_photo(image: Image.Image, side: int, fit: Fit = "longer") -> Image.Image:
    """``image`` resized (Lanczos) so that its longer side, its shorter side, or both sides are ``side``."""
    if fit == "square":
        return image.resize((side, side), Image.Resampling.LANCZOS)
    if fit not in ("longer", "shorter"):
        raise ValueError(f"fit must be 'longer', 'shorter' or 'square', not {fit!r}")
    scale = side / (max(image.size) if fit == "longer" else min(image.size))
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def contact_sheet(rows: Sequence[Sequence[Image.Image]], titles: Sequence[str] = (), *, cell: int = 192,
                  gap: int = 4) -> Image.Image:
    """A grid on white: one row per sequence of images, each fitted into a ``cell`` square (its aspect kept) and
    centred in its column, ``gap`` pixels apart; a row is as tall as its tallest image, so rows of landscape photos
    leave no bands. ``titles``, when given, label the columns above the first row."""
    tiles = [[fit_photo(image.convert("RGB"), cell, "longer") for image in row] for row in rows]
    heights = [max((tile.height for tile in row), default=0) for row in tiles]
    columns = max([len(titles), *(len(row) for row in rows)])
    top = _TITLE_HEIGHT if titles else 0
    sheet = Image.new("RGB", (columns * cell + (columns - 1) * gap, top + sum(heights) + (len(rows) - 1) * gap),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(titles):
        draw.text((col * (cell + gap) + 4, 5), _fitted(draw, title, cell - 8), fill="black")
    y = top
    for row, height in zip(tiles, heights, strict=True):
        for col, tile in enumerate(row):
            sheet.paste(tile, (col * (cell + gap) + (cell - tile.width) // 2, y + (height - tile.height) // 2))
        y += height + gap
    return sheet


def _fitted(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    """``text`` shortened (with an ellipsis) until it is at most ``width`` pixels wide."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "...") > width:
        text = text[:-1]
    return text + "..."
