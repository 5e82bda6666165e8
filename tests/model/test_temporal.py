"""Temporal stability: the stabiliser's contract (strength 0, resets, scene cuts), the warping error on clips with
known motion, and the stabiliser lowering it for a real family on such a clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.clips import make_clip, write_frames, write_y4m
from model.errors import InvalidOptionError
from model.family import StyleSource
from model.magenta.model import MagentaModel
from model.quality import warping_error
from model.temporal import Motion, TemporalStabilizer, _carried, _Maps, _stagger, _turned, check_strength, warp
from tests.helpers import make_image

SIDE = 128  # frame height; the width is 1.25x


@pytest.fixture(scope="module")
def pan():
    return make_clip("pan", frames=6, side=SIDE)


def _flicker(frame: Image.Image, seed: int) -> Image.Image:
    """A stand-in per-frame stylization: the frame under blotches a few pixels wide (a network's strokes) that land
    differently on every frame."""
    noise = np.random.default_rng(seed).normal(0, 60, (frame.height, frame.width)).astype(np.float32)
    blotches = cv2.GaussianBlur(noise, (0, 0), 2.0)[..., None]
    return Image.fromarray(np.clip(np.asarray(frame, dtype=np.float32) + blotches, 0, 255).astype(np.uint8))


def test_strength_zero_returns_the_per_frame_output(pan) -> None:
    stabilizer = TemporalStabilizer(0.0)
    for t, frame in enumerate(pan.frames):
        stylized = _flicker(frame, t)
        assert stabilizer.stabilize(frame, stylized) is stylized


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_strength_outside_unit_interval_is_refused_by_name(bad) -> None:
    with pytest.raises(InvalidOptionError) as info:
        check_strength(bad)
    assert info.value.option == "temporal_strength"
    with pytest.raises(InvalidOptionError):
        TemporalStabilizer(bad)
    with pytest.raises(InvalidOptionError):
        TemporalStabilizer().strength = bad


def test_metric_is_zero_for_a_perfectly_warped_sequence(pan) -> None:
    first = np.asarray(pan.frames[0], dtype=np.float32)
    frames = [first]
    for motion in pan.motions:
        frames.append(warp(frames[-1], motion.flow))
    assert warping_error(frames, pan.motions).mean_abs == pytest.approx(0.0, abs=1e-6)
    disturbed = [*frames[:3], frames[3] + 8.0, *frames[4:]]
    error = warping_error(disturbed, pan.motions)
    # one frame 8 levels brighter: its pair with the frame before and after, of the 5 pairs
    assert error.mean_abs == pytest.approx(2 * 8 / 255 / 5, rel=1e-4)
    assert error.lai == pytest.approx(2 * 3 * (8 / 255) ** 2 / 5, rel=1e-4)


def _band_limited(size: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A periodic RGB texture with detail up to 0.35 cycles a pixel (a network's finest strokes), moved by ``shift``
    (dx, dy) exactly: a phase ramp on its spectrum, as a warp with the backward flow ``shift`` should move it."""
    spectrum = np.fft.fft2(np.random.default_rng(1).normal(0, 40, (size, size, 3)), axes=(0, 1))
    fy, fx = np.fft.fftfreq(size)[:, None, None], np.fft.fftfreq(size)[None, :, None]
    spectrum *= (np.abs(fx) <= 0.35) & (np.abs(fy) <= 0.35)
    ramp = np.exp(2j * np.pi * (fx * shift[0] + fy * shift[1]))
    return (np.real(np.fft.ifft2(spectrum * ramp, axes=(0, 1))) + 128).astype(np.float32)


def test_a_sharp_warp_moves_whole_pixels_exactly_and_between_them_closer_than_bicubic() -> None:
    """The stabiliser warps its own output again on every frame, so the warp's error and softening add up: a shift
    by whole pixels must be exact (a still scene is not blurred frame after frame), and one between pixels must
    land near the true shift of fine detail, which OpenCV's bicubic softens (its error is three times as large)."""
    size, inner = 64, (slice(8, -8), slice(8, -8))  # the edges are replicated, not periodic
    image = _band_limited(size)
    whole = np.zeros((size, size, 2), np.float32)
    whole[..., 0], whole[..., 1] = 2, -1
    np.testing.assert_array_equal(warp(image, whole)[inner], np.roll(image, (1, -2), axis=(0, 1))[inner])
    for shift in ((0.5, 0.0), (0.25, 0.5), (0.37, -0.61)):
        flow = np.broadcast_to(np.array(shift, np.float32), (size, size, 2)).copy()
        exact = _band_limited(size, shift)[inner]
        grid_x, grid_y = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
        maps = grid_x + flow[..., 0], grid_y + flow[..., 1]
        cubic = np.abs(cv2.remap(image, *maps, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)[inner] - exact)
        assert np.abs(warp(image, flow)[inner] - exact).mean() < 0.35 * cubic.mean(), shift


@pytest.mark.parametrize("name", ["pan", "zoom", "rotate"])
def test_clip_motion_is_the_true_motion(name: str) -> None:
    """The clip's own frames, warped by its motions, match within resampling; the wrong motion is far off."""
    clip = make_clip(name, frames=4, side=SIDE)
    assert all(0.8 < m.visible_share < 1.0 for m in clip.motions)  # the object's trail and the edges are hidden
    true = warping_error(clip.frames, clip.motions).mean_abs
    still = [Motion(np.zeros_like(m.flow), m.visible) for m in clip.motions]
    assert true < 0.01
    assert warping_error(clip.frames, still).mean_abs > 4 * true


def test_metric_needs_one_motion_per_pair(pan) -> None:
    with pytest.raises(ValueError, match="one motion per consecutive pair"):
        warping_error(pan.frames, pan.motions[:-1])


def test_stabiliser_lowers_the_warping_error_of_a_flickering_output(pan) -> None:
    per_frame = [_flicker(frame, t) for t, frame in enumerate(pan.frames)]
    stabilizer = TemporalStabilizer(0.8)
    stable = [stabilizer.stabilize(frame, out) for frame, out in zip(pan.frames, per_frame, strict=True)]
    assert stable[0] is per_frame[0]  # nothing to carry yet
    assert warping_error(stable, pan.motions).mean_abs < 0.5 * warping_error(per_frame, pan.motions).mean_abs
    assert stabilizer.scene_cuts == 0


def _texture(image: Image.Image | np.ndarray) -> np.ndarray:
    """An image's luminance less its Gaussian blur (sigma 2 px), as a flat vector: its fine texture."""
    luma = cv2.cvtColor(np.asarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return (luma - cv2.GaussianBlur(luma, (0, 0), 2.0)).ravel()


def _grain(frame: Image.Image, seed: int) -> Image.Image:
    """A stand-in for a smooth model's per-frame output: the frame under a pixel-fine grain that lands anew."""
    noise = np.random.default_rng(seed).normal(0, 40, (frame.height, frame.width)).astype(np.float32)
    grain = cv2.GaussianBlur(noise, (0, 0), 0.7)[..., None]
    return Image.fromarray(np.clip(np.asarray(frame, dtype=np.float32) + grain, 0, 255).astype(np.uint8))


def test_texture_is_carried_whole_not_averaged_with_the_new_frames(pan) -> None:
    """Two grains that do not line up, averaged, make a third, fainter one that neither frame has; boosted back to
    the frame's contrast, it drifts from the model's look. At any strength the texture is carried, at the new
    frame's energy."""
    frame = pan.frames[0]  # a still camera: every pixel visible in both frames
    first, second = _grain(frame, 0), _grain(frame, 1)
    stabilizer = TemporalStabilizer(0.5)
    stabilizer.stabilize(frame, first)
    out = _texture(stabilizer.stabilize(frame, second))
    assert np.corrcoef(out, _texture(first))[0, 1] > 0.95
    assert abs(np.corrcoef(out, _texture(second))[0, 1]) < 0.3
    assert np.std(out) == pytest.approx(np.std(_texture(second)), rel=0.05)


def _bar(frame: Image.Image, top: int) -> Image.Image:
    """A stand-in for a thick-outline look: a flat yellow ground with one black bar 6 px thick at row ``top``."""
    out = np.empty((frame.height, frame.width, 3), np.uint8)
    out[:] = (230, 200, 40)
    out[top:top + 6] = 0
    return Image.fromarray(out)


def test_a_line_that_moved_is_carried_whole_not_left_as_a_grey_ghost(pan) -> None:
    """The model draws its outline 20 px lower on the next frame of a still camera. Blended at the stream's strength,
    the two frames' colours would leave a faint grey copy of the new line on the carried ground and a lighter old
    line; where the colours differ that much they are carried whole, like the texture: the old line stays black and
    the ground stays yellow."""
    frame = pan.frames[0]
    stabilizer = TemporalStabilizer(0.9)
    stabilizer.stabilize(frame, _bar(frame, 40))
    out = np.asarray(stabilizer.stabilize(frame, _bar(frame, 60)), dtype=np.float32)
    ground = np.array((230, 200, 40), np.float32)
    assert np.abs(out[62:64, 10:-10] - ground).max() <= 3  # no ghost of the new line
    assert out[42:44, 10:-10].max() <= 3  # the old line at full strength


def _stripes(frame: Image.Image, seed: int) -> Image.Image:
    """A stand-in for a model that draws its texture upright whatever the scene does: horizontal stripes 4 px apart,
    at a new phase on every frame."""
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi)
    rows = 30 * np.sin(np.arange(frame.height, dtype=np.float32) * (np.pi / 2) + phase)
    return Image.fromarray(np.clip(np.asarray(frame, dtype=np.float32) + rows[:, None, None], 0, 255).astype(np.uint8))


def _tilt(image: Image.Image) -> float:
    """Degrees between the texture's dominant stripes and the horizontal (from its structure tensor)."""
    texture = _texture(image).reshape(image.height, image.width)[8:-8, 8:-8]
    gx, gy = cv2.Sobel(texture, cv2.CV_32F, 1, 0), cv2.Sobel(texture, cv2.CV_32F, 0, 1)
    across = 0.5 * np.degrees(np.arctan2(2 * np.sum(gx * gy), np.sum(gx * gx) - np.sum(gy * gy)))
    return 90 - abs(across)  # the gradient runs across the stripes: vertical for horizontal ones


def test_texture_turned_with_the_scene_is_drawn_again_upright() -> None:
    """Carried along a rotating camera, an upright texture turns with the scene (1.2 degrees a frame here, 13 by
    the last frame); the stabiliser redraws it from the frame's own, a blob at a time, so it stays near upright."""
    clip = make_clip("rotate", frames=12, side=SIDE)
    stabilizer = TemporalStabilizer()
    stable = [stabilizer.stabilize(frame, _stripes(frame, t)) for t, frame in enumerate(clip.frames)]
    assert _tilt(_stripes(clip.frames[-1], 0)) < 1.0
    assert _tilt(stable[-1]) < 2.5  # carried whole, 5 degrees by the last frame (fresh pixels pull it upright)
    assert stabilizer.scene_cuts == 0


def test_mean_colour_follows_the_per_frame_output() -> None:
    """A model whose colour balance moves (here brighter by 4 levels a frame, on a still camera) is followed: the
    blended base would otherwise lag behind by most of the change."""
    frame = make_clip("pan", frames=1, side=SIDE).frames[0]
    stabilizer = TemporalStabilizer()
    for t in range(6):
        per_frame = np.clip(np.asarray(_grain(frame, t), dtype=np.float32) + 4 * t, 0, 255).astype(np.uint8)
        out = stabilizer.stabilize(frame, Image.fromarray(per_frame))
    assert np.asarray(out, dtype=np.float32).mean() == pytest.approx(per_frame.mean(), abs=0.5)


@pytest.mark.slow
def test_stabiliser_halves_magentas_warping_error_on_a_rotating_clip(magenta_model: MagentaModel) -> None:
    clip = make_clip("rotate", frames=5, side=SIDE)
    code = magenta_model.encode_style(make_image(128, 128, seed=3), style_size=128)
    per_frame = [magenta_model.stylize(frame, [StyleSource(code=code)]) for frame in clip.frames]
    stabilizer = TemporalStabilizer()
    stable = [stabilizer.stabilize(frame, out) for frame, out in zip(clip.frames, per_frame, strict=True)]
    assert warping_error(stable, clip.motions).mean_abs < 0.5 * warping_error(per_frame, clip.motions).mean_abs


def test_scene_cut_starts_again_from_the_per_frame_output(pan) -> None:
    other = make_clip("zoom", frames=2, side=SIDE).frames[1]
    stabilizer = TemporalStabilizer(1.0)
    for t, frame in enumerate(pan.frames[:3]):
        stabilizer.stabilize(frame, _flicker(frame, t))
    assert stabilizer.last_visible_share > 0.6
    stylized = _flicker(other, 99)
    out = stabilizer.stabilize(other, stylized)
    assert np.array_equal(np.asarray(out), np.asarray(stylized))
    assert stabilizer.scene_cuts == 1
    # and it goes on from the new scene
    stylized = _flicker(other, 100)
    assert not np.array_equal(np.asarray(stabilizer.stabilize(other, stylized)), np.asarray(stylized))


def test_reset_and_a_new_size_start_again(pan) -> None:
    stabilizer = TemporalStabilizer(1.0)
    stabilizer.stabilize(pan.frames[0], _flicker(pan.frames[0], 0))
    stabilizer.reset()
    stylized = _flicker(pan.frames[1], 1)
    assert np.array_equal(np.asarray(stabilizer.stabilize(pan.frames[1], stylized)), np.asarray(stylized))
    smaller = _flicker(pan.frames[2].resize((80, 64)), 2)
    assert np.array_equal(np.asarray(stabilizer.stabilize(pan.frames[2], smaller)), np.asarray(smaller))
    assert stabilizer.scene_cuts == 0


def test_input_frame_larger_than_the_output_is_resized_to_it(pan) -> None:
    """A family that resized the content (content_size) returns a smaller output; the result keeps its size."""
    stabilizer = TemporalStabilizer(1.0)
    outputs = [stabilizer.stabilize(frame, _flicker(frame.resize((120, 96)), t)) for t, frame in enumerate(pan.frames)]
    assert {o.size for o in outputs} == {(120, 96)}
    assert stabilizer.scene_cuts == 0 and stabilizer.last_visible_share > 0.6


def test_clip_files_for_players_and_fake_cameras(pan, tmp_path) -> None:
    paths = write_frames(pan.frames, tmp_path / "frames")
    assert [p.name for p in paths[:2]] == ["frame_0001.png", "frame_0002.png"]
    assert Image.open(paths[-1]).size == pan.frames[-1].size
    width, height = pan.frames[0].size
    data = write_y4m(pan.frames, tmp_path / "clip.y4m", fps=25).read_bytes()
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode()
    frame_bytes = width * height * 3 // 2
    assert data.startswith(header)
    assert len(data) == len(header) + len(pan.frames) * (len(b"FRAME\n") + frame_bytes)
    # the first frame's luma plane is the frame's video-range luma
    luma = np.frombuffer(data[len(header) + 6 : len(header) + 6 + width * height], np.uint8).reshape(height, width)
    expected = 16 + 219 / 255 * np.asarray(pan.frames[0].convert("L"), dtype=np.float32)
    assert np.abs(luma - expected).mean() < 2.0


def test_a_redrawn_blob_fades_in_and_its_texture_only_across_lines() -> None:
    """Where turned texture is redrawn, a hard edge between the fresh and the carried strokes is a seam through the
    model's lines: the carried colours fade out around the blob, and so does the texture where the two outputs'
    colours differ (a line or a fill only one of them has); where they agree the texture switches at the blob's edge,
    since two textures averaged come out fainter."""
    mask = np.ones((40, 60), np.float32)
    mask[:, :4] = 0.5  # the visibility still bounds what is carried
    redraw = np.zeros((40, 60), bool)
    redraw[10:30, 20:40] = True
    differs = np.zeros((40, 60), np.float32)
    differs[:, 30:] = 1  # the right half: the colours differ
    base, texture = _carried(mask, redraw, differs)
    inner = np.zeros_like(redraw)
    inner[12:28, 22:38] = True  # the blob but for its corners (half carried there) is drawn afresh
    assert not base[inner].any() and not texture[inner].any() and base[redraw].max() <= 0.6
    row = 20
    assert 0.2 < base[row, 42] < 0.9 and texture[row, 42] == pytest.approx(base[row, 42])  # 3 px right: both fade
    assert 0.2 < base[row, 17] < 0.9 and texture[row, 17] == 1  # 3 px left: the colours fade, the texture does not
    assert base[row, 8] == pytest.approx(1, abs=1e-3) and base[row, 2] == pytest.approx(0.5, abs=1e-3)
    still = np.zeros_like(redraw)
    assert all(m is mask for m in _carried(mask, still, differs))  # nothing turned: the mask itself


def test_texture_carried_far_is_redrawn_and_a_still_cameras_never() -> None:
    """Each warp resamples the carried texture and each frame adds seams, so texture that has travelled 40 px is
    redrawn as if it had turned (a blob at a time); where nothing moves, nothing is ever redrawn."""
    mask = np.ones((64, 80), np.float32)
    for step, frames, redrawn in ((5.0, 10, True), (0.0, 40, False)):
        flow = np.zeros((64, 80, 2), np.float32)
        flow[..., 0] = step  # a pan, no rotation
        turn, ever = _stagger(64, 80).copy(), np.zeros((64, 80), bool)
        for _ in range(frames):
            turn, redraw = _turned(turn, flow, _Maps.of(flow), mask)
            ever |= redraw
        inner = ever[8:-8, 8:-8]  # the columns a pan brings in start afresh
        assert inner.mean() > 0.95 if redrawn else not ever.any()


def test_what_the_motion_uncovers_takes_the_per_frame_output(pan) -> None:
    """Pixels not visible in the previous frame (what a moving object or the camera uncovers) have nothing to carry:
    they follow the frame's own stylization, not the previous output moved there, so a moving object leaves no
    trail."""
    per_frame = [_flicker(frame, t) for t, frame in enumerate(pan.frames)]
    stabilizer = TemporalStabilizer(0.9)
    stable = [np.asarray(stabilizer.stabilize(frame, out), np.float32)
              for frame, out in zip(pan.frames, per_frame, strict=True)]
    for t in range(1, len(stable)):
        hidden = ~pan.motions[t - 1].visible
        assert hidden.sum() > 100  # the object uncovers background and the pan brings in new columns
        to_fresh = np.abs(stable[t] - np.asarray(per_frame[t], np.float32)).mean(axis=-1)[hidden].mean()
        to_moved = np.abs(stable[t] - warp(stable[t - 1], pan.motions[t - 1].flow)).mean(axis=-1)[hidden].mean()
        assert to_fresh < 0.5 * to_moved, t


def test_texture_a_zoom_scaled_is_redrawn_even_where_it_hardly_travels() -> None:
    """A zoom scales the carried lines while the model draws its own at one size; near its centre texture barely
    travels, so texture scaled 10 % counts as turned and is redrawn, and a pan's fit (no zoom) redraws nothing."""
    height, width = 64, 80
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    zoom = np.stack(((grid_x - width / 2) * -0.015, (grid_y - height / 2) * -0.015), axis=-1)  # 1.5 % in a frame
    centre = (slice(height // 2 - 8, height // 2 + 8), slice(width // 2 - 8, width // 2 + 8))
    pan = np.zeros((height, width, 2), np.float32)
    pan[..., 0] = 0.2  # as slow as the zoom's centre, over as many frames: not far enough to be redrawn
    for flow, redrawn in ((zoom, True), (pan, False)):
        turn, ever = _stagger(height, width).copy(), np.zeros((height, width), bool)
        for _ in range(20):
            turn, redraw = _turned(turn, flow, _Maps.of(flow), np.ones((height, width), np.float32))
            ever |= redraw
        assert ever[centre].all() if redrawn else not ever[centre].any()
