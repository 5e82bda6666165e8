"""A trained model's folder, ``<data-dir>/models/<name>/``: its ``meta.json`` (schema, read and checked in one place,
written by registration), which family it belongs to, what it holds right now, and its weights checked against the
hashes its listing shows. Names no family: each declares its files (:class:`model.declaration.TrainedModels`).

``meta.json`` is data a person or a crashed process may have damaged, so every field is checked before it is used
and a file that breaks the schema raises :class:`MetaError` naming the field: the repository lists that model with
the message as its ``problem`` and refuses to serve it, and every other model is unaffected.

Schema (an object; unknown keys are ignored so that newer servers may add some)::

    family        string, 1-64 characters           the model family (model/registry.py)
    name          string                            informative; the folder's name is the model's name
    create_time   number, 0 <= t < 253402300800     seconds since the epoch (before year 10000)
    weights       object: role -> 64 lower-case hex the SHA-256 of each weight file as installed
    <role>_sha256 64 lower-case hex                 the same for one role (files written by older servers)
    metadata      object: string (<= 128) -> string, number or boolean (<= 4096 characters), at most 256 entries
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.declaration import Family, TrainedModel
from model.pins import Weights, verify

__all__ = ["MAX_META_BYTES", "META_FILE", "Meta", "MetaError", "family_of", "identity", "is_trained", "parse_meta",
           "read_record", "render_meta", "verify_weights"]

META_FILE = "meta.json"

MAX_META_BYTES = 64 * 1024
_MAX_TIME = 253402300800.0  # 10000-01-01T00:00:00Z: beyond what a protobuf Timestamp can hold
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_ENTRIES, _MAX_KEY, _MAX_VALUE = 256, 128, 4096


class MetaError(ValueError):
    """``meta.json`` cannot be used; the message names the field and what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(f"meta.json: {message}")


@dataclass(frozen=True)
class Meta:
    """A checked ``meta.json``."""

    family: str = ""  # empty: the file names none (the folder's files then say)
    create_time: float = 0.0
    weights: dict[str, str] = field(default_factory=dict)  # role -> SHA-256
    metadata: dict[str, str] = field(default_factory=dict)


def _reject_constant(name: str) -> float:
    raise MetaError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MetaError(f"number {text[:20]} is out of range")
    return value


def _load(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_META_BYTES:
        raise MetaError(f"{len(raw)} bytes, more than the {MAX_META_BYTES} allowed")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite)
    except MetaError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise MetaError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise MetaError("nested too deeply") from None
    if not isinstance(value, dict):
        raise MetaError(f"must be a JSON object, not {type(value).__name__}")
    return value


