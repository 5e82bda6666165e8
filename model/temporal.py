"""Temporal stability for video: a per-stream stabiliser that works on any family's per-frame output.

Frames stylized one by one flicker: a feed-forward network places its strokes differently on every frame, even
where nothing moved, and it does not turn or scale its textures with the scene. The stabiliser follows the
motion of the *input* frames (OpenCV's DIS optical flow, backward and forward) and carries the previous *output*
along it, blending it into the new per-frame output where the motion is trustworthy:

    base(O_t)   = base(P_t) + S_t * R_t * M_t * (base(warp(O_t-1)) - base(P_t))
    detail(O_t) = g_t * (detail(P_t) + R_t * M_t * (detail(warp(O_t-1)) - detail(P_t)))
    O_t         = base(O_t) + detail(O_t) + (mean(P_t) - mean(base(O_t) + detail(O_t)))

``P_t`` is the family's per-frame stylization, ``warp`` moves the previous output to where its pixels are now
(nearly as sharply as Lanczos), and the mask ``M_t`` in [0, 1] is 1 where a pixel was visible in the previous frame
and 0 where it was not. ``base`` is an image's Gaussian blur (sigma 2 px) and ``detail`` the rest: its fine texture.
The texture is carried whole where the motion is reliable and never averaged: two textures that do not line up,
averaged, make a third that neither frame has (finer, fainter, criss-crossed), and its style drifts further from the
model's with every frame. The colours and shapes are blended at the stream's strength ``S_t``, except where the two
bases differ as much as a line from its ground: there a blend would leave a grey ghost of a line that only one of
them has (a thick-outline look came out with thinner, greyer outlines), so ``S_t`` rises to 1 and they too are
carried whole. The scalar ``g_t`` gives the texture back the energy of ``P_t``'s, which the repeated warps wear
down, and the frame's mean colour is ``P_t``'s (the blended base would keep the colour balance of the first frames).
The carried texture turns with the scene while the model draws its own upright: ``R_t`` is 0 where the texture has
turned 6.5 degrees since it was drawn, and there it is drawn again from ``P_t``, with its colours and shapes, in
blobs whose turns start staggered so a turning scene is redrawn a share at a time (texture that has travelled 40 px
or been scaled 10 % counts as turned: carried far or zoomed, it drifts from the model's look); each blob fades in
over a few pixels around it, so its edge is no seam through the model's lines (the texture fades in only across a
line or a fill that only one output has: elsewhere it would be averaged). Like Lai et al. (ECCV 2018) this is blind
to the family: it needs the input frames and the outputs, nothing from inside the network.

A pixel counts as visible when its backward and forward flows agree (the consistency test of Sundaram et al.
2010, used for style transfer by Ruder et al. 2016), when it maps inside the previous frame, and when the warped
previous input matches the current input there; everything else (a moving object's trail, newly uncovered
background, the frame's edges) takes the per-frame output, so moving objects leave no ghosts. When too little of
the frame is visible (a scene cut), the stabiliser starts again from the per-frame output.

Motions are backward maps: for each pixel of frame t, the displacement (dx, dy) to where it was in frame t-1
(HxWx2 float32). :func:`warp` is the one warp of the package; :func:`model.quality.warping_error` measures with it.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from model.errors import InvalidOptionError
from model.images import to_rgb

__all__ = [
    "DEFAULT_STRENGTH",
    "Motion",
    "TemporalStabilizer",
    "check_strength",
    "warp",
]

#: Share of the motion-compensated previous output kept where the motion is reliable (0 is per-frame output).
DEFAULT_STRENGTH = 0.9
#: Below this share of visible pixels, the frame is taken as a scene cut and the stabiliser starts again.
SCENE_CUT_VISIBLE = 0.4
# Forward-backward consistency (Sundaram et al. 2010): |b + f(x + b)|^2 <= 0.01 (|b|^2 + |f|^2) + 0.5 px^2.
_FB_RELATIVE = 0.01
_FB_ABSOLUTE = 0.5
# Largest difference in grey level (in [0, 1]) between the current and the warped previous input for a pixel to
# count as the same surface; above it the flow went wrong there (or the light changed). Grey, as the flow sees the
# frames: on the test clips comparing colours (the mean over RGB) gave the same check to within 0.1 % of the pixels,
# at twice the cost.
_PHOTOMETRIC = 0.08
_DETAIL_SIGMA = 2.0  # px: the Gaussian that splits an image into its base (colours, shapes) and its texture
# The carried texture turns with the scene while a model draws its own upright, and a turned texture is further from
# the style; where it has turned this many degrees it is redrawn from the per-frame output, a blob at a time. The
# colours and shapes are redrawn with it, so redrawing more often costs stability: on a rotating clip a thick-outline
# preset's warping error was 0.49x per-frame's at 6.5 degrees and 0.48x at 7, its style distance 1.08x and 1.11x.
_TURN_LIMIT = 6.5
# Texture carried far is redrawn too, as if it had turned: every this many px a pixel travels count as the turn limit.
# Each warp resamples it and each frame adds seams where the model's fresh strokes meet carried ones, so a moving
# shot's carried look drifts from the model's frame after frame; a still camera's redraws nothing. On the pan and
# zoom clips a thick-outline preset's style distance was 1.10x and 1.11x per-frame's without it, 1.08x with it
# (warping error 0.35 -> 0.41x, 0.32 -> 0.37x); over 36 frames of the pan 1.13x instead of 1.29x.
_TRAVEL_LIMIT = 40.0
# A zoom scales the carried texture and lines while a model draws its own at one size, and near a zoom's centre
# texture hardly travels, so texture scaled by this share since it was drawn is redrawn too, as if it had turned. On
# the 36-frame zoom a thick-outline preset's style distance was 1.54x per-frame's without it, 1.19x with it (warping
# error 0.43 -> 0.49x); on the 12-frame one 1.09x and 1.07x (0.38 -> 0.39x). At 7 % its warping error passed 0.5x.
_ZOOM_LIMIT = 0.10
# Degrees of rotation, and log-scale of zoom, a frame that do not count: the fit's errors on clips without them (a
# pan, a zoom or a rotation with a moving object: 0.1 degrees, 0.0045 or less)
_ROTATION_FLOOR = 0.15
_ZOOM_FLOOR = 0.005
_SIMILARITY_STEP = 4  # px between the pixels the camera's rotation and zoom are fitted to
# The blobs the texture is redrawn in: the Gaussian (px) that shapes them, and how many start turns they spread over.
# Smaller blobs, or turns spread evenly rather than in levels, redraw thin slivers whose seams cost more than the turn
# (on a rotating clip the style distance was 1.11x per-frame's with blobs half as wide, 1.14x with even turns, against
# 1.07x).
_STAGGER_SIGMA = 12.0
_STAGGER_LEVELS = 4
# Where the moved and the fresh colours differ by more than this (mean over RGB, 0-255), averaging them would leave a
# faint copy of each, a grey ghost of a line that only one of them has: from the lower bound up to the upper one the
# blend moves from the stream's strength to carrying the moved colours whole, like the texture.
_GHOST_LOW = 15.0
_GHOST_HIGH = 30.0
# A redrawn blob fades in over this Gaussian's reach (px) around it rather than starting at a hard edge, where the
# model's fresh strokes and fills would meet the carried ones that do not line up: a seam that cut the lines of a
# thick-outline preset and left its fills a patchwork (on a rotating clip its style distance was 1.27x per-frame's
# with hard edges, 1.08x faded; over 36 frames 1.95x against 1.30x).
_REDRAW_FADE = 3.0
# The texture fades in only where the moved and the fresh colours differ by more than this (mean over RGB, 0-255, a
# ramp): across a line or a fill that only one of them has. Elsewhere it switches at the blob's edge, since two
# textures averaged make a fainter, criss-crossed third (a pastel preset's style distance on the rotating clip was
# 1.21x per-frame's with the texture faded everywhere, 1.06x with this rule).
_SEAM_LOW = 5.0
_SEAM_HIGH = 15.0
_DETAIL_MAX_GAIN = 2.0  # the carried texture's energy is restored by at most this factor, or lowered by it


def _lanczos(distance: float, lobes: int = 4) -> float:
    """The Lanczos window (a windowed sinc) at ``distance`` pixels: OpenCV's INTER_LANCZOS4 kernel."""
    if distance == 0:
        return 1.0
    x = math.pi * distance
    return lobes * math.sin(x) * math.sin(x / lobes) / (x * x)


