"""Gatys on line and pattern styles: how far each style loss moves smooth or flat content towards them.

Every pair of :mod:`bench.patterns` content and style (drawn at the size measured) is optimised with each style loss,
the other options at a Gatys job's defaults (or ``--iterations`` / ``--num-scales`` to shorten them), and scored by
the benchmark's judge, :func:`model.quality.gatys_score` on the bundled VGG19: the result's Gram distance to the style
as a fraction of the content image's own (1: unchanged; the target is at most 0.5) and its content distance. Writes
``bench/results/gatys_geometric.md`` and a sheet (content | style | one column per loss) next to it.

``python -m bench.gatys_geometric --size 64 --num-scales 1 --iterations 50`` is the quick form.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.patterns import CONTENTS, STYLES
from bench.photos import contact_sheet
from model.encoders import BUNDLED, load_encoder
from model.gatys import GatysOptions, stylize_gatys
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import gatys_score

__all__ = ["PAIRS", "measure"]

RESULTS = Path(__file__).parent / "results"
#: (content, style): thin lines on dark, thin lines on light, and the cream/navy/red hatching
PAIRS: tuple[tuple[str, str], ...] = (("ramp", "grid"), ("avatar", "pinstripes"), ("sky", "hatching"))
LOSSES: tuple[str, ...] = ("gram", "gram_mean_std")


def _judge(encoder: Encoder, result, content, style) -> tuple[float, float]:
    """(Gram ratio to the content's own, content distance)."""
    c, s = image_to_tensor(content), image_to_tensor(style)
    ours = gatys_score(encoder, image_to_tensor(result), c, s)
    return ours.style / gatys_score(encoder, c, c, s).style, ours.content


def measure(size: int, iterations: int, num_scales: int, out: Path = RESULTS) -> list[str]:
    """Every pair with every loss; returns the markdown table (and writes it with the sheet)."""
    encoder = load_encoder(BUNDLED, RELU5_1)[0]
    lines = [f"{size} px, {num_scales} scale(s) x {iterations} L-BFGS steps, other options at their defaults. "
             "Gram ratio: the result's Gram distance to the style over the content's own (judge: "
             "model.quality.gatys_score, bundled VGG19); content: its relu4_2 distance to the content.", "",
             "| content x style | " + " | ".join(f"{loss}: Gram ratio / content" for loss in LOSSES) + " |",
             "|---|" + "---|" * len(LOSSES)]
    rows = []
    for cname, sname in PAIRS:
        content, style = CONTENTS[cname](size), STYLES[sname](size)
        row, cells = [content, style], []
        for loss in LOSSES:
            print(f"  {cname} x {sname}: {loss} ...", file=sys.stderr, flush=True)
            options = GatysOptions(size=size, iterations=iterations, num_scales=num_scales, style_loss=loss)
            result = stylize_gatys(encoder, content, [(style, 1.0)], options)
            ratio, distance = _judge(encoder, result, content, style)
            row.append(result)
            cells.append(f"{ratio:.3f} / {distance:.3f}")
        rows.append(row)
        lines.append(f"| {cname} x {sname} | " + " | ".join(cells) + " |")
    out.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(rows, ("content", "style", *LOSSES), cell=max(size, 128))
    sheet.save(out / "gatys_geometric_sheet.png", optimize=True)
    (out / "gatys_geometric.md").write_text("\n".join(lines) + "\n")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=GatysOptions.iterations)
    parser.add_argument("--num-scales", type=int, default=GatysOptions.num_scales)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print("\n".join(measure(args.size, args.iterations, args.num_scales, args.out)))


if __name__ == "__main__":
    main()
