"""Writes a contact sheet of the Magenta family's results on scikit-image's sample photos (docs/magenta-sheet.png).

Rows are contents; columns are four styles, then alpha 0 and 0.5, luminance and CORAL colour preservation, and a
50/50 blend. Run from the repository root: ``python tools/magenta_sheet.py [OUT.png]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw
from skimage import data

from model.family import ColorMode, StyleSource, StylizeOptions
from model.magenta.model import MagentaModel

TILE = 192


def _samples() -> tuple[list[Image.Image], dict[str, Image.Image]]:
    contents = [Image.fromarray(f()) for f in (data.astronaut, data.chelsea, data.coffee)]
    contents = [c.resize((384, round(384 * c.height / c.width)), Image.Resampling.BILINEAR) for c in contents]
    folder = Path(data.__file__).parent
    styles = {"hubble": Image.open(folder / "hubble_deep_field.jpg").convert("RGB"),
              "retina": Image.open(folder / "retina.jpg").convert("RGB"),
              "rocket": Image.fromarray(data.rocket()),
              "gravel": Image.open(folder / "gravel.png").convert("RGB")}
    return contents, styles


def _row(model: MagentaModel, content: Image.Image, styles: dict[str, Image.Image]) -> list[Image.Image]:
    first, second = (StyleSource(styles[k]) for k in ("hubble", "retina"))
    results = [model.stylize(content, [StyleSource(s)]) for s in styles.values()]
    results += [model.stylize(content, [first], StylizeOptions(alpha=a)) for a in (0.0, 0.5)]
    results += [model.stylize(content, [second], StylizeOptions(color=c)) for c in (ColorMode.LUMINANCE,
                                                                                     ColorMode.CORAL)]
    results.append(model.stylize(content, [first, second]))
    return [content, *results]


def main(out: str = "docs/magenta-sheet.png") -> None:
    model = MagentaModel.load()
    contents, styles = _samples()
    labels = ["content", *styles, "alpha 0 (hubble)", "alpha .5 (hubble)", "luminance (retina)", "coral (retina)",
              "hubble + retina"]
    rows = [[Image.new("RGB", (TILE, TILE), "white"), *(s.resize((TILE, TILE)) for s in styles.values())]]
    rows += [[im.resize((TILE, round(TILE * im.height / im.width))) for im in _row(model, c, styles)]
             for c in contents]
    heights = [max(im.height for im in row) for row in rows]
    sheet = Image.new("RGB", (TILE * len(labels), 16 + sum(heights)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(labels):
        draw.text((i * TILE + 3, 2), label, fill="black")
    y = 16
    for row, height in zip(rows, heights, strict=True):
        for i, im in enumerate(row):
            sheet.paste(im, (i * TILE, y))
        y += height
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
