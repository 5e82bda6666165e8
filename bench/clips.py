"""Test clips with known motion: real photos moved by a camera (pan, zoom, rotation) with a real object crossing them.

Each frame is rendered from scikit-image's photos by an exact affine map, so the true motion between consecutive
frames, and which pixels are visible in both, are known: the warping error (:func:`model.quality.warping_error`)
then needs no flow estimator. The object is a patch of another photo with a feathered edge, moving over the
background; pixels of its blended edge, the background it uncovers or covers, and what enters the frame count as
not visible.

``python -m bench.clips --out DIR`` writes each clip as numbered PNG frames (``DIR/NAME/frame_0001.png``...) and as a
``DIR/NAME.y4m`` (YUV 4:2:0, what Chromium's ``--use-file-for-fake-video-capture`` and ffmpeg read).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.photos import load_photo
from model.temporal import Motion

__all__ = ["CLIPS", "Clip", "make_clip", "write_frames", "write_y4m"]

#: Clip name -> (background photo, camera per frame: pan px (x, y), zoom factor, rotation degrees).
CLIPS: dict[str, tuple[str, tuple[float, float], float, float]] = {
    "pan": ("rocket", (3.3, 0.6), 1.0, 0.0),
    "zoom": ("coffee", (0.0, 0.0), 0.985, 0.0),  # the camera's footprint shrinks 1.5 % a frame: a zoom in
    "rotate": ("astronaut", (0.0, 0.0), 1.0, 1.2),
}
_OBJECT = ("chelsea", (80, 0, 390, 300))  # the cat's head: photo and (left, top, right, bottom) crop
_OBJECT_HEIGHT = 0.4  # of the frame's
_OBJECT_STEP = (-5.2, 2.7)  # px per frame, in frame coordinates
_OPAQUE, _CLEAR = 0.999, 0.001


@dataclass(frozen=True)
class Clip:
    """Frames and the true motion between them: ``motions[i]`` takes ``frames[i]`` to ``frames[i + 1]``."""

    name: str
    frames: list[Image.Image]
    motions: list[Motion]


def _photo(name: str) -> np.ndarray:
    return np.asarray(load_photo(name))


def _camera(center: np.ndarray, scale: float, degrees: float, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine map from frame pixels to background pixels (frame centre at ``center``)."""
    width, height = size
    cos, sin = math.cos(math.radians(degrees)) * scale, math.sin(math.radians(degrees)) * scale
    half = np.array([(width - 1) / 2, (height - 1) / 2])
    linear = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (center - linear @ half)[:, None]])


