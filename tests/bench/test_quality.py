"""The quality benchmark on tiny real images: each measure points the right way for a real stylization."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bench.quality import Contender, measure_quality, quality_table
from model.family import StyleSource, StylizeOptions
from model.magenta import MagentaModel


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, magenta_model: MagentaModel) -> dict:
    def stylize(content: Image.Image, style: Image.Image) -> Image.Image:
        return magenta_model.stylize(content, [StyleSource(image=style)], StylizeOptions(style_size=64))

    def unchanged(content: Image.Image, style: Image.Image) -> Image.Image:
        return content.copy()

    contenders = [Contender("magenta", "trained", stylize), Contender("identity", "reference", unchanged)]
    out = tmp_path_factory.mktemp("quality")
    res = measure_quality(contenders, pairs=(("chelsea", "hubble_deep_field"),), out=out, side=64)
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
    table = "\n".join(quality_table(json.loads(json.dumps({k: v for k, v in results.items() if k != "out"}))))
    assert "| magenta | trained |" in table and "*style image itself*" in table
