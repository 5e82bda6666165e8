"""The models a server can run: the default (from --vgg/--decoder or random) and decoders trained by Train jobs.

Trained models live in ``<data-dir>/models/<name>/`` (``decoder.safetensors`` + ``meta.json``). They share the default
model's encoder (a decoder is only valid with the encoder it was trained against, which the checkpoint records), are
loaded on first use and appear without a restart once registered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.adain.stylizer import AdaINModel, ModelInfo
from model.network import Decoder
from model.weights import load_decoder_checkpoint, sha256_file
from server.errors import AlreadyExists, InvalidArgument, NotFound

__all__ = ["MODEL_NAME", "ModelRegistry", "RegisteredModel"]

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DECODER_FILE = "decoder.safetensors"
META_FILE = "meta.json"


@dataclass(frozen=True)
class RegisteredModel:
    info: ModelInfo
    is_default: bool
    create_time: float


class ModelRegistry:
    def __init__(self, default: AdaINModel, models_dir: Path,
                 on_list: Callable[[list[ModelInfo]], None] | None = None) -> None:
        """``on_list`` receives every served model each time they are listed (the metrics' model_info)."""
        self.default = default
        self._on_list = on_list
        self._dir = models_dir
        self._dir.mkdir(parents=True, exist_ok=True)
        self._loaded: dict[str, AdaINModel] = {}
        self._lock = threading.Lock()
        self._started = time.time()

    @property
    def default_name(self) -> str:
        return self.default.info.name

    def get(self, name: str = "") -> AdaINModel:
        """The model called ``name`` ("" is the default); NotFound when there is none."""
        if not name or name == self.default_name:
            return self.default
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        folder = self._folder(name)
        if not (folder / DECODER_FILE).is_file():
            raise NotFound(f"model {name!r} not found; ListModels shows the available models")
        model = self._load(name, folder)
        with self._lock:
            return self._loaded.setdefault(name, model)

    def _folder(self, name: str) -> Path:
        if not MODEL_NAME.match(name):
            raise NotFound(f"model {name!r} not found (not a valid model name)")
        return self._dir / name

    def _load(self, name: str, folder: Path) -> AdaINModel:
        state, trained_against, metadata = load_decoder_checkpoint(folder / DECODER_FILE)
        decoder = Decoder()
        decoder.load_official(state)
        meta = self._meta(folder)
        served = self.default.info  # a trained decoder runs on the default model's device and dtype
        info = ModelInfo(name, "", str(folder / DECODER_FILE), "", meta.get("decoder_sha256", ""), served.device,
                         served.dtype, False, {**metadata, **meta.get("metadata", {})})
        return self.default.with_decoder(decoder, info, decoder_encoder_sha256=trained_against)

    @staticmethod
    def _meta(folder: Path) -> dict:
        path = folder / META_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def exists(self, name: str) -> bool:
        if name == self.default_name:
            return True
        return MODEL_NAME.match(name) is not None and (self._dir / name / DECODER_FILE).is_file()

    def check_new_name(self, name: str) -> None:
        if not MODEL_NAME.match(name):
            raise InvalidArgument("model_name must be 1-64 letters, digits, '.', '_' or '-', starting alphanumeric")
        if self.exists(name):
            raise AlreadyExists(f"model {name!r} already exists")

    def register(self, name: str, checkpoint: Path, metadata: dict[str, str]) -> AdaINModel:
        """Installs a trained decoder checkpoint under ``name`` (atomically) and returns the loaded model."""
        self.check_new_name(name)
        staging = Path(tempfile.mkdtemp(dir=self._dir, prefix=f".{name}."))
        try:
            shutil.copyfile(checkpoint, staging / DECODER_FILE)
            meta = {"name": name, "create_time": time.time(), "decoder_sha256": sha256_file(staging / DECODER_FILE),
                    "metadata": metadata}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2))
            self._load(name, staging)  # refuses a decoder trained against another encoder before it is installed
            os.replace(staging, self._dir / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        with self._lock:
            self._loaded.pop(name, None)
        model = self.get(name)
        self.list()  # tells on_list about the new model
        return model

    def list(self) -> list[RegisteredModel]:
        models = [RegisteredModel(self.default.info, True, self._started)]
        for folder in sorted(p for p in self._dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (folder / DECODER_FILE).is_file():
                model = self.get(folder.name)
                models.append(RegisteredModel(model.info, False, self._meta(folder).get("create_time", 0.0)))
        if self._on_list is not None:
            self._on_list([m.info for m in models])
        return models
