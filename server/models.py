"""The model repository: the built-in models of every family (``server/families.py``) and the AdaIN decoders that
Train jobs produce.

A request names a model by its name or as ``family/version``; an empty name is the default model (``--default-model``,
else the first built-in one). Trained models live in ``<data-dir>/models/<name>/`` (``decoder.safetensors`` +
``meta.json``); they share the served AdaIN model's encoder (a decoder is only valid with the encoder it was trained
against, which the checkpoint records), appear and disappear without a restart, are listed from their metadata alone
(listing never loads weights) and loaded on first use into a bounded LRU cache. A trained model that cannot be read is
listed with its problem rather than failing the listing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from model.adain import FAMILY as ADAIN
from model.adain import AdaINModel, adain_info
from model.errors import WeightsError
from model.family import ModelInfo, StyleModel
from model.network import Decoder
from model.weights import load_decoder_checkpoint, sha256_file
from server.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

__all__ = ["MODEL_NAME", "ModelEntry", "ModelRegistry"]

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DECODER_FILE = "decoder.safetensors"
META_FILE = "meta.json"


@dataclass(frozen=True)
class ModelEntry:
    """One model as ListModels reports it."""

    info: ModelInfo
    is_default: bool
    create_time: float
    trained: bool  # produced by a Train job: DeleteModel may remove it
    problem: str = ""  # why the model cannot be used (e.g. an unreadable checkpoint); empty when it can


class ModelRegistry:
    """Thread-safe. ``trained_cache`` bounds how many trained models stay loaded (least recently used go first)."""

    def __init__(self, models: Sequence[StyleModel], models_dir: Path, *, default: str = "", trained_cache: int = 4,
                 on_list: Callable[[list[ModelInfo]], None] | None = None) -> None:
        """``on_list`` receives every served model each time they are listed (the metrics' model_info)."""
        self._builtin = {m.info.name: m for m in models}
        if len(self._builtin) != len(models):
            raise ValueError("built-in models need distinct names")
        self._adain = next((m for m in models if isinstance(m, AdaINModel)), None)  # trained decoders' encoder
        self._dir = models_dir
        self._dir.mkdir(parents=True, exist_ok=True)
        self._loaded: OrderedDict[str, StyleModel] = OrderedDict()
        self._cache_size = max(1, trained_cache)
        self._lock = threading.Lock()
        self._on_list = on_list
        self._started = time.time()
        self._default = self._resolve_builtin(default) if default else next(iter(self._builtin.values()), None)

    # --- lookup ---------------------------------------------------------------------------------------------------

    @property
    def default(self) -> StyleModel:
        if self._default is None:
            raise NotFound(self._missing("the default model"))
        return self._default

    @property
    def default_name(self) -> str:
        return self._default.info.name if self._default is not None else ""

    @property
    def adain(self) -> AdaINModel | None:
        """The served AdaIN model whose encoder trained decoders use (None when AdaIN is not served)."""
        return self._adain

    def _find_builtin(self, name: str) -> StyleModel | None:
        if name in self._builtin:
            return self._builtin[name]
        return next((m for m in self._builtin.values() if m.info.address == name), None)

    def _resolve_builtin(self, name: str) -> StyleModel:
        model = self._find_builtin(name)
        if model is None:
            raise NotFound(self._missing(f"model {name!r}"))
        return model

    def _missing(self, what: str) -> str:
        names = [e.info.name for e in self.list(notify=False)]
        return f"{what} is not served here; this server has: {', '.join(names) or 'no models'}"

    def get(self, name: str = "") -> StyleModel:
        """The model called ``name`` (a name or ``family/version``; "" is the default); NotFound when there is none."""
        if not name:
            return self.default
        if name in self._builtin:
            return self._builtin[name]
        trained = name.removeprefix(f"{ADAIN}/")
        with self._lock:
            if trained in self._loaded:
                self._loaded.move_to_end(trained)
                return self._loaded[trained]
        if not MODEL_NAME.match(trained) or not (self._dir / trained / DECODER_FILE).is_file():
            return self._resolve_builtin(name)
        model = self._load(trained, self._dir / trained)
        with self._lock:
            model = self._loaded.setdefault(trained, model)
            self._loaded.move_to_end(trained)
            while len(self._loaded) > self._cache_size:
                self._loaded.popitem(last=False)
        return model

    def describe(self, name: str) -> ModelInfo:
        """A model's description without loading it (NotFound when there is none)."""
        model = self._find_builtin(name)
        if model is not None:
            return model.info
        folder = self._trained_folder(name)
        return self._info(folder.name, folder, self._meta(folder))

    def exists(self, name: str) -> bool:
        if self._find_builtin(name) is not None:
            return True
        folder = self._dir / name.removeprefix(f"{ADAIN}/")
        return MODEL_NAME.match(folder.name) is not None and (folder / DECODER_FILE).is_file()

    def _trained_folder(self, name: str) -> Path:
        folder = self._dir / name.removeprefix(f"{ADAIN}/")
        if not MODEL_NAME.match(folder.name) or not (folder / DECODER_FILE).is_file():
            raise NotFound(self._missing(f"model {name!r}"))
        return folder

    # --- trained models -------------------------------------------------------------------------------------------

    def _base(self) -> AdaINModel:
        if self._adain is None:
            raise FailedPrecondition("trained AdaIN decoders need a served AdaIN model's encoder, and none is served")
        return self._adain

    def _info(self, name: str, folder: Path, meta: dict) -> ModelInfo:
        """A trained model's description from its metadata only (no weights read)."""
        base = self._base()
        info = adain_info(name, name, (base.encoder_sha256, base.info.provenance["encoder"]),
                          (str(meta.get("decoder_sha256", "")), str(folder / DECODER_FILE)),
                          untrained=base.info.untrained, metadata=meta.get("metadata", {}))
        return ModelInfo(**{**info.__dict__, "device": base.info.device, "dtype": base.info.dtype})

    def _load(self, name: str, folder: Path) -> AdaINModel:
        try:
            state, trained_against, _ = load_decoder_checkpoint(folder / DECODER_FILE)
            decoder = Decoder()
            decoder.load_official(state)
            info = self._info(name, folder, self._meta(folder))
        except (WeightsError, OSError, ValueError, KeyError) as exc:
            raise FailedPrecondition(f"model {name!r} cannot be loaded: {exc}") from None
        return self._base().with_decoder(decoder, info, decoder_encoder_sha256=trained_against)

    @staticmethod
    def _meta(folder: Path) -> dict:
        path = folder / META_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def check_new_name(self, name: str) -> None:
        if not MODEL_NAME.match(name):
            raise InvalidArgument("model_name must be 1-64 letters, digits, '.', '_' or '-', starting alphanumeric")
        taken = (self._find_builtin(name), self._find_builtin(f"{ADAIN}/{name}"))  # a name, or an address's version
        if any(m is not None for m in taken) or (self._dir / name).exists():
            raise AlreadyExists(f"model {name!r} already exists (DeleteModel removes a trained one)")

    def register(self, name: str, checkpoint: Path, metadata: dict[str, str]) -> StyleModel:
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

    def delete(self, name: str) -> None:
        """Removes a trained model; built-in ones are refused (FAILED_PRECONDITION), unknown ones NOT_FOUND."""
        if self._find_builtin(name) is not None:
            raise FailedPrecondition(f"model {name!r} is built in (from the server's weights); only trained models "
                                     "can be deleted")
        folder = self._trained_folder(name)
        trash = self._dir / f".deleted-{folder.name}-{time.monotonic_ns()}"
        os.replace(folder, trash)  # atomic: the model disappears at once, the files go after
        with self._lock:
            self._loaded.pop(folder.name, None)
        shutil.rmtree(trash, ignore_errors=True)
        self.list()

    # --- listing --------------------------------------------------------------------------------------------------

    def _trained_entry(self, folder: Path) -> ModelEntry:
        """A trained model's entry from its metadata and the checkpoint's header; problems are the entry's own."""
        try:
            meta = self._meta(folder)
            with safe_open(folder / DECODER_FILE, framework="pt") as f:  # reads the header only
                f.keys()
            return ModelEntry(self._info(folder.name, folder, meta), False, float(meta.get("create_time", 0.0)), True)
        except Exception as exc:
            info = ModelInfo(folder.name, ADAIN, folder.name, {}, {"decoder": str(folder / DECODER_FILE)})
            return ModelEntry(info, False, 0.0, True, problem=f"{type(exc).__name__}: {exc}")

    def list(self, *, notify: bool = True) -> list[ModelEntry]:
        """Built-in models (the default first), then trained ones by name."""
        entries = [ModelEntry(m.info, m is self._default, self._started, False) for m in self._builtin.values()]
        entries.sort(key=lambda e: not e.is_default)
        folders = sorted(p for p in self._dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        entries += [self._trained_entry(f) for f in folders if (f / DECODER_FILE).is_file()]
        if notify and self._on_list is not None:
            self._on_list([e.info for e in entries if not e.problem])
        return entries
