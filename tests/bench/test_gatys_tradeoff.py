"""content_weight is a knob people can predict: less of it, more of the style and less of the picture.

bench.gatys_tradeoff on the real bundled VGG19, 64 px, one scale: a flat avatar under pinstripes at two weights.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bench.gatys_tradeoff import measure
from model.gatys import GatysOptions

pytestmark = pytest.mark.slow  # two Gatys runs on the real encoder


def test_less_content_weight_gives_more_style_and_less_layout(tmp_path) -> None:
    weights = (0.25, 4.0)
    lines = measure(64, GatysOptions(iterations=40, num_scales=1), weights, [("avatar", "pinstripes")], tmp_path)
    row = json.loads((tmp_path / "gatys_tradeoff.json").read_text())["rows"][0]
    low, high = (row["weights"][f"{w:g}"] for w in weights)
    assert low["gram_ratio"] < high["gram_ratio"]
    assert low["layout"] < high["layout"]
    assert lines[-1].startswith("| avatar x pinstripes |")
    assert "cores, 20" in lines[0]  # the machine and the date the numbers were measured on
    with Image.open(tmp_path / "gatys_tradeoff_sheet.png") as sheet:
        assert sheet.width == 4 * 128 + 3 * 4  # content, style and one column per weight, 128 px cells
