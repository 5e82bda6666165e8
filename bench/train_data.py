"""Builds an AdaIN training set from images this machine already has, plus procedurally generated styles.

Content: the natural photos inside the installed scikit-image wheel (``skimage/data``) and scikit-learn's two sample
photos, each saved as several crops at two scales and mirrored, since a dozen photos is all there is. Style: the
textures of ``skimage/data`` and generated paintings (brush strokes, colour fields, mosaics, stripes, dots, waves, ...)
with palettes drawn at random, so that the style statistics the decoder learns to invert are varied.

``python -m bench.train_data --out /work/train-data`` writes ``content/`` and ``style/`` (PNG) and ``sources.json``
(where every file came from). The output is deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.photos import load_photo

__all__ = ["STYLE_GENERATORS", "build", "content_photos", "generated_styles", "texture_styles"]

# Natural photos (RGB or grey) of skimage/data and sklearn/datasets/images.
_SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                   "motorcycle_right.png", "camera.png", "coins.png", "moon.png", "retina.jpg", "ihc.png")
_SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
# Textures and the deep field, used as styles.
_SKIMAGE_TEXTURES = ("brick.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "color.png")

Rng = np.random.Generator


def _package_file(distribution: str, relative: str) -> Path:
    """A file inside an installed wheel, located without importing the package."""
    return Path(str(metadata.distribution(distribution).locate_file(relative)))


def _crops(image: Image.Image, rng: Rng, count: int, side: int) -> Iterator[Image.Image]:
    """``count`` square crops at two scales (the whole short side, and half of it), half of them mirrored."""
    w, h = image.size
    for i in range(count):
        crop = min(w, h) if i % 2 == 0 else max(min(w, h) // 2, side // 2)
        x, y = int(rng.integers(0, w - crop + 1)), int(rng.integers(0, h - crop + 1))
        out = image.crop((x, y, x + crop, y + crop)).resize((side, side), Image.Resampling.LANCZOS)
        yield out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 4 >= 2 else out


def content_photos() -> list[tuple[str, Path]]:
    photos = [("scikit-image", _package_file("scikit-image", f"skimage/data/{n}")) for n in _SKIMAGE_PHOTOS]
    photos += [("scikit-learn", _package_file("scikit-learn", f"sklearn/datasets/images/{n}")) for n in _SKLEARN_PHOTOS]
    return [(who, path) for who, path in photos if path.is_file()]


def texture_styles() -> list[Path]:
    paths = [_package_file("scikit-image", f"skimage/data/{n}") for n in _SKIMAGE_TEXTURES]
    return [p for p in paths if p.is_file()]


# --- generated styles ---------------------------------------------------------------------------------------------

def _palette(rng: Rng, n: int) -> np.ndarray:
    """``n`` colours around a random hue scheme (analogous or complementary), (n, 3) uint8."""
    base = rng.random()
    spread = rng.choice([0.08, 0.5])
    hues = (base + spread * rng.integers(0, 3, n) + rng.normal(0, 0.03, n)) % 1.0
    sat = rng.uniform(0.35, 1.0, n)
    val = rng.uniform(0.25, 1.0, n)
    hsv = np.stack([hues, sat, val], axis=1)
    return np.array(Image.fromarray((hsv[None] * 255).astype(np.uint8), "HSV").convert("RGB"))[0]


def _smooth_noise(rng: Rng, side: int, scale: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.random((scale, scale)).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _brush_strokes(rng: Rng, side: int) -> Image.Image:
    colours = _palette(rng, 6)
    img = Image.new("RGB", (side, side), tuple(int(c) for c in colours[0]))
    draw = ImageDraw.Draw(img)
    flow = _smooth_noise(rng, side, 4) * 2 * math.pi
    width = int(rng.integers(3, 12))
    for _ in range(int(rng.integers(600, 1500))):
        x, y = rng.uniform(0, side, 2)
        colour = colours[int(rng.integers(0, len(colours)))] + rng.integers(-20, 21, 3)
        points = [(x, y)]
        for _ in range(int(rng.integers(3, 9))):
            angle = flow[int(y) % side, int(x) % side]
            x, y = x + 6 * math.cos(angle), y + 6 * math.sin(angle)
            points.append((x, y))
        draw.line(points, fill=tuple(int(v) for v in np.clip(colour, 0, 255)), width=width, joint="curve")
    return img.filter(ImageFilter.SMOOTH)


def _colour_fields(rng: Rng, side: int) -> Image.Image:
    colours = _palette(rng, 4)
    img = Image.new("RGB", (side, side), tuple(int(c) for c in colours[0]))
    draw = ImageDraw.Draw(img)
    for colour in colours[1:]:
        x0, y0 = rng.uniform(0.05, 0.4, 2) * side
        x1, y1 = rng.uniform(0.6, 0.95, 2) * side
        draw.rectangle((x0, y0, x1, y1), fill=tuple(int(c) for c in colour))
    noise = _smooth_noise(rng, side, 64)[..., None] * 40 - 20
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(3))


def _mosaic(rng: Rng, side: int) -> Image.Image:
    """Voronoi cells with dark leading between them (stained glass)."""
    colours = _palette(rng, 8)
    n = int(rng.integers(30, 200))
    seeds = rng.uniform(0, side, (n, 2))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2  # (side, side, n)
    order = np.argsort(d, axis=2)[..., :2]
    nearest = np.take_along_axis(d, order, axis=2)
    cell_colour = colours[rng.integers(0, len(colours), n)]
    out = cell_colour[order[..., 0]].astype(np.float32)
    edge = (np.sqrt(nearest[..., 1]) - np.sqrt(nearest[..., 0])) < rng.uniform(1.5, 4)
    out[edge] = out[edge] * 0.15
    return Image.fromarray(out.astype(np.uint8))


def _stripes(rng: Rng, side: int) -> Image.Image:
    colours = _palette(rng, 5).astype(np.float32)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    angle = rng.uniform(0, math.pi)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    t = t + 0.05 * _smooth_noise(rng, side, 6) * rng.uniform(0, 3)
    index = np.floor(t * rng.integers(6, 40)).astype(int) % len(colours)
    return Image.fromarray(colours[index].astype(np.uint8))


def _dots(rng: Rng, side: int) -> Image.Image:
    """Pointillism: many small dots over a light ground."""
    colours = _palette(rng, 7)
    img = Image.new("RGB", (side, side), (235, 230, 215) if rng.random() < 0.5 else tuple(int(c) for c in colours[0]))
    draw = ImageDraw.Draw(img)
    r = float(rng.uniform(2, 7))
    for _ in range(int(rng.integers(2000, 6000))):
        x, y = rng.uniform(0, side, 2)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in colours[int(rng.integers(1, 7))]))
    return img


def _waves(rng: Rng, side: int) -> Image.Image:
    """Interference of a few sine waves through a random colour ramp."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    field = np.zeros((side, side), np.float32)
    for _ in range(int(rng.integers(2, 5))):
        kx, ky = rng.normal(0, 12, 2)
        field += np.sin(2 * math.pi * (kx * xx + ky * yy) + rng.uniform(0, 6.3))
    ramp = _palette(rng, 5).astype(np.float32)
    t = (field - field.min()) / max(1e-6, float(np.ptp(field))) * (len(ramp) - 1)
    low = np.floor(t).astype(int).clip(0, len(ramp) - 2)
    frac = (t - low)[..., None]
    return Image.fromarray((ramp[low] * (1 - frac) + ramp[low + 1] * frac).astype(np.uint8))


