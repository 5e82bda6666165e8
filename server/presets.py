"""Built-in presets: the styles served models carry in their weights, listed and used beside registered styles.

A model declares its presets (``StyleModel.presets``); this catalogue gathers those of the server's built-in models
by id. Presets are read-only (DeleteStyle answers FAILED_PRECONDITION), have no image, and belong to their model:
a Stylize call that names presets runs on their model, and naming another model is INVALID_ARGUMENT
(:func:`model_for`). Their thumbnails are the model's own renders of a bundled photo (:mod:`model.previews`),
made once per process (in the background at start-up, so listings do not wait for them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from model.family import Preset, StyleModel
from model.images import encode_image
from model.previews import preview
from server.costs import shown
from server.errors import FailedPrecondition, InvalidArgument
from server.styles import THUMBNAIL_SIZE
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["PRESETS_TOKEN", "PresetCatalogue", "PresetEntry", "model_for"]

log = logging.getLogger(__name__)
#: ListStyles page tokens that continue the presets (``presets:<n>``); the style store's tokens never start so.
PRESETS_TOKEN = "presets:"


@dataclass(frozen=True)
class PresetEntry:
    model: StyleModel
    preset: Preset


class PresetCatalogue:
    """The presets of ``models`` in their order, by id; thumbnails rendered on first use. Thread-safe."""

    def __init__(self, models: Sequence[StyleModel]) -> None:
        self._entries: dict[str, PresetEntry] = {}
        for model in models:
            for preset in model.presets:
                if preset.style_id in self._entries:
                    raise ValueError(f"preset id {preset.style_id!r} is declared by two models")
                self._entries[preset.style_id] = PresetEntry(model, preset)
        self._thumbnails: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[PresetEntry]:
        return list(self._entries.values())

    def get(self, style_id: str) -> PresetEntry | None:
        return self._entries.get(style_id)

    def refuse_delete(self, style_id: str) -> None:
        """FAILED_PRECONDITION for a preset (they come with the model's weights); nothing for other ids."""
        entry = self._entries.get(style_id)
        if entry is not None:
            raise FailedPrecondition(f"style {style_id!r} is a built-in preset of model {entry.model.info.name!r} "
                                     "(part of its weights); presets cannot be deleted")

    def thumbnail(self, style_id: str) -> bytes:
        """The preset's thumbnail JPEG, rendered on first use (blocking: call in a thread)."""
        with self._lock:  # one render per preset, however many listings ask at once
            if style_id not in self._thumbnails:
                entry = self._entries[style_id]
                image = preview(entry.model, entry.preset, THUMBNAIL_SIZE)
                self._thumbnails[style_id] = encode_image(image, "jpeg", quality=80)[0]
            return self._thumbnails[style_id]

    def warm(self, stop: threading.Event) -> None:
        """Makes every thumbnail (at start-up, in the background, so the first listing is quick), until ``stop`` is
        set: the server stops it before exiting, since a thread killed inside ONNX Runtime aborts the process."""
        for style_id in self._entries:
            if stop.is_set():
                return
            try:
                self.thumbnail(style_id)
            except Exception:  # a listing renders it again and reports the failure there
                log.exception("preset %s: thumbnail not rendered", style_id)

    def message(self, style_id: str, thumbnail: bytes = b"") -> pb.Style:
        entry = self._entries[style_id]
        return pb.Style(style_id=style_id, display_name=entry.preset.display_name, thumbnail=thumbnail,
                        builtin=True, model=entry.model.info.name)


def model_for(presets: PresetCatalogue, request: pb.StylizeRequest | pb.StreamSettings,
              named: Callable[[str], StyleModel]) -> StyleModel:
    """The model a Stylize call (or a stream's settings) runs on: its presets' model, or ``named(request.model)``
    when it names none.

    Presets of two models cannot be combined, and a request that names a model must name its presets' model
    (INVALID_ARGUMENT either way: only that model can render them)."""
    owner, first = None, -1
    for i, style in enumerate(request.styles):
        entry = presets.get(style.style_id) if style.WhichOneof("source") == "style_id" else None
        if entry is None:
            continue
        if owner is not None and entry.model is not owner:
            raise InvalidArgument(f"styles[{i}].style_id: {shown(style.style_id)} is a preset of model "
                                  f"{entry.model.info.name!r} and styles[{first}] one of {owner.info.name!r}; "
                                  "presets of different models cannot be combined")
        if owner is None:
            owner, first = entry.model, i
    if owner is None:
        return named(request.model)
    if request.model and named(request.model) is not owner:
        raise InvalidArgument(f"styles[{first}].style_id: {shown(request.styles[first].style_id)} is a preset of "
                              f"model {owner.info.name!r}, which alone renders it; the request names model "
                              f"{shown(request.model)} (leave model empty, or name {owner.info.name!r})")
    return owner