# The 8 taps that give an image's values half-way between its pixels (at offsets -3..4 from the pixel before).
_HALF_TAPS = np.array([_lanczos(k - 0.5) for k in range(-3, 5)], np.float32)
_HALF_TAPS /= _HALF_TAPS.sum()


def check_strength(strength: float) -> float:
    """The strength as a float, or InvalidOptionError naming ``temporal_strength``: it must be in [0, 1]."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise InvalidOptionError("temporal_strength", f"must be a number in [0, 1], got {strength!r}")
    return float(strength)


@dataclass(frozen=True)
class Motion:
    """How frame t relates to frame t-1: each pixel's backward displacement and whether it was visible in both."""

    flow: np.ndarray  # (H, W, 2) float32: frame t pixel (x, y) was at (x + dx, y + dy) in frame t-1
    visible: np.ndarray  # (H, W) bool: the pixel shows the same surface point in both frames

    @property
    def visible_share(self) -> float:
        return float(self.visible.mean())


def warp(image: np.ndarray, flow: np.ndarray, *, sharp: bool = True) -> np.ndarray:
    """Frame t-1's ``image`` (H, W[, C]) moved to frame t along the backward ``flow`` (edges replicated).

    Sharp by default, for images: the stabiliser warps its own output again on every frame, and bicubic's softening
    added up (the style distance of the stabilised output rose 13 % on a pan, 4.5 % with Lanczos; on a pastel preset
    34 % against 6 %). ``sharp=False`` is bilinear, for flows and masks, where overshoot has no meaning."""
    maps = _Maps.of(flow)
    return _sample_doubled(_doubled(image), maps) if sharp else _sample(image, maps)


