"""The quality benchmark on tiny real images: each measure points the right way for a real stylization."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bench.quality import Contender, measure_quality, presets_table, quality_table
from model.family import StyleSource, StylizeOptions
from model.magenta import MagentaModel

pytestmark = pytest.mark.slow  # the bundled VGG19 scores a few dozen images

PAIRS = (("chelsea", "hubble_deep_field"), ("astronaut", "retina"))


class FewPresets:
    """The presets model with three of its presets: each preset costs the evaluator several passes."""

    def __init__(self, model) -> None:
        self.info, self.presets, self.stylize_batch = model.info, model.presets[:3], model.stylize_batch


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, magenta_model: MagentaModel, presets_model) -> dict:
    def stylize(content: Image.Image, style: Image.Image) -> Image.Image:
        return magenta_model.stylize(content, [StyleSource(image=style)], StylizeOptions(style_size=64))

    def unchanged(content: Image.Image, style: Image.Image) -> Image.Image:
        return content.copy()

    contenders = [Contender("magenta", "trained", stylize), Contender("identity", "reference", unchanged)]
    out = tmp_path_factory.mktemp("quality")
    res = measure_quality(contenders, pairs=PAIRS, out=out, side=64, presets=[FewPresets(presets_model)])
    res["out"] = out
    return res


def _row(results: dict, model: str) -> dict:
    return next(r for r in results["rows"] if r["model"] == model)


def test_a_real_stylization_moves_toward_the_style_and_keeps_the_content(results: dict) -> None:
    reference = results["references"][0]
    stylized = _row(results, "magenta")
    assert stylized["style_distance"] < 0.8 * reference["content_image_style_distance"]
    assert stylized["content_distance"] < reference["style_image_content_distance"]
    assert 0.0 < stylized["ssim"] < 0.98


def test_the_identity_scores_as_the_content_itself(results: dict) -> None:
    identity = _row(results, "identity")
    assert identity["content_distance"] == pytest.approx(0.0, abs=1e-6)
    assert identity["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert identity["style_distance"] == pytest.approx(results["references"][0]["content_image_style_distance"])


def test_the_sheet_and_table_cover_every_model(results: dict) -> None:
    sheet = Image.open(results["out"] / "contact_sheet.png")
    assert sheet.width == 192 * 4 + 4 * 3  # content, style, two models, 4 px apart
    presets = Image.open(results["out"] / "presets_sheet.png")
    assert presets.width == 128 * 4 + 4 * 3  # each photo, then every preset on it
    saved = json.loads(json.dumps({k: v for k, v in results.items() if k != "out"}))
    table = "\n".join(quality_table(saved))
    assert "| magenta | trained |" in table and "*style image itself*" in table
    assert "| presets: presets (3 presets) | trained, presets only |" in table
    assert len(presets_table(saved["presets"][0])) == 4 + 3


def test_the_spread_needs_no_style_image_and_sees_a_preset_give_photos_one_look(results: dict) -> None:
    """The photos spread 1 by definition: left alone (the identity) they stay that far apart; a real style or
    preset pulls them together, and different presets stay apart on one photo."""
    assert results["spreads"]["identity"] == pytest.approx(1.0)
    assert results["spreads"]["magenta"] < 0.8
    presets = results["presets"][0]
    assert all(r["spread"] < 0.8 for r in presets["rows"])
    assert presets["distinct"] > 0.5
    assert all(r["ssim"] < 0.98 and r["content_distance"] > 0 for r in presets["rows"])
