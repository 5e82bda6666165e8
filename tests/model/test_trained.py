"""Shipped trained decoders: loaded only by their pinned hash, with the encoder they were trained against."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.adain import trained
from model.adain.trained import TrainedDecoder, load_trained_model, trained_decoder_path
from model.bundled import BUNDLED_VGG19
from model.errors import WeightsIntegrityError
from model.weights import load_decoder_checkpoint, random_decoder_state, save_decoder_checkpoint


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainedDecoder:
    path = tmp_path / "tiny.safetensors"
    digest = save_decoder_checkpoint(path, random_decoder_state(0), encoder_sha256=BUNDLED_VGG19.sha256,
                                     metadata={"steps": "1"}, dtype=torch.float16)
    entry = TrainedDecoder("tiny", path, digest, "bundled", "trained here: a test decoder")
    monkeypatch.setitem(trained.TRAINED_DECODERS, "tiny", entry)
    return entry


def test_fp16_checkpoint_loads_with_its_encoder_and_names_both(shipped: TrainedDecoder) -> None:
    state, encoder_sha, _ = load_decoder_checkpoint(shipped.path)
    assert encoder_sha == BUNDLED_VGG19.sha256 and all(t.dtype == torch.float16 for t in state.values())
    model = load_trained_model("tiny", device="cpu", precision="fp32")
    assert model.info.provenance["decoder"] == "trained here: a test decoder" and model.info.version == "tiny"
    assert model.info.provenance["encoder"].startswith("bundled: ImageNet VGG19") and not model.info.untrained


def test_a_file_that_differs_from_its_pin_is_refused(shipped: TrainedDecoder) -> None:
    data = bytearray(shipped.path.read_bytes())
    data[-10] ^= 0x01
    shipped.path.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="differs from the pinned"):
        trained_decoder_path("tiny")
    with pytest.raises(ValueError, match="unknown trained decoder"):
        trained_decoder_path("nope")
