"""Registered (preset) styles, persisted in ``<data-dir>/styles/<id>/`` so they survive restarts.

Each style keeps its original image bytes (CORAL colour preservation needs the image, and another model needs to
encode it), its metadata, and its code per model that made one (``code-<producer>.safetensors``: AdaIN's relu4_1
statistics, a Magenta style vector...).
The id is derived from the image bytes and the style size, so registering the same style twice is a no-op.
Writes are atomic (temp file + rename) so a crash never leaves a half-written style.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from model.errors import InvalidImageError
from model.family import StyleCode
from model.files import atomic_directory, atomic_write
from model.images import decode_image, encode_image
from server.errors import DataLoss, InvalidArgument, NotFound

__all__ = ["StyleRecord", "StyleStore", "style_id_for"]

IMAGE_FILE = "image"
META_FILE = "meta.json"
THUMBNAIL_FILE = "thumbnail.jpg"
THUMBNAIL_SIZE = 160  # longer side in pixels: a gallery tile


@dataclass(frozen=True)
class StyleRecord:
    style_id: str
    display_name: str
    width: int
    height: int
    style_size: int | None  # None: registered without one, each model encodes it at its own default
    create_time: float
    size_bytes: int


def style_id_for(image: bytes, style_size: int | None) -> str:
    digest = hashlib.sha256(image)
    digest.update(f":{'default' if style_size is None else style_size}".encode())
    return digest.hexdigest()[:32]


class StyleStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _dir(self, style_id: str) -> Path:
        if len(style_id) != 32 or not all(c in "0123456789abcdef" for c in style_id):
            raise NotFound(f"style {style_id!r} not found")
        return self._root / style_id

    def put(self, image: bytes, record: StyleRecord, code: StyleCode | None) -> tuple[StyleRecord, bool]:
        """Stores a new style; returns (record, created). An existing id returns the stored record unchanged."""
        final = self._dir(record.style_id)
        with self._lock:
            if final.is_dir():
                try:
                    return self.get(record.style_id), False
                except DataLoss:  # a damaged style is replaced by the new registration
                    shutil.rmtree(self._move_aside(final), ignore_errors=True)
            with atomic_directory(final) as staging:
                (staging / IMAGE_FILE).write_bytes(image)
                if code is not None:
                    (staging / self._code_name(code.producer)).write_bytes(code.to_bytes())
                (staging / META_FILE).write_text(json.dumps(asdict(record)))
        return record, True

    def get(self, style_id: str) -> StyleRecord:
        folder = self._dir(style_id)
        try:
            record = StyleRecord(**json.loads((folder / META_FILE).read_text()))
        except FileNotFoundError:
            raise self._missing(style_id, folder) from None
        except (ValueError, TypeError):  # unparsable JSON, or fields that are not a StyleRecord's
            raise _damaged(style_id) from None
        if not (folder / IMAGE_FILE).is_file():  # a record without its image cannot be used (or re-encoded)
            raise _damaged(style_id)
        return record

    def image(self, style_id: str) -> bytes:
        folder = self._dir(style_id)
        try:
            return (folder / IMAGE_FILE).read_bytes()
        except FileNotFoundError:
            raise self._missing(style_id, folder) from None

    @staticmethod
    def _missing(style_id: str, folder: Path) -> Exception:
        """A file of a style is absent: the style does not exist, or (its folder is there) it is damaged."""
        return _damaged(style_id) if folder.is_dir() else NotFound(f"style {style_id!r} not found")

    def _move_aside(self, folder: Path) -> Path:
        """Moves a style folder aside atomically (it disappears at once); returns where, for the caller to remove."""
        trash = self._root / f".deleted-{folder.name}-{time.monotonic_ns()}"
        os.replace(folder, trash)
        return trash

    def thumbnail(self, style_id: str) -> bytes:
        """A small JPEG of the style, made on first use and kept beside the image (blocking: call in a thread)."""
        path = self._dir(style_id) / THUMBNAIL_FILE
        if path.is_file():
            return path.read_bytes()
        try:
            image = decode_image(self.image(style_id), field="image", max_pixels=2**31)  # checked at registration
        except (InvalidImageError, DataLoss, NotFound):
            return b""  # a damaged (or just deleted) style has no thumbnail; listings must not fail for it
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        data, _ = encode_image(image, "jpeg", quality=80)
        if path.parent.is_dir():
            atomic_write(path, data)
        return data

    @staticmethod
    def _code_name(producer: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in producer)
        return f"code-{safe}.safetensors"

    def code(self, style_id: str, producer: str) -> StyleCode | None:
        path = self._dir(style_id) / self._code_name(producer)
        return StyleCode.from_bytes(path.read_bytes()) if path.is_file() else None

    def save_code(self, style_id: str, code: StyleCode) -> None:
        folder = self._dir(style_id)
        if folder.is_dir():
            atomic_write(folder / self._code_name(code.producer), code.to_bytes())

    def delete(self, style_id: str) -> None:
        folder = self._dir(style_id)
        with self._lock:
            if not folder.is_dir():  # a damaged style (metadata lost) can be deleted too
                raise NotFound(f"style {style_id!r} not found")
            trash = self._move_aside(folder)
        shutil.rmtree(trash, ignore_errors=True)  # outside the lock: the style is already gone for everyone

    def list(self, page_size: int, page_token: str) -> tuple[list[StyleRecord], str]:
        """Oldest first; the token is the (create_time, id) of the last style returned."""
        records = []
        for folder in self._root.iterdir():
            if not folder.name.startswith(".") and (folder / META_FILE).is_file():
                try:
                    records.append(self.get(folder.name))
                except (NotFound, DataLoss):
                    continue  # damaged or just deleted: a listing never fails for one style
        records.sort(key=lambda r: (r.create_time, r.style_id))
        if page_token:
            after = _decode_token(page_token)
            records = [r for r in records if (r.create_time, r.style_id) > after]
        page = records[:page_size]
        more = len(records) > page_size
        return page, _encode_token(page[-1]) if more else ""


def _damaged(style_id: str) -> DataLoss:
    return DataLoss(f"style {style_id} is damaged (its stored files are missing or unreadable); delete it or "
                    "register its image again")


def _encode_token(record: StyleRecord) -> str:
    return base64.urlsafe_b64encode(json.dumps([record.create_time, record.style_id]).encode()).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        created, style_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created), str(style_id)
    except (ValueError, TypeError):
        raise InvalidArgument("page_token is not a token this server issued") from None
