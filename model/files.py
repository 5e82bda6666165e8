"""Writing files atomically and durably: a reader sees the old file or the new one, never part of one, and a file
reported written survives a crash or power cut.

The data goes to a new file with a unique name beside the target (so concurrent writers never share one), is flushed
and synced, then renamed over the target, and the directory is synced so the rename itself is on disk. A folder of
files that belong together (a stored style, a trained model) is installed the same way by :func:`atomic_directory`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["PREVIEW_FILE", "atomic_directory", "atomic_file", "atomic_write", "sync_directory"]

#: Where long work (a training, an optimisation job) keeps its latest intermediate image, in the folder it works in.
PREVIEW_FILE = "preview.png"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Opens a temporary file beside ``path`` for writing; it replaces ``path`` when the block ends cleanly.

    The file object's ``name`` is the temporary path, for checks (a hash, a parse) before the file is committed. If
    the block raises, the temporary file is removed and ``path`` is left as it was. The folder must exist: a write
    into a folder someone removed (a deleted style) fails rather than bringing it back.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # "x" (create, never reuse) rather than mkstemp: the file gets the permissions the umask gives any new file,
        # not mkstemp's 0600
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_directory(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replaces ``path`` with ``data`` atomically and durably (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields an empty staging folder beside ``path``; when the block ends cleanly its files are synced and it is
    renamed to ``path``, which must not exist then (or be an empty folder). If the block raises, nothing is installed.
    """
    path = Path(path)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield staging
        for file in staging.iterdir():
            if file.is_file():
                _sync_file(file)
        sync_directory(staging)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sync_directory(path.parent)


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_directory(folder: str | os.PathLike[str]) -> None:
    """Makes the entries of ``folder`` (a rename into it, a new file) durable. A no-op where directories cannot be
    opened (Windows) or synced (some network file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except PermissionError:  # Windows opens no directories; their entries are durable there without it
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # "this file system cannot sync a directory"
            raise
    finally:
        os.close(fd)
