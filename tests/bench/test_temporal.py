"""The temporal benchmark on a tiny clip: rows for both ways, the table's ratios, and the strip it writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.temporal import StreamContender, _contender, measure_temporal, temporal_table
from tests.helpers import make_image

pytestmark = pytest.mark.slow  # the evaluator VGG19 loads and scores every frame


def _flicker(frame: Image.Image, style: str) -> Image.Image:
    """A stand-in stylization: the frame under noise drawn anew on every call, as a network's strokes land anew."""
    noise = np.random.default_rng().normal(0, 30, (frame.height, frame.width, 1))
    return Image.fromarray(np.clip(np.asarray(frame, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("temporal")
    contender = StreamContender("flicker: noise", "flicker", "trained", ("noise",), _flicker,
                                {"noise": make_image(64, 64, seed=3)})
    res = measure_temporal([contender], clips=("rotate",), frames=6, side=64, out=out)
    res["out"] = out
    return res


def test_rows_compare_both_ways_and_the_stabiliser_wins(results: dict) -> None:
    (row,) = results["rows"]
    assert (row["clip"], row["style"], row["frames"], row["size"]) == ("rotate", "noise", 6, [80, 64])
    per_frame, temporal = row["per_frame"], row["temporal"]
    assert temporal["warping_error"] < 0.5 * per_frame["warping_error"]
    assert temporal["warping_error_lai"] < per_frame["warping_error_lai"]
    assert temporal["seconds_per_frame"] > per_frame["seconds_per_frame"] > 0
    assert temporal["stabilise_seconds_per_frame"] > 0
    assert per_frame["style_distance"] > 0 and temporal["style_distance"] > 0


def test_table_shows_each_ratio(results: dict) -> None:
    (row,) = results["rows"]
    lines = temporal_table(results)
    line = next(entry for entry in lines if entry.startswith("| flicker: noise"))
    ratio = row["temporal"]["warping_error"] / row["per_frame"]["warping_error"]
    assert f"| {ratio:.2f} |" in line
    assert line.count("|") == lines[2].count("|")  # as many cells as the header


def test_strip_shows_consecutive_frames_in_five_rows(results: dict) -> None:
    strip = Image.open(results["out"] / "temporal_strip_flicker.png")
    assert strip.size == (4 * 80, 5 * (64 + 16))


def test_a_preset_is_scored_against_its_fixed_preview() -> None:
    """A preset has no style image: its exemplar is its preview on the bundled portrait, whatever the clip."""
    from model.presets import PresetsModel
    from model.previews import PREVIEW_PHOTO

    model = PresetsModel.load(device="cpu")
    contender = _contender(model, ("a", "b"))
    first, second = (contender.references[style] for style in contender.styles)
    assert contender.styles == tuple(preset.style_id for preset in model.presets[:2])
    with Image.open(PREVIEW_PHOTO) as photo:
        assert first.size == second.size == photo.size  # the portrait's size (256 px), not a clip frame's
    assert np.abs(np.asarray(first, np.int16) - np.asarray(second, np.int16)).mean() > 10  # each preset's own look
