"""The model repository: every family's built-in models and the trained models in ``<data-dir>/models/<name>/``.

A request names a model by its name or as ``family/version``; an empty name is the default model (``--default-model``,
else the first built-in one). A trained model is a folder holding ``meta.json`` (its family, creation time, the
SHA-256 of each weight file by role, free-form metadata) and the files its family declares
(:class:`model.declaration.TrainedModels`; a folder without ``meta.json`` belongs to the family whose first file it
holds). Trained models appear and disappear without a restart, are listed from their metadata alone (listing never
loads weights) and loaded on first use into a bounded LRU cache by their family's own loader, next to the family's
built-in models (a trained AdaIN decoder runs behind the served encoder). A trained model that cannot be read is
listed with its problem rather than failing the listing. The repository names no family.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.declaration import Family, TrainedModel
from model.errors import Unavailable, WeightsError
from model.family import Capabilities, ModelInfo, StyleModel, StylizeOptions
from model.files import atomic_directory
from model.pins import sha256_file
from model.registry import FAMILIES
from server.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

__all__ = ["META_FILE", "MODEL_NAME", "ModelEntry", "ModelRegistry"]

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
META_FILE = "meta.json"
# What a family's loader may raise for a model that cannot be served here (a missing encoder, a damaged file).
_LOAD_ERRORS = (Unavailable, WeightsError, OSError, ValueError, KeyError)


@dataclass(frozen=True)
class ModelEntry:
    """One model as ListModels reports it."""

    info: ModelInfo
    is_default: bool
    create_time: float
    trained: bool  # a trained model's folder: DeleteModel may remove it
    problem: str = ""  # why the model cannot be used (e.g. an unreadable checkpoint); empty when it can
    capabilities: Capabilities = field(default_factory=Capabilities)  # a trained model's: its family's served ones'


class ModelRegistry:
    """Thread-safe. ``trained_cache`` bounds how many trained models stay loaded (least recently used go first)."""

    def __init__(self, models: Sequence[StyleModel], models_dir: Path, *, families: Sequence[Family] = FAMILIES,
                 default: str = "", trained_cache: int = 4,
                 on_list: Callable[[list[ModelInfo]], None] | None = None) -> None:
        """``families`` declare how trained models are stored and loaded; ``on_list`` receives every served model
        each time they are listed (the metrics' model_info)."""
        self._builtin = {m.info.name: m for m in models}
        if len(self._builtin) != len(models):
            raise ValueError("built-in models need distinct names")
        self._families = {f.name: f for f in families if f.trained is not None}
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
        builtin = self._find_builtin(name)
        if builtin is not None:
            return builtin
        folder = self._trained_folder(name)
        with self._lock:
            if folder.name in self._loaded:
                self._loaded.move_to_end(folder.name)
                return self._loaded[folder.name]
        model = self._load(folder)
        with self._lock:
            model = self._loaded.setdefault(folder.name, model)
            self._loaded.move_to_end(folder.name)
            while len(self._loaded) > self._cache_size:
                self._loaded.popitem(last=False)
        return model

    def describe(self, name: str) -> ModelInfo:
        """A model's description without loading it (NotFound when there is none)."""
        model = self._find_builtin(name)
        if model is not None:
            return model.info
        entry = self._trained_entry(self._trained_folder(name))
        if entry.problem:
            raise FailedPrecondition(f"model {name!r} cannot be used: {entry.problem}")
        return entry.info

    def exists(self, name: str) -> bool:
        return self._find_builtin(name) is not None or self._trained_name(name) is not None

    # --- trained models -------------------------------------------------------------------------------------------

    def _trained_name(self, name: str) -> str | None:
        """The folder name of the trained model ``name`` (a folder name, or ``family/folder name``), or None."""
        family, _, version = name.rpartition("/")
        if not MODEL_NAME.match(version) or not self._is_trained(self._dir / version):
            return None
        if family and self._family_name(self._dir / version) != family:
            return None
        return version

    def _trained_folder(self, name: str) -> Path:
        version = self._trained_name(name)
        if version is None:
            raise NotFound(self._missing(f"model {name!r}"))
        return self._dir / version

    def _is_trained(self, folder: Path) -> bool:
        """A trained model's folder: it has ``meta.json`` or the first file of a family's trained models."""
        if folder.name.startswith(".") or not folder.is_dir():
            return False
        return (folder / META_FILE).is_file() or self._family_by_files(folder) is not None

    def _family_by_files(self, folder: Path) -> Family | None:
        return next((f for f in self._families.values() if (folder / next(iter(f.trained.files.values()))).is_file()),
                    None)

    @staticmethod
    def _meta(folder: Path) -> dict:
        path = folder / META_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def _family_name(self, folder: Path) -> str:
        """The family ``meta.json`` names, else the one whose files the folder holds ("" when neither says)."""
        try:
            named = self._meta(folder).get("family")
        except (OSError, ValueError, AttributeError):
            named = None
        if isinstance(named, str) and named:
            return named
        by_files = self._family_by_files(folder)
        return by_files.name if by_files is not None else ""

    def _record(self, folder: Path) -> tuple[TrainedModel, Family]:
        """The folder's validated description and its family's declaration."""
        meta = self._meta(folder)
        family = self._families.get(self._family_name(folder))
        if family is None:
            raise ValueError(f"{META_FILE} names no family this server serves ({', '.join(self._families)})")
        weights = dict(meta.get("weights", {}))
        weights |= {role: meta[f"{role}_sha256"] for role in family.trained.files if f"{role}_sha256" in meta}
        record = TrainedModel(folder.name, folder, weights, {k: str(v) for k, v in meta.get("metadata", {}).items()},
                              float(meta.get("create_time", 0.0)))
        return record, family

    def _builtins_of(self, family: Family) -> list[StyleModel]:
        return [m for m in self._builtin.values() if m.info.family == family.name]

    def _load(self, folder: Path) -> StyleModel:
        try:
            record, family = self._record(folder)
            return family.trained.load(record, self._builtins_of(family))
        except _LOAD_ERRORS as exc:
            raise FailedPrecondition(f"model {folder.name!r} cannot be loaded: {exc}") from None

    def check_new_name(self, name: str, family: str) -> None:
        """Refuses a name that is malformed or taken (a model's name, a built-in address of ``family``, a folder)."""
        if not MODEL_NAME.match(name):
            raise InvalidArgument("model_name must be 1-64 letters, digits, '.', '_' or '-', starting alphanumeric")
        taken = (self._find_builtin(name), self._find_builtin(f"{family}/{name}"))
        if any(m is not None for m in taken) or (self._dir / name).exists():
            raise AlreadyExists(f"model {name!r} already exists (DeleteModel removes a trained one)")

    def register(self, name: str, family: str, files: Mapping[str, Path], metadata: Mapping[str, str]) -> StyleModel:
        """Installs a trained model of ``family`` under ``name`` (atomically): ``files`` by role, as the family
        declares them. The model is loaded before it is installed, so one the family cannot serve is refused."""
        self.check_new_name(name, family)
        declared = self._families[family].trained.files
        if set(files) != set(declared):
            raise ValueError(f"a {family} model needs the files {sorted(declared)}, got {sorted(files)}")
        with atomic_directory(self._dir / name) as staging:
            for role, source in files.items():
                shutil.copyfile(source, staging / declared[role])
            meta = {"name": name, "family": family, "create_time": time.time(),
                    "weights": {role: sha256_file(staging / declared[role]) for role in files},
                    "metadata": dict(metadata)}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2))
            self._load(staging)  # refuses e.g. a decoder trained against another encoder before it is installed
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
        """A trained model's entry from its metadata (its family may read file headers); problems are its own."""
        try:
            record, family = self._record(folder)
            builtins = self._builtins_of(family)
            info = family.trained.info(record, builtins)
            capabilities = next((m.capabilities for m in builtins), Capabilities())
            return ModelEntry(info, False, record.create_time, True, capabilities=capabilities)
        except Exception as exc:
            family = self._family_name(folder)
            declared = self._families.get(family)
            info = ModelInfo(folder.name, family, folder.name, {}, {},
                             defaults=declared.defaults if declared is not None else StylizeOptions())
            return ModelEntry(info, False, 0.0, True, problem=f"{type(exc).__name__}: {exc}")

    def list(self, *, notify: bool = True) -> list[ModelEntry]:
        """Built-in models (the default first), then trained ones by name."""
        entries = [ModelEntry(m.info, m is self._default, self._started, False, capabilities=m.capabilities)
                   for m in self._builtin.values()]
        entries.sort(key=lambda e: not e.is_default)
        folders = sorted(p for p in self._dir.iterdir() if MODEL_NAME.match(p.name) and self._is_trained(p))
        entries += [self._trained_entry(f) for f in folders]
        if notify and self._on_list is not None:
            self._on_list([e.info for e in entries if not e.problem])
        return entries
