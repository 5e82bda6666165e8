"""The one atomic, durable write: whole files or nothing, synced before and after the rename, unique temporary names."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from model import files
from model.files import atomic_directory, atomic_file, atomic_write


def test_atomic_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path) -> None:
    path = tmp_path / "result"
    atomic_write(path, b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["result"]


def test_a_failed_write_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "state.pt"
    atomic_write(path, b"old")
    with pytest.raises(RuntimeError), atomic_file(path) as f:
        f.write(b"half of the new")
        raise RuntimeError("the writer died")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_the_file_and_then_its_directory_are_synced(tmp_path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("sync directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "sync file")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    atomic_write(tmp_path / "checkpoint", b"data")
    assert events == ["sync file", "rename", "sync directory"]


def test_new_files_get_the_usual_permissions_not_private_ones(tmp_path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "decoder.safetensors", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "decoder.safetensors").stat().st_mode) == 0o644


def test_a_write_into_a_removed_folder_fails_rather_than_bringing_it_back(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "deleted-style" / "thumbnail.jpg", b"x")
    assert not (tmp_path / "deleted-style").exists()


def test_concurrent_writers_of_one_file_never_collide(tmp_path) -> None:
    """Each writer has its own temporary file (a fixed ``.tmp`` name made one writer rename the other's)."""
    path = tmp_path / "preview.png"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for _ in range(50):
                atomic_write(path, bytes([n]) * 1000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_bytes() in {bytes([n]) * 1000 for n in range(4)}
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]


def test_a_directory_is_installed_whole_or_not_at_all(tmp_path) -> None:
    with atomic_directory(tmp_path / "style") as staging:
        (staging / "image").write_bytes(b"png")
        (staging / "meta.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "style").iterdir()) == ["image", "meta.json"]
    with pytest.raises(ValueError), atomic_directory(tmp_path / "model") as staging:
        (staging / "decoder.safetensors").write_bytes(b"x")
        raise ValueError("trained against another encoder")
    assert [p.name for p in tmp_path.iterdir()] == ["style"]
