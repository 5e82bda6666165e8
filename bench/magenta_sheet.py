"""Writes a contact sheet of the Magenta family's results on scikit-image's sample photos (docs/magenta-sheet.png).

Rows are contents; columns are four styles, then alpha 0 and 0.5, luminance and CORAL colour preservation, and a
50/50 blend. ``python -m bench.magenta_sheet [--out OUT.png]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from bench.photos import contact_sheet, load_photo
from model.family import ColorMode, StyleSource, StylizeOptions
from model.magenta.model import MagentaModel

__all__: list[str] = []

CONTENTS = ("astronaut", "chelsea", "coffee")
STYLES = ("hubble_deep_field", "retina", "rocket", "gravel")
CONTENT_SIDE = 384  # longer side of the contents; the styles keep their own size


def _row(model: MagentaModel, content: Image.Image, styles: Sequence[Image.Image]) -> list[Image.Image]:
    hubble, retina = (StyleSource(s) for s in styles[:2])
    results = [model.stylize(content, [StyleSource(s)]) for s in styles]
    results += [model.stylize(content, [hubble], StylizeOptions(alpha=a)) for a in (0.0, 0.5)]
    results += [model.stylize(content, [retina], StylizeOptions(color=c)) for c in (ColorMode.LUMINANCE,
                                                                                     ColorMode.CORAL)]
    results.append(model.stylize(content, [hubble, retina]))
    return [content, *results]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.magenta_sheet", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/magenta-sheet.png"))
    args = parser.parse_args(argv)
    model = MagentaModel.load()
    styles = [load_photo(name) for name in STYLES]
    titles = ["content", "hubble", "retina", "rocket", "gravel", "alpha 0 (hubble)", "alpha .5 (hubble)",
              "luminance (retina)", "coral (retina)", "hubble + retina"]
    rows = [[Image.new("RGB", (1, 1), "white"), *styles]]
    rows += [_row(model, load_photo(name, CONTENT_SIDE), styles) for name in CONTENTS]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, titles).save(args.out, optimize=True)


if __name__ == "__main__":
    main()