@dataclass(frozen=True)
class _Maps:
    """Where each pixel of frame t was in frame t-1, as coordinates (what OpenCV's remap samples at): made once a
    frame from the backward flow and shared by the frame's warps and checks."""

    x: np.ndarray  # (H, W) float32
    y: np.ndarray

    @classmethod
    def of(cls, flow: np.ndarray) -> _Maps:
        grid_x, grid_y = _grid(*flow.shape[:2])
        return cls(grid_x + flow[..., 0], grid_y + flow[..., 1])

    def inside(self) -> np.ndarray:
        """Where the pixels land inside the previous frame."""
        height, width = self.x.shape
        return (self.x >= 0) & (self.x <= width - 1) & (self.y >= 0) & (self.y <= height - 1)


def _sample(image: np.ndarray, maps: _Maps) -> np.ndarray:
    """``image`` sampled bilinearly at ``maps`` (edges replicated)."""
    import cv2

    return cv2.remap(image, maps.x, maps.y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _doubled(image: np.ndarray) -> np.ndarray:
    """``image`` at twice its width and height: its own pixels at the even positions, Lanczos half-way values at the
    odd ones. Sampled bicubically (:func:`_sample_doubled`), it warps nearly as sharply as an 8x8 Lanczos warp (on
    detail up to 0.35 cycles a pixel, at most twice its error and a third of bicubic's) at half the cost (at 320x256
    in 8-bit RGB, 2.2 ms against 4.8): the Lanczos part is two separable 8-tap filters, and bicubic's softening,
    spread over twice the frequencies, falls mostly above the image's own. On the stabiliser's outputs the two warps
    give the same warping errors and style distances. Shifts by whole pixels are exact, so a still scene is not
    blurred frame after frame."""
    import cv2

    height, width = image.shape[:2]
    between_rows = cv2.filter2D(image, -1, _HALF_TAPS[:, None], anchor=(0, 3), borderType=cv2.BORDER_REPLICATE)
    tall = np.stack((image, between_rows), axis=1).reshape((2 * height, width, *image.shape[2:]))
    between_columns = cv2.filter2D(tall, -1, _HALF_TAPS[None, :], anchor=(3, 0), borderType=cv2.BORDER_REPLICATE)
    # merged channel by channel, a pixel's value is followed by the one half-way to its right: the columns interleave
    return cv2.merge((tall, between_columns)).reshape((2 * height, 2 * width, *image.shape[2:]))


def _sample_doubled(doubled: np.ndarray, maps: _Maps) -> np.ndarray:
    """The image that :func:`_doubled` doubled, sampled at ``maps``."""
    import cv2

    return cv2.remap(doubled, maps.x * 2, maps.y * 2, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's own (x, y) coordinates (read-only: shared between calls and threads)."""
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class _Flow:
    """DIS optical flow (Kroeger et al. 2016) on 8-bit grayscale, backward and forward. One per stream: not shared.

    OpenCV's "medium" preset with a sparser patch grid and fewer iterations: on the clips of ``bench.clips`` its
    end-point error is 0.28-0.30 px against the preset's 0.20-0.25, at about a third of its time. A forward flow
    without the variational refinement would take half the time, but at 128 px it disagrees with the backward one
    often enough to hide a sixth of what a pan keeps visible (0.66 of the frame against 0.78). Two estimators, so
    the two directions can be computed at once, on two threads."""

    def __init__(self) -> None:
        self._backward, self._forward = _dis(), _dis()

    def backward(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """The flow from grayscale ``current`` back to ``previous``."""
        return self._backward.calc(current, previous, None)

    def forward(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """The flow from grayscale ``previous`` on to ``current``, to check the backward flow with."""
        return self._forward.calc(previous, current, None)


def _dis() -> Any:
    """One estimator (cv2.DISOpticalFlow); each is used by one thread at a time."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setPatchStride(6)
    dis.setGradientDescentIterations(6)
    dis.setVariationalRefinementIterations(2)
    return dis


def _visible(current: np.ndarray, previous: np.ndarray, backward: np.ndarray, maps: _Maps, forward: np.ndarray
             ) -> np.ndarray:
    """Where ``backward`` (whose ``maps`` these are) shows the same surface in the frames ``current`` and
    ``previous`` (grey): the ``forward`` flow agrees, it lands inside the previous frame, and the grey levels match."""
    import cv2

    forward_there = _sample(forward, maps)  # the forward flow at each pixel's previous position
    loop = cv2.add(backward, forward_there)
    # |loop|^2 - relative * (|b|^2 + |f|^2) <= absolute, summed over (dx, dy) last (in OpenCV's passes, twice as
    # fast as NumPy's here)
    lengths = cv2.multiply(backward, backward)
    cv2.accumulateSquare(forward_there, lengths)
    excess = cv2.addWeighted(cv2.multiply(loop, loop), 1, lengths, -_FB_RELATIVE, 0)
    consistent = excess[..., 0] + excess[..., 1] <= _FB_ABSOLUTE
    moved = _sample(previous, maps)
    same = cv2.absdiff(current, moved) <= _PHOTOMETRIC * 255
    return consistent & same & maps.inside()


def _channel_sum(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W), in the image's dtype: OpenCV's per-pixel transform, about five times faster than NumPy's
    sum over a short last axis for 8-bit colours."""
    import cv2

    return cv2.transform(image, np.ones((1, image.shape[-1]), np.float32))


def _soft_mask(visible: np.ndarray) -> np.ndarray:
    """The visibility mask shrunk by a pixel and feathered, so flow errors at motion boundaries stay out of it."""
    import cv2

    shrunk = cv2.erode(visible.astype(np.uint8), np.ones((3, 3), np.uint8))
    return cv2.GaussianBlur(shrunk.astype(np.float32), (5, 5), 1.0) * shrunk


class TemporalStabilizer:
    """Stabilises one stream of stylized frames; call :meth:`stabilize` once per frame, in order.

    Holds the previous input and output at the output's size, and a flow estimator; not thread-safe (one per
    stream). :meth:`reset` after a scene cut the caller knows of, or a change of style or settings, so the old
    look is not carried into the new one. A change of frame size resets by itself, and so does a detected cut.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        self._strength = check_strength(strength)
        self._flow: _Flow | None = None
        self._previous_input: np.ndarray | None = None  # (H, W) uint8 grey levels at the output's size
        self._previous_output: np.ndarray | None = None  # (H, W, 3) uint8: what was shown
        # (H, W) float32: degrees each pixel's carried texture has turned since it was drawn (staggered at a start)
        self._turn: np.ndarray | None = None
        self.scene_cuts = 0  # cuts detected since construction (not counting explicit resets)
        self.last_visible_share = 0.0  # of the last stabilised frame; 0 when it started afresh

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = check_strength(value)

    def reset(self) -> None:
        """Forgets the previous frame: the next output is the per-frame stylization."""
        self._previous_input = self._previous_output = None

    def stabilize(self, frame: Image.Image, stylized: Image.Image) -> Image.Image:
        """The stabilised output for ``frame`` (the input) and ``stylized`` (its per-frame stylization).

        The result has ``stylized``'s size; ``frame`` may be larger (it is resized to match, as the family
        resized it). With strength 0, and where there is nothing to carry over, the result is ``stylized`` itself."""
        if self._strength == 0.0:
            self.reset()
            return stylized
        current = _gray(np.asarray(to_rgb(frame).resize(stylized.size, Image.Resampling.BILINEAR)
                                   if frame.size != stylized.size else to_rgb(frame)))
        shown = np.asarray(to_rgb(stylized))
        output = self._blend(current, shown)
        self._previous_input, self._previous_output = current, shown if output is None else output
        if output is None:
            self._turn = _stagger(*shown.shape[:2])
            return stylized
        return Image.fromarray(output)

    def _blend(self, current: np.ndarray, shown: np.ndarray) -> np.ndarray | None:
        """The blended output for the input ``current`` (grey) and the per-frame output ``shown``, or None where the
        stabiliser starts afresh (first frame, new size, scene cut)."""
        previous = self._previous_output
        self.last_visible_share = 0.0
        if previous is None or self._previous_input is None or previous.shape != shown.shape:
            return None
        flow = self._flow = self._flow or _Flow()
        grays = current, self._previous_input
        # A frame's work runs on two threads (OpenCV releases the GIL), in parts that take about as long, so neither
        # waits long for the other: the forward flow and then the previous output doubled beside the backward flow
        # and the fresh output's layers; then the warp of the previous output and how it differs from the fresh one
        # beside the checks of the flow and the turn. More parts at once would slow the backward flow that the rest
        # waits for.
        forward_and_doubled = _workers().submit(_forward_and_doubled, flow, grays, previous)
        backward = flow.backward(*grays)
        maps = _Maps.of(backward)
        fresh = _Layers.of(shown)
        forward, doubled = forward_and_doubled.result()
        difference = _workers().submit(_difference, doubled, maps, fresh)
        try:
            visible = _visible(*grays, backward, maps, forward)
            share = float(visible.mean())
            if share < SCENE_CUT_VISIBLE:
                self.scene_cuts += 1
                return None
            mask = _soft_mask(visible)
            self._turn, redraw = _turned(self._turn, backward, maps, mask)
        finally:
            difference = difference.result()
        self.last_visible_share = share
        return _carry(difference, shown, mask, self._strength, redraw)


@functools.cache
def _workers() -> ThreadPoolExecutor:
    """Threads for the part of a frame's work that runs beside the rest (OpenCV releases the GIL); shared by every
    stream, one per core, so many streams queue here rather than oversubscribe the cores.

    OpenCV's own pool (which only this module uses) is cut to a thread per pair of cores: each frame already keeps
    two threads busy, and OpenCV splitting their calls over every core besides made frames slower (a preset's
    320x256 frame on 2 cores: 9.2 ms with one OpenCV thread, 10.2 with two)."""
    import cv2

    cores = os.cpu_count() or 1
    cv2.setNumThreads(max(cores // 2, 1))
    return ThreadPoolExecutor(max_workers=cores, thread_name_prefix="temporal")


def _similarity(flow: np.ndarray, visible: np.ndarray) -> tuple[float, float]:
    """How many degrees (either way) the scene turned between the frames, and by what log-scale (either way) it
    zoomed: the rotation and scale of the similarity transform (rotation, scale, shift) closest to the flow over a
    sample of the visible pixels, in least squares."""
    height, width = flow.shape[:2]
    grid_x, grid_y = _grid(height, width)
    step = _SIMILARITY_STEP
    pick = visible[::step, ::step]
    if pick.sum() < 8:
        return 0.0, 0.0
    x, y = grid_x[::step, ::step][pick], grid_y[::step, ::step][pick]
    moved = flow[::step, ::step][pick]
    x, y = x - x.mean(), y - y.mean()  # centred: the shift drops out of the fit
    u, v = x + moved[:, 0] - moved[:, 0].mean(), y + moved[:, 1] - moved[:, 1].mean()
    # (u, v) ~ (a x - b y, b x + a y): a = s cos(angle), b = s sin(angle)
    a, b = float(np.dot(x, u) + np.dot(y, v)), float(np.dot(x, v) - np.dot(y, u))
    spread = float(np.dot(x, x) + np.dot(y, y))
    return abs(math.degrees(math.atan2(b, a))), abs(math.log(max(math.hypot(a, b), 1e-12) / spread))


@functools.lru_cache(maxsize=8)
def _stagger(height: int, width: int) -> np.ndarray:
    """Where each pixel's turn starts: blobs (about 30 px across) at :data:`_STAGGER_LEVELS` turns evenly spread
    over [0, _TURN_LIMIT), so a turning scene's texture is redrawn a blob at a time, not all at once (read-only:
    shared). Fixed, not random: a stream's output depends on its frames alone."""
    import cv2

    noise = cv2.GaussianBlur(np.random.default_rng(0).random((height, width), np.float32), (0, 0), _STAGGER_SIGMA)
    ranks = noise.ravel().argsort().argsort().reshape(height, width)
    stagger = (np.floor(ranks * (_STAGGER_LEVELS / (height * width))) * (_TURN_LIMIT / _STAGGER_LEVELS)).astype(
        np.float32)
    stagger.flags.writeable = False
    return stagger


def _turned(turn: np.ndarray, flow: np.ndarray, maps: _Maps, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's turn moved along the motion and grown by the camera's rotation and zoom (see :data:`_ZOOM_LIMIT`)
    or by the pixel's travel (see :data:`_TRAVEL_LIMIT`), whichever is more (newly drawn texture starts at 0), and
    where it reached :data:`_TURN_LIMIT`: the pixels whose texture is redrawn now (their turn starts again)."""
    import cv2

    held = mask > 0.5
    degrees, zoom = _similarity(flow, held)
    # the camera's turn and zoom this frame, in degrees' worth
    camera = (max(degrees - _ROTATION_FLOOR, 0.0)
              + max(zoom - _ZOOM_FLOOR, 0.0) * (_TURN_LIMIT / math.log1p(_ZOOM_LIMIT)))
    squares = cv2.multiply(flow, flow)
    travel = cv2.sqrt(squares[..., 0] + squares[..., 1])
    travel *= _TURN_LIMIT / _TRAVEL_LIMIT  # in degrees' worth
    turn = _sample(turn, maps)
    turn += cv2.max(travel, camera)
    turn *= held
    redraw = turn >= _TURN_LIMIT
    turn[redraw] = 0
    return turn, redraw


def _forward_and_doubled(flow: _Flow, grays: tuple[np.ndarray, np.ndarray], previous: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """The forward flow, then the previous output doubled: one part of a frame's work, for another thread."""
    return flow.forward(*grays), _doubled(previous)


@dataclass(frozen=True)
class _Layers:
    """An 8-bit image split into its base, the Gaussian blur (its colours and shapes), and the texture above it."""

    base8: np.ndarray  # (H, W, C) uint8: the base as blurred, for the comparisons
    base: np.ndarray  # (H, W, C) float32
    detail: np.ndarray  # (H, W, C) float32: the image less its base

    @classmethod
    def of(cls, image: np.ndarray) -> _Layers:
        import cv2

        # blurred in 8 bits, twice as fast as in floats; the base's rounding cancels in base + detail
        base8 = cv2.GaussianBlur(image, (0, 0), _DETAIL_SIGMA)
        return cls(base8, np.float32(base8), cv2.subtract(image, base8, dtype=cv2.CV_32F))


@dataclass(frozen=True)
class _Difference:
    """The previous output moved to this frame and the per-frame output, in layers, and where their bases differ:
    the part of the carry that needs no mask, so another thread makes it while this one finds the mask."""

    moved: _Layers
    fresh: _Layers
    whole: np.ndarray  # (H, W) in [0, 1]: 1 where the bases differ as much as a line from its ground
    differs: np.ndarray  # (H, W) in [0, 1]: 1 where they differ as much as a fill only one of them has


def _difference(doubled: np.ndarray, maps: _Maps, fresh: _Layers) -> _Difference:
    """The previous output (doubled) warped to this frame, against the per-frame output."""
    import cv2

    moved = _Layers.of(_sample_doubled(doubled, maps))
    # 8-bit differences summed over the channels (a sum past 255 saturates, far above the thresholds)
    apart = np.float32(_channel_sum(cv2.absdiff(moved.base8, fresh.base8)))
    apart *= 1 / moved.base.shape[-1]
    whole = np.clip((apart - _GHOST_LOW) * (1 / (_GHOST_HIGH - _GHOST_LOW)), 0, 1)
    differs = np.clip((apart - _SEAM_LOW) * (1 / (_SEAM_HIGH - _SEAM_LOW)), 0, 1)
    return _Difference(moved, fresh, whole, differs)


def _carry(difference: _Difference, shown: np.ndarray, mask: np.ndarray, strength: float, redraw: np.ndarray
           ) -> np.ndarray:
    """The previous output, moved to this frame, carried into the per-frame output ``shown`` (``difference`` holds
    both in layers) where ``mask`` (H, W) and not ``redraw`` (H, W, bool: where the texture has turned, both are
    drawn afresh, faded in around the blobs: :func:`_carried`).

    The texture is carried whole (see the module's docstring for why it is not averaged), and so is the base where
    it differs from the fresh one as much as a line differs from its ground (:data:`_GHOST_HIGH`); elsewhere the base
    is blended at ``strength``. Warping the carried texture again on every frame wears down its finest detail
    (the warp attenuates the band near the pixel pitch), so the texture is scaled by one gain for the whole frame
    that gives it the energy of the per-frame texture (within [1/2, 2], so a nearly flat texture is not blown up); a
    gain for each of two bands (finer and coarser than a sigma-0.7 blur) did little better and cost two more blurs.
    A local gain would follow the texture's own blotches, and one never below 1 raises the texture wherever it is
    locally fainter than the frame's and lowers it nowhere, so the grain grows from frame to frame. Last, the
    frame's mean colour is the per-frame output's: the blended base remembers the colours of every earlier frame,
    and the model's own balance moves with what the camera sees."""
    import cv2

    d = difference
    base_carry, texture_carry = _carried(mask, redraw, d.differs)
    base_carry = base_carry * (strength + (1 - strength) * d.whole)
    # OpenCV's per-pixel weighted sum (its weights sum to 1 here): one pass, no weights copied into each channel
    out = cv2.blendLinear(d.moved.base, d.fresh.base, base_carry, 1 - base_carry)
    detail = cv2.blendLinear(d.moved.detail, d.fresh.detail, texture_carry, 1 - texture_carry)
    energy = (_mean_square(d.fresh.detail) + 1e-3) / (_mean_square(detail) + 1e-3)
    cv2.scaleAdd(detail, min(max(math.sqrt(energy), 1 / _DETAIL_MAX_GAIN), _DETAIL_MAX_GAIN), out, dst=out)
    # rounded and clipped to 8 bits by the same pass
    return cv2.add(out, tuple(np.subtract(cv2.mean(shown), cv2.mean(out))), dtype=cv2.CV_8U)


def _carried(mask: np.ndarray, redraw: np.ndarray, differs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much of the moved colours and shapes, and of the moved texture, each pixel carries (H, W each, in [0, 1]):
    ``mask``, less the ``redraw`` blobs faded in over :data:`_REDRAW_FADE` around them; for the texture only where
    ``differs``, elsewhere exactly over the blobs."""
    if not redraw.any():
        return mask, mask
    import cv2

    # the blobs blurred and doubled: 1 over them but for their corners (half carried: fully redrawn corners measured
    # worse, 1.10x against 1.08x), fading out around them
    fade = np.minimum(cv2.GaussianBlur(redraw.astype(np.float32), (0, 0), _REDRAW_FADE) * 2, 1)
    texture_redraw = redraw + differs * (fade - redraw)
    return mask * (1 - fade), mask * (1 - texture_redraw)


def _mean_square(image: np.ndarray) -> float:
    import cv2

    return cv2.norm(image, cv2.NORM_L2SQR) / image.size