def _apply(affine: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (affine[0, 0] * x + affine[0, 1] * y + affine[0, 2], affine[1, 0] * x + affine[1, 1] * y + affine[1, 2])


def _invert(affine: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(affine[:, :2])
    return np.hstack([linear, -(linear @ affine[:, 2])[:, None]])


def _object_patch(height: int) -> tuple[np.ndarray, np.ndarray]:
    """The object ``height`` px high, RGB (float32), and its alpha: opaque inside, feathered over its outer 4 px."""
    import cv2

    name, (left, top, right, bottom) = _OBJECT
    width = round(height * (right - left) / (bottom - top))
    rgb = cv2.resize(_photo(name)[top:bottom, left:right].astype(np.float32), (width, height),
                     interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # an ellipse with a 4 px soft edge: the distance to the edge in px, approximately
    norm = np.sqrt(((xx - (width - 1) / 2) / (width / 2)) ** 2 + ((yy - (height - 1) / 2) / (height / 2)) ** 2)
    alpha = np.clip((1.0 - norm) * min(width, height) / 2 / 4, 0.0, 1.0).astype(np.float32)
    return rgb, alpha


def make_clip(name: str, *, frames: int = 16, side: int = 256, aspect: float = 1.25) -> Clip:
    """The clip ``name`` (a key of :data:`CLIPS`): ``frames`` frames, ``side`` px high and ``aspect`` x wide."""
    import cv2

    if name not in CLIPS:
        raise ValueError(f"unknown clip {name!r}; choose from {', '.join(CLIPS)}")
    photo, pan, zoom, degrees = CLIPS[name]
    background = _photo(photo).astype(np.float32)
    size = (round(side * aspect / 2) * 2, side)  # even sides: YUV 4:2:0
    # the background near the frame's scale: its shorter side a little longer than the frame's diagonal
    scale = 1.05 * math.hypot(*size) / min(background.shape[:2])
    background = cv2.resize(background, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    center = np.array([background.shape[1] - 1, background.shape[0] - 1]) / 2 - np.array(pan) * (frames - 1) / 2
    cameras = [_camera(center + np.array(pan) * t, zoom**t, degrees * t, size) for t in range(frames)]
    rgb, alpha = _object_patch(round(side * _OBJECT_HEIGHT))
    start = np.array([size[0] * 0.75 - rgb.shape[1] / 2, size[1] * 0.3 - rgb.shape[0] / 2])
    places = [start + np.array(_OBJECT_STEP) * t for t in range(frames)]
    rendered = [_render(background, camera, rgb, alpha, place, size) for camera, place in zip(cameras, places,
                                                                                               strict=True)]
    motions = [_motion(cameras[t - 1], cameras[t], places[t - 1], places[t], rendered[t - 1][1], rendered[t][1])
               for t in range(1, frames)]
    images = [Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8)) for image, _ in rendered]
    return Clip(name, images, motions)


def _render(background: np.ndarray, camera: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, place: np.ndarray,
            size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One frame (float32 RGB) and the object's alpha in it."""
    import cv2

    width, height = size
    corners_x, corners_y = _apply(camera, np.array([0, width - 1, 0, width - 1]), np.array([0, 0, height - 1,
                                                                                            height - 1]))
    if corners_x.min() < 0 or corners_y.min() < 0 or corners_x.max() > background.shape[1] - 1 or \
            corners_y.max() > background.shape[0] - 1:
        raise ValueError("the camera leaves the background photo: fewer frames or slower motion")
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    scene = cv2.warpAffine(background, camera, size, flags=flags, borderMode=cv2.BORDER_REFLECT)
    shift = np.array([[1.0, 0.0, -place[0]], [0.0, 1.0, -place[1]]])
    thing = cv2.warpAffine(rgb, shift, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    cover = cv2.warpAffine(alpha, shift, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return scene * (1 - cover[..., None]) + thing * cover[..., None], cover


def _motion(camera_before: np.ndarray, camera: np.ndarray, place_before: np.ndarray, place: np.ndarray,
            cover_before: np.ndarray, cover: np.ndarray) -> Motion:
    """The exact backward motion of frame t and the pixels that show the same surface point in frame t-1."""
    import cv2

    height, width = cover.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    world_x, world_y = _apply(camera, xx, yy)
    before_x, before_y = _apply(_invert(camera_before), world_x, world_y)
    on_object = cover >= _OPAQUE
    shift = place_before - place
    flow_x = np.where(on_object, shift[0], before_x - xx).astype(np.float32)
    flow_y = np.where(on_object, shift[1], before_y - yy).astype(np.float32)
    map_x, map_y = xx.astype(np.float32) + flow_x, yy.astype(np.float32) + flow_y
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    cover_there = cv2.remap(cover_before, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0.0)
    on_background = (cover <= _CLEAR) & (cover_there <= _CLEAR)
    # the sharp warp's Lanczos taps reach 4 px each way: keep a pixel's source 4 px inside the frame
    margin = (map_x >= 4) & (map_x <= width - 5) & (map_y >= 4) & (map_y <= height - 5)
    visible = inside & margin & (on_object | on_background)
    return Motion(np.dstack([flow_x, flow_y]), visible)


def write_frames(frames: Sequence[Image.Image], folder: Path) -> list[Path]:
    """Numbered PNGs ``frame_0001.png``... in ``folder`` (made if missing); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"frame_{i:04d}.png" for i in range(1, len(frames) + 1)]
    for frame, path in zip(frames, paths, strict=True):
        frame.save(path)
    return paths


def write_y4m(frames: Sequence[Image.Image], path: Path, fps: int = 30) -> Path:
    """A YUV4MPEG2 file (4:2:0, BT.601 video range, as ffmpeg writes ``yuv420p``): Chromium's fake camera and
    ffmpeg read it. Frames must share one size with even sides."""
    import cv2

    width, height = frames[0].size
    if width % 2 or height % 2 or any(f.size != (width, height) for f in frames):
        raise ValueError("y4m 4:2:0 needs frames of one size with even sides")
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.asarray(frame.convert("RGB")), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--side", type=int, default=256, help="frame height in px (the width is 1.25x)")
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated subset of {','.join(CLIPS)}")
    args = parser.parse_args(argv)
    for name in args.clips.split(","):
        clip = make_clip(name, frames=args.frames, side=args.side)
        write_frames(clip.frames, args.out / name)
        print(write_y4m(clip.frames, args.out / f"{name}.y4m"))


if __name__ == "__main__":
    main()