def _create_time(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < _MAX_TIME:
        raise MetaError(f"create_time must be seconds since the epoch (0 to {_MAX_TIME:.0f}), got {str(value)[:40]}")
    return float(value)


def _sha256(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise MetaError(f"{where} must be a SHA-256 in 64 lower-case hex digits")
    return value


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > _MAX_ENTRIES:
        raise MetaError(f"metadata must be an object of at most {_MAX_ENTRIES} entries")
    out = {}
    for key, item in value.items():
        if len(key) > _MAX_KEY or isinstance(item, dict | list) or item is None:
            raise MetaError(f"metadata[{key[:40]!r}] must be a string, number or boolean under a key of at most "
                            f"{_MAX_KEY} characters")
        text = item if isinstance(item, str) else json.dumps(item)
        if len(text) > _MAX_VALUE:
            raise MetaError(f"metadata[{key[:40]!r}] is longer than {_MAX_VALUE} characters")
        out[key] = text
    return out


def parse_meta(raw: bytes, roles: tuple[str, ...] = ()) -> Meta:
    """Checks ``meta.json``'s bytes against the schema; ``roles`` are the weight roles whose older ``<role>_sha256``
    keys are read too. Raises :class:`MetaError`."""
    value = _load(raw)
    family = value.get("family", "")
    if not isinstance(family, str) or len(family) > 64:
        raise MetaError("family must be a string of at most 64 characters")
    weights = value.get("weights", {})
    if not isinstance(weights, dict):
        raise MetaError("weights must be an object of role -> SHA-256")
    checked = {str(role): _sha256(f"weights[{str(role)[:40]!r}]", digest) for role, digest in weights.items()}
    for role in roles:
        if f"{role}_sha256" in value:
            checked.setdefault(role, _sha256(f"{role}_sha256", value[f"{role}_sha256"]))
    return Meta(family, _create_time(value.get("create_time", 0.0)), checked,
                _metadata(value.get("metadata", {})))


def render_meta(name: str, family: str, create_time: float, weights: dict[str, str],
                metadata: dict[str, str]) -> str:
    """The ``meta.json`` a registration writes (it passes :func:`parse_meta`)."""
    return json.dumps({"name": name, "family": family, "create_time": create_time, "weights": weights,
                       "metadata": metadata}, indent=2)


def _read_meta(folder: Path, roles: tuple[str, ...]) -> Meta:
    """The folder's checked ``meta.json``; an empty one when it has none (a folder its files identify)."""
    path = folder / META_FILE
    if not path.is_file():
        return Meta()
    with path.open("rb") as f:
        raw = f.read(MAX_META_BYTES + 1)  # a larger file is refused without reading it all
    return parse_meta(raw, roles)


def _marker(family: Family) -> str:
    assert family.trained is not None
    return next(iter(family.trained.files.values()))


def family_of(folder: Path, families: Mapping[str, Family]) -> str:
    """The family ``meta.json`` names, else the one whose first declared file the folder holds ("" when neither
    says): folders written before ``meta.json`` named a family, or copied in by hand, are still found."""
    try:
        named = _read_meta(folder, ()).family
    except (MetaError, OSError):
        named = ""
    if named:
        return named
    return next((name for name, family in families.items() if (folder / _marker(family)).is_file()), "")


def is_trained(folder: Path, families: Mapping[str, Family]) -> bool:
    """A trained model's folder: it has ``meta.json`` or the first declared file of a family's trained models."""
    if folder.name.startswith(".") or not folder.is_dir():
        return False
    return (folder / META_FILE).is_file() or any((folder / _marker(f)).is_file() for f in families.values())


def read_record(folder: Path, families: Mapping[str, Family], name: str = "") -> tuple[TrainedModel, Family]:
    """The folder's checked description (the model ``name``, by default the folder's) and its family's declaration;
    MetaError (a ValueError) when unusable."""
    roles = tuple(sorted({role for f in families.values() for role in f.trained.files}))
    meta = _read_meta(folder, roles)
    named = meta.family or family_of(folder, families)
    family = families.get(named)
    if family is None:
        raise MetaError(f"family {named[:64]!r} is not one this server serves ({', '.join(families)})")
    return TrainedModel(name or folder.name, folder, meta.weights, meta.metadata, meta.create_time), family


def verify_weights(trained: TrainedModel, family: Family) -> None:
    """Each weight file whose hash ``meta.json`` records must still have it, so a model is served with exactly the
    weights its listing shows (:func:`model.pins.verify`; WeightsIntegrityError otherwise)."""
    assert family.trained is not None
    for role, filename in family.trained.files.items():
        recorded = trained.weights.get(role)
        if recorded:
            path = trained.folder / filename
            verify(Weights(f"{trained.name}/{role}", filename, f"the {role} of model {trained.name}",
                           sha256=recorded, path=str(path)), path)


def identity(folder: Path) -> tuple | None:
    """What the folder holds right now (each file's inode, size and times, and ``meta.json``'s bytes), or None when
    it is gone: a cached model whose folder no longer matches is loaded again."""
    try:
        stats = tuple((entry.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                      for entry in sorted(os.scandir(folder), key=lambda e: e.name) if entry.is_file()
                      for st in (entry.stat(),))
        meta = folder / META_FILE
        digest = b""
        if meta.is_file():
            with meta.open("rb") as f:
                digest = hashlib.sha256(f.read(MAX_META_BYTES + 1)).digest()
    except OSError:
        return None
    return stats, digest
