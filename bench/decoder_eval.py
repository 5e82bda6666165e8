"""Scores a trained AdaIN decoder against an untrained one.

``python -m bench.decoder_eval --run /work/train-run`` stylizes photo x style pairs with the run's decoder and with
a decoder at PyTorch's default initialisation (where training starts), both behind the bundled VGG19, and measures
with that encoder the quality benchmark's distances (:func:`model.quality.quality_score`): the style distance
(per-channel means and stds over relu1_1..relu4_1; the content photo's own distance to the style is the baseline)
and the content distance (relu4_1; the style image's own distance to the content is the baseline).

The styles are generated with a seed the training set did not use (held out); the photos are the training photos
(the machine has no others).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bench.photos import contact_sheet, load_photo
from bench.train_data import STYLE_GENERATORS, content_photos
from model.adain.ops import adain, calc_mean_std
from model.adain.train import DECODER_FILE
from model.encoders import BUNDLED, load_encoder
from model.images import image_to_tensor, tensor_to_image
from model.network import RELU4_1, Decoder, Encoder
from model.quality import quality_score
from model.weights import load_decoder_checkpoint

__all__ = ["evaluate"]

_PHOTOS = ("astronaut", "chelsea", "coffee", "china")
_HELD_OUT_SEED = 991


def _stylize(encoder: Encoder, decoder: Decoder, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        mean, std = calc_mean_std(encoder(style))
        out = decoder(adain(encoder(content), mean, std))
    return out[:, :, : content.shape[2], : content.shape[3]].clamp(0, 1)


def _pairs(side: int) -> list[tuple[str, torch.Tensor, str, torch.Tensor]]:
    photos = {p.stem: p for _, p in content_photos()}
    contents = [(n, image_to_tensor(load_photo(photos[n], side, fit="square"))) for n in _PHOTOS if n in photos]
    styles = []
    for kind in ("brush", "mosaic", "cubist", "dots"):
        image = STYLE_GENERATORS[kind](np.random.default_rng([_HELD_OUT_SEED, len(kind)]), side)
        styles.append((kind, image_to_tensor(image)))
    return [(cn, c, sn, s) for cn, c in contents for sn, s in styles]


def evaluate(decoder: Decoder, encoder: Encoder, side: int, sheet: Path | None = None) -> dict:
    """Scores ``decoder`` and an untrained decoder on every pair; optionally writes a contact sheet PNG (rows:
    content, style, untrained, trained)."""
    torch.manual_seed(0)
    untrained = Decoder().eval()
    rows, sheet_rows = [], []
    pairs = _pairs(side)
    shown = len(pairs) // len(_PHOTOS) + 1  # the sheet shows the diagonal: photo i with style i
    for index, (cn, c, sn, s) in enumerate(pairs):
        trained_out, untrained_out = _stylize(encoder, decoder, c, s), _stylize(encoder, untrained, c, s)
        scores = {who: quality_score(encoder, image, c, s) for who, image in
                  (("content_itself", c), ("style_itself", s), ("untrained", untrained_out), ("trained", trained_out))}
        rows.append({"content": cn, "style": sn,
                     "style_distance": {w: scores[w].style for w in ("content_itself", "untrained", "trained")},
                     "content_distance": {w: scores[w].content for w in ("style_itself", "untrained", "trained")}})
        if index % shown == 0:
            sheet_rows.append([tensor_to_image(t) for t in (c, s, untrained_out, trained_out)])
    if sheet is not None:
        contact_sheet(sheet_rows, ["content", "style", "untrained", "trained"], cell=side).save(sheet, optimize=True)
    summary = {kind: {who: float(np.mean([r[kind][who] for r in rows])) for who in rows[0][kind]}
               for kind in ("style_distance", "content_distance")}
    return {"side": side, "pairs": len(rows), "mean": summary, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decoder_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a model.adain.train output folder")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--sheet", type=Path, help="write a contact sheet (content, style, untrained, trained)")
    args = parser.parse_args(argv)
    encoder, _ = load_encoder(BUNDLED, RELU4_1)
    decoder = Decoder()
    decoder.load_official(load_decoder_checkpoint(args.run / DECODER_FILE)[0])
    scores = evaluate(decoder.eval(), encoder, args.side, args.sheet)
    print(json.dumps({k: v for k, v in scores.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
