"""AdaIN decoders trained in this repository and shipped in ``model/trained/``, loaded by pinned SHA-256.

Each entry of ``model/weights_pins.json`` under ``"trained"`` names the file, its hash, the encoder spec it was trained
against (:func:`model.encoders.load_encoder`) and a description every surface shows. They are honest about what they
are: decoders trained on this project's CPU with the images in the installed wheels, not the official AdaIN decoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from model.adain.stylizer import AdaINModel
from model.errors import WeightsIntegrityError, WeightsNotFoundError
from model.weights import sha256_file

__all__ = ["TRAINED_DECODERS", "TrainedDecoder", "load_trained_model", "trained_decoder_path"]

_MODEL_DIR = Path(__file__).resolve().parent.parent
_PINS_FILE = _MODEL_DIR / "weights_pins.json"


@dataclass(frozen=True)
class TrainedDecoder:
    name: str  # the model name it is served under
    path: Path  # the fp16 safetensors file
    sha256: str
    encoder: str  # the encoder spec it was trained against, e.g. "bundled"
    description: str


def _pinned() -> dict[str, TrainedDecoder]:
    entries = json.loads(_PINS_FILE.read_text()).get("trained", {})
    return {name: TrainedDecoder(name, _MODEL_DIR / e["path"], e["sha256"], e["encoder"], e["description"])
            for name, e in entries.items()}


#: Shipped decoders by model name.
TRAINED_DECODERS: dict[str, TrainedDecoder] = _pinned()


def trained_decoder_path(name: str) -> Path:
    """The shipped file of ``name`` after checking it against its pin (WeightsIntegrityError if it differs)."""
    if name not in TRAINED_DECODERS:
        raise ValueError(f"unknown trained decoder {name!r}; shipped: {', '.join(TRAINED_DECODERS) or 'none'}")
    entry = TRAINED_DECODERS[name]
    if not entry.path.is_file():
        raise WeightsNotFoundError(f"{entry.path} is missing from this checkout (it is committed with the code)")
    digest = sha256_file(entry.path)
    if digest != entry.sha256:
        raise WeightsIntegrityError(f"{entry.path}: sha256 {digest} differs from the pinned {entry.sha256}")
    return entry.path


def load_trained_model(name: str, *, device: str = "auto", precision: str = "auto") -> AdaINModel:
    """The shipped decoder ``name`` with the encoder it was trained against, ready to serve (checked by hash)."""
    entry = TRAINED_DECODERS.get(name)
    path = trained_decoder_path(name)
    assert entry is not None  # trained_decoder_path refused unknown names
    return AdaINModel.from_files(entry.encoder, str(path), name=name, version=name, device=device, precision=precision,
                                 decoder_source=entry.description)
