"""Geometric styles and flat or smooth contents, drawn in code: the images game backends send to Gatys jobs.

Styles are thin-line and high-contrast patterns (a grid of 1-pixel lines on black, pinstripes on white, a cream,
navy and red hatching, a checkerboard, halftone dots); contents are a smooth colour ramp, a flat-shaded avatar and a
sky at dusk. Every image is drawn at the size asked for, so a 1-pixel line stays 1 pixel wide (a line resized from a
larger drawing would blur into a grey band). Used by ``bench.gatys_geometric`` (the geometric bound) and the tests.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

__all__ = ["CONTENTS", "STYLES", "avatar", "checkerboard", "grid", "halftone", "hatching", "pinstripes", "ramp", "sky"]

_Rgb = tuple[float, float, float]


def _image(rgb: np.ndarray) -> Image.Image:
    """(H, W, 3) floats in [0, 1] -> an 8-bit RGB image."""
    return Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8))


def _canvas(size: int, colour: _Rgb) -> np.ndarray:
    rgb = np.empty((size, size, 3))
    rgb[:] = colour
    return rgb


def grid(size: int, period: int = 8) -> Image.Image:
    """Red horizontal and blue vertical 1-pixel lines on black."""
    rgb = _canvas(size, (0.0, 0.0, 0.0))
    rgb[::period, :] = (1.0, 0.0, 0.0)
    rgb[:, ::period] = (0.0, 0.0, 1.0)
    return _image(rgb)


def pinstripes(size: int, period: int = 6) -> Image.Image:
    """Near-black vertical 1-pixel stripes on white."""
    rgb = _canvas(size, (1.0, 1.0, 1.0))
    rgb[:, ::period] = (0.08, 0.08, 0.1)
    return _image(rgb)


def hatching(size: int, period: int = 8) -> Image.Image:
    """Navy diagonal bands 3 pixels wide one way, red bands 2 pixels wide the other, on cream."""
    y, x = np.mgrid[:size, :size]
    rgb = _canvas(size, (0.96, 0.91, 0.78))
    navy = (x + y) % period < 3
    rgb[navy] = (0.1, 0.15, 0.4)
    rgb[((x - y) % (2 * period) < 2) & ~navy] = (0.8, 0.1, 0.1)
    return _image(rgb)


def checkerboard(size: int, period: int = 8) -> Image.Image:
    """Black and white squares, ``period // 2`` pixels wide."""
    y, x = np.mgrid[:size, :size]
    on = ((x // (period // 2)) + (y // (period // 2))) % 2
    return _image(np.repeat(on[:, :, None].astype(float), 3, axis=2))


def halftone(size: int, period: int = 8) -> Image.Image:
    """Black dots on white, growing from 1 to 3.5 pixels in radius from left to right."""
    y, x = np.mgrid[:size, :size]
    dy, dx = y % period - period / 2 + 0.5, x % period - period / 2 + 0.5
    radius = 1.0 + 2.5 * x / size
    rgb = _canvas(size, (1.0, 1.0, 1.0))
    rgb[dx**2 + dy**2 < radius**2] = (0.0, 0.0, 0.0)
    return _image(rgb)


def ramp(size: int) -> Image.Image:
    """A smooth colour ramp: red grows to the right, green downwards, blue to the left."""
    red = np.tile(np.linspace(0.0, 1.0, size), (size, 1))
    return _image(np.stack([red, red.T, 1.0 - red], axis=-1))


def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in [0, 1]: (y, x)."""
    y, x = (np.mgrid[:size, :size] + 0.5) / size
    return y, x


def avatar(size: int) -> Image.Image:
    """A flat-shaded face on a sky-blue ground above grass (a game avatar)."""
    y, x = _unit_grid(size)
    rgb = _canvas(size, (0.55, 0.75, 0.95))
    rgb[y > 0.8] = (0.3, 0.6, 0.25)
    rgb[(x - 0.5) ** 2 + (y - 0.45) ** 2 < 0.09] = (0.98, 0.8, 0.6)
    for eye in (0.4, 0.6):
        rgb[(x - eye) ** 2 + (y - 0.4) ** 2 < 0.0015] = (0.1, 0.1, 0.1)
    rgb[(abs(y - 0.57) < 0.015) & (abs(x - 0.5) < 0.1)] = (0.7, 0.2, 0.2)
    return _image(rgb)


def sky(size: int) -> Image.Image:
    """A dusk sky (blue to peach), a pale sun and a dark flat horizon."""
    y, x = _unit_grid(size)
    top, bottom = np.array([0.2, 0.4, 0.8]), np.array([0.95, 0.7, 0.5])
    rgb = top * (1 - y[..., None]) + bottom * y[..., None]
    rgb[(x - 0.7) ** 2 + (y - 0.6) ** 2 < 0.01] = (1.0, 0.95, 0.6)
    rgb[y > 0.8] = (0.15, 0.15, 0.2)
    return _image(rgb)


#: name -> drawing function of one argument, the side in pixels
STYLES: dict[str, Callable[[int], Image.Image]] = {
    "grid": grid, "pinstripes": pinstripes, "hatching": hatching, "checkerboard": checkerboard, "halftone": halftone,
}
CONTENTS: dict[str, Callable[[int], Image.Image]] = {"ramp": ramp, "avatar": avatar, "sky": sky}
