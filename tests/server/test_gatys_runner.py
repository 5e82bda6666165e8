"""Which VGG19 Gatys jobs use: the server's file, the bundled one when it is absent, random only when asked."""

from __future__ import annotations

from pathlib import Path

from model.encoders import BUNDLED, random_spec
from server.config import Config
from server.jobs.gatys_runner import gatys_encoder_spec


def test_missing_vgg_file_falls_back_to_the_bundled_encoder(tmp_path: Path) -> None:
    assert gatys_encoder_spec(Config(model_options={"vgg": str(tmp_path / "absent.pth")})) == BUNDLED


def test_present_vgg_file_is_preferred(tmp_path: Path) -> None:
    path = tmp_path / "vgg_normalised.pth"
    path.write_bytes(b"weights")
    assert gatys_encoder_spec(Config(model_options={"vgg": str(path)})) == str(path)


def test_random_weights_only_when_asked(tmp_path: Path) -> None:
    config = Config(model_options={"vgg": str(tmp_path / "absent.pth")}, random_weights=True, random_seed=3)
    assert gatys_encoder_spec(config) == random_spec(3)
