"""The model repository: every family's built-in models and the trained models in ``<data-dir>/models/<name>/``.

A request names a model by its name or as ``family/version``; an empty name is the default model (``--default-model``,
else the first built-in one). A trained model is a folder holding ``meta.json`` (its family, creation time, the
SHA-256 of each weight file by role, free-form metadata) and the files its family declares
(:class:`model.declaration.TrainedModels`; a folder without ``meta.json`` belongs to the family whose first file it
holds). Trained models appear and disappear without a restart, are listed from their metadata alone (listing never
loads weights) and loaded on first use into a bounded LRU cache by their family's own loader, next to the family's
built-in models (a trained AdaIN decoder runs behind the served encoder). A trained model that cannot be read is
listed with its problem rather than failing the listing. The repository names no family.

A model is served with exactly the weights its listing shows: a load checks each file against the hash ``meta.json``
records, and a cached model whose folder changed since it was loaded is loaded again. A delete wins over the loads
in flight: a call whose load finishes after the model was deleted (or replaced) gets NOT_FOUND, never the old
weights, and concurrent first calls share one load.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from model.declaration import Family
from model.errors import Unavailable, WeightsError
from model.family import Capabilities, ModelInfo, StyleModel, StylizeOptions
from model.files import atomic_directory
from model.pins import sha256_file
from model.registry import FAMILIES
from server.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from server.trained import META_FILE, family_of, identity, is_trained, read_record, render_meta, verify_weights

__all__ = ["MODEL_NAME", "ModelEntry", "ModelRegistry"]

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# What a family's loader may raise for a model that cannot be served here (a missing encoder, a damaged file).
_LOAD_ERRORS = (Unavailable, WeightsError, OSError, ValueError, KeyError)
_LOAD_ATTEMPTS = 3  # a folder replaced while it loads is loaded again, this many times at most


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
        self._loaded: OrderedDict[str, tuple[tuple, StyleModel]] = OrderedDict()  # name -> (folder identity, model)
        self._loading: dict[tuple[str, tuple], Future] = {}  # the load in flight per folder and identity
        self._generation: dict[str, int] = {}  # per name, raised by every delete and registration
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
        for _ in range(_LOAD_ATTEMPTS):
            model = self._trained(name, folder)
            if model is not None:
                return model
        raise FailedPrecondition(f"model {name!r} kept changing on disk while it loaded; try again")

    def _trained(self, name: str, folder: Path) -> StyleModel | None:
        """The cached or freshly loaded model of ``folder``; None when the folder changed while it loaded."""
        seen = identity(folder)
        if seen is None:
            raise NotFound(self._missing(f"model {name!r}"))
        key = folder.name
        with self._lock:
            generation = self._generation.get(key, 0)
            cached = self._loaded.get(key)
            if cached is not None and cached[0] == seen:
                self._loaded.move_to_end(key)
                return cached[1]
            flight = self._loading.get((key, seen))
            leading = flight is None
            if leading:
                flight = self._loading[(key, seen)] = Future()
        if leading:
            self._lead(flight, folder, seen)
        try:
            model = flight.result()
        except FailedPrecondition:
            if self._generation.get(key, 0) != generation or identity(folder) is None:
                raise NotFound(self._missing(f"model {name!r}")) from None  # deleted while it loaded
            raise
        return self._keep(name, folder, seen, generation, model)

    def _lead(self, flight: Future, folder: Path, seen: tuple) -> None:
        """Loads for every call waiting on ``flight``."""
        try:
            flight.set_result(self._load(folder))
        except BaseException as exc:  # the waiting calls get it too
            flight.set_exception(exc)
        finally:
            with self._lock:
                self._loading.pop((folder.name, seen), None)

    def _keep(self, name: str, folder: Path, seen: tuple, generation: int, model: StyleModel) -> StyleModel | None:
        """Caches a model just loaded, unless its folder was deleted (NotFound) or replaced (None) meanwhile."""
        now = identity(folder)
        with self._lock:
            deleted = self._generation.get(folder.name, 0) != generation or now is None
            if not deleted and now == seen:
                self._loaded[folder.name] = (seen, model)
                self._loaded.move_to_end(folder.name)
                while len(self._loaded) > self._cache_size:
                    self._loaded.popitem(last=False)
                return model
        if deleted:
            raise NotFound(self._missing(f"model {name!r}"))
        return None

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
        if not MODEL_NAME.match(version) or not is_trained(self._dir / version, self._families):
            return None
        if family and family_of(self._dir / version, self._families) != family:
            return None
        return version

    def _trained_folder(self, name: str) -> Path:
        version = self._trained_name(name)
        if version is None:
            raise NotFound(self._missing(f"model {name!r}"))
        return self._dir / version

    def _builtins_of(self, family: Family) -> list[StyleModel]:
        return [m for m in self._builtin.values() if m.info.family == family.name]

    def _load(self, folder: Path, name: str = "") -> StyleModel:
        """The model in ``folder`` (called ``name``, by default the folder's), its weights checked against
        ``meta.json`` first; FailedPrecondition when it cannot be served."""
        name = name or folder.name
        try:
            record, family = read_record(folder, self._families, name)
            verify_weights(record, family)
            return family.trained.load(record, self._builtins_of(family))
        except _LOAD_ERRORS as exc:
            raise FailedPrecondition(f"model {name!r} cannot be loaded: {exc}") from None

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
            weights = {role: sha256_file(staging / declared[role]) for role in files}
            (staging / META_FILE).write_text(render_meta(name, family, time.time(), weights, dict(metadata)))
            self._load(staging, name)  # refuses e.g. a decoder trained against another encoder before installing it
        with self._lock:
            self._forget(name)
        model = self.get(name)
        self.list()  # tells on_list about the new model
        return model

    def _forget(self, name: str) -> None:
        """Under the lock: what was cached or is loading under ``name`` belongs to a folder that is no more."""
        self._generation[name] = self._generation.get(name, 0) + 1
        self._loaded.pop(name, None)

    def delete(self, name: str) -> None:
        """Removes a trained model; built-in ones are refused (FAILED_PRECONDITION), unknown ones NOT_FOUND. Calls
        whose loads are in flight get NOT_FOUND too: the model is gone for everyone once this returns."""
        if self._find_builtin(name) is not None:
            raise FailedPrecondition(f"model {name!r} is built in (from the server's weights); only trained models "
                                     "can be deleted")
        folder = self._trained_folder(name)
        trash = self._dir / f".deleted-{folder.name}-{time.monotonic_ns()}"
        with self._lock:
            os.replace(folder, trash)  # atomic: the model disappears at once, the files go after
            self._forget(folder.name)
        shutil.rmtree(trash, ignore_errors=True)
        self.list()

    # --- listing --------------------------------------------------------------------------------------------------

    def _trained_entry(self, folder: Path) -> ModelEntry:
        """A trained model's entry from its metadata (its family may read file headers); problems are its own."""
        family = self._families.get(family_of(folder, self._families))
        capabilities = next((m.capabilities for m in self._builtins_of(family)), Capabilities()) if family else \
            Capabilities()
        try:
            record, family = read_record(folder, self._families)
            info = family.trained.info(record, self._builtins_of(family))
            return ModelEntry(info, False, record.create_time, True, capabilities=capabilities)
        except Exception as exc:
            info = ModelInfo(folder.name, family.name if family else "", folder.name, {}, {},
                             defaults=family.defaults if family else StylizeOptions())
            return ModelEntry(info, False, 0.0, True, problem=f"{type(exc).__name__}: {exc}",
                              capabilities=capabilities)

    def list(self, *, notify: bool = True) -> list[ModelEntry]:
        """Built-in models (the default first), then trained ones by name."""
        entries = [ModelEntry(m.info, m is self._default, self._started, False, capabilities=m.capabilities)
                   for m in self._builtin.values()]
        entries.sort(key=lambda e: not e.is_default)
        folders = sorted(p for p in self._dir.iterdir() if MODEL_NAME.match(p.name) and is_trained(p, self._families))
        entries += [self._trained_entry(f) for f in folders]
        if notify and self._on_list is not None:
            self._on_list([e.info for e in entries if not e.problem])
        return entries
