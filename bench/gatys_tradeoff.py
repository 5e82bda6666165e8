"""What ``content_weight`` does, in pictures: one row per pair, one column per weight, the rest a job's defaults.

``content_weight`` scales the whole content term (relu4_2 and the content's layout) against the style's, so below 1
the style takes more of the picture and above 1 less. Each cell is judged as :mod:`bench.gatys_geometric` judges:
the Gram distance to the style over the content image's own (lower: more of the style) and
:func:`model.quality.layout_similarity` to the content (higher: more of the picture's layout).

Writes ``bench/results/gatys_tradeoff.{md,json}`` and ``gatys_tradeoff_sheet.png`` (content | style | one column per
weight). ``python -m bench.gatys_tradeoff --size 64 --iterations 20`` is a quick look.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from bench.gatys_geometric import judge
from bench.patterns import CONTENTS, STYLES
from bench.photos import contact_sheet, load_photo
from bench.streaming import machine, measured_on
from model.encoders import BUNDLED, load_encoder
from model.gatys import GatysOptions, stylize_gatys
from model.network import RELU5_1

__all__ = ["PAIRS", "WEIGHTS", "measure"]

RESULTS = Path(__file__).parent / "results"
#: a flat avatar under thin stripes, a photo under a coloured hatching, a photo against a stained tissue section
PAIRS: tuple[tuple[str, str], ...] = (("avatar", "pinstripes"), ("astronaut", "hatching"),
                                      ("chelsea", "immunohistochemistry"))
WEIGHTS: tuple[float, ...] = (0.25, 1.0, 4.0)


def picture(name: str, size: int) -> Image.Image:
    """A drawn content or pattern of :mod:`bench.patterns` by name, else a photo :func:`load_photo` knows."""
    drawn = CONTENTS.get(name) or STYLES.get(name)
    return drawn(size) if drawn is not None else load_photo(name, size)


def measure(size: int, options: GatysOptions, weights: Sequence[float] = WEIGHTS,
            pairs: Sequence[tuple[str, str]] = PAIRS, out: Path = RESULTS) -> list[str]:
    """Every pair at every weight; rewrites the table, the JSON and the sheet after each pair."""
    out.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder(BUNDLED, RELU5_1)[0]
    measured = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine()}
    rows: list[dict] = []
    sheet: list[list[Image.Image]] = []
    lines: list[str] = []
    for pair in pairs:
        content, style = picture(pair[0], size), picture(pair[1], size)
        cells: list[Image.Image] = []
        row: dict = {"pair": list(pair), "size": size, "weights": {}}
        for weight in weights:
            print(f"  gatys_tradeoff: {pair[0]} x {pair[1]}, content_weight {weight:g} ...", file=sys.stderr,
                  flush=True)
            result = stylize_gatys(encoder, content, [(style, 1.0)], replace(options, content_weight=weight))
            row["weights"][f"{weight:g}"] = judge(encoder, result, content, style)
            cells.append(result)
        rows.append(row)
        sheet.append([content, style, *cells])
        lines = _write(out, options, weights, measured, rows, sheet, size)
    return lines


def _write(out: Path, options: GatysOptions, weights: Sequence[float], measured: dict, rows: list[dict],
           sheet: list[list[Image.Image]], size: int) -> list[str]:
    head = " | ".join(f"content_weight {w:g}" for w in weights)
    lines = [f"{size} px, a Gatys job's defaults ({options.num_scales} scale(s) x {options.iterations} L-BFGS steps) "
             "but content_weight. Each cell: the Gram distance to the style over the content image's own (lower: "
             "more style) / model.quality.layout_similarity to the content (higher: more of the picture); judge: "
             "model.quality.gatys_score, bundled VGG19. " + measured_on(measured["date"], measured["machine"]), "",
             f"| content x style | {head} |", "|---|" + "---|" * len(weights)]
    for row in rows:
        cells = " | ".join(f"{m['gram_ratio']:.2f} / {m['layout']:.2f}" for m in row["weights"].values())
        lines.append(f"| {row['pair'][0]} x {row['pair'][1]} | {cells} |")
    titles = ("content", "style", *(f"content_weight {w:g}" for w in weights))
    contact_sheet(sheet, titles, cell=max(size, 128)).save(out / "gatys_tradeoff_sheet.png", optimize=True)
    (out / "gatys_tradeoff.md").write_text("\n".join(lines) + "\n")
    (out / "gatys_tradeoff.json").write_text(json.dumps({**measured, "rows": rows}, indent=2) + "\n")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=GatysOptions.iterations)
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    parser.add_argument("--pairs", nargs="+", metavar="CONTENT:STYLE", help="default: " + " ".join(
        f"{c}:{s}" for c, s in PAIRS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    options = GatysOptions(size=args.size, iterations=args.iterations)
    pairs = [tuple(p.split(":")) for p in args.pairs] if args.pairs else PAIRS
    print("\n".join(measure(args.size, options, args.weights, pairs, args.out)))


if __name__ == "__main__":
    main()