def _marble(rng: Rng, side: int) -> Image.Image:
    """Turbulent veins: a sine of position plus several octaves of noise."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    turbulence = sum(_smooth_noise(rng, side, 2 ** k) / 2 ** (k - 2) for k in range(2, 7))
    veins = np.abs(np.sin((xx * rng.uniform(2, 8) + yy * rng.uniform(0, 4) + turbulence * 2.5) * math.pi))
    colours = _palette(rng, 2).astype(np.float32)
    v = veins[..., None] ** rng.uniform(0.3, 2)
    return Image.fromarray((colours[0] * v + colours[1] * (1 - v)).astype(np.uint8))


def _cubist(rng: Rng, side: int) -> Image.Image:
    """Overlapping translucent polygons with dark outlines."""
    colours = _palette(rng, 6)
    img = Image.new("RGB", (side, side), tuple(int(c) for c in colours[0]))
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(20, 80))):
        cx, cy = rng.uniform(0, side, 2)
        radius = rng.uniform(side * 0.05, side * 0.3)
        k = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * math.pi, k))
        poly = [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in angles]
        colour = tuple(int(c) for c in colours[int(rng.integers(0, 6))])
        draw.polygon(poly, fill=(*colour, int(rng.integers(120, 230))), outline=(20, 20, 20, 255))
    return img


STYLE_GENERATORS: dict[str, Callable[[Rng, int], Image.Image]] = {
    "brush": _brush_strokes, "fields": _colour_fields, "mosaic": _mosaic, "stripes": _stripes, "dots": _dots,
    "waves": _waves, "marble": _marble, "cubist": _cubist,
}


def generated_styles(seed: int, per_kind: int, side: int) -> Iterator[tuple[str, Image.Image]]:
    for kind, generate in STYLE_GENERATORS.items():
        for i in range(per_kind):
            yield f"{kind}-{i:02d}", generate(np.random.default_rng([seed, i, len(kind)]), side)


def build(out: Path, *, seed: int = 0, crops_per_photo: int = 8, styles_per_kind: int = 6, side: int = 256) -> dict:
    """Writes ``out/content``, ``out/style`` and ``out/sources.json``; returns the sources record."""
    rng = np.random.default_rng(seed)
    (out / "content").mkdir(parents=True, exist_ok=True)
    (out / "style").mkdir(parents=True, exist_ok=True)
    sources: dict[str, list[str]] = {"content": [], "style": []}
    for who, path in content_photos():
        for i, crop in enumerate(_crops(load_photo(path), rng, crops_per_photo, side)):
            crop.save(out / "content" / f"{path.stem}-{i}.png")
        sources["content"].append(f"{who}: {path.name} x{crops_per_photo} crops")
    for path in texture_styles():
        for i, crop in enumerate(_crops(load_photo(path), rng, 4, side)):
            crop.save(out / "style" / f"{path.stem}-{i}.png")
        sources["style"].append(f"scikit-image: {path.name} x4 crops")
    for name, image in generated_styles(seed, styles_per_kind, side):
        image.save(out / "style" / f"{name}.png")
    sources["style"].append(f"generated: {', '.join(STYLE_GENERATORS)} x{styles_per_kind} each (seed {seed})")
    (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    return sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_data", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", type=int, default=256, help="side of the saved square images (px)")
    args = parser.parse_args(argv)
    sources = build(args.out, seed=args.seed, side=args.side)
    print(json.dumps(sources, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
