"""The response cache: identical Stylize requests answered with the bytes an earlier one computed.

Avatar and game backends send the same picture with the same style again and again. A request's output is decided
by its content bytes, its styles (each image's bytes, registered style id or preset id, weight and mask bytes), the
options the model runs with (after the model's defaults), the output encoding and the model with the hashes of its
weights: :func:`response_key` hashes exactly these, so two requests share an entry only if the model would compute
the same image for both (the models are deterministic on a device; tests/server/test_response_cache.py checks each
family). A registered style's id is derived from its image and style size, so it stands for its content.

Entries are dropped least recently used first when their bytes pass the budget (``--response-cache-mb``; 0 turns the
cache off), and at once when what they were computed from goes away: a deleted style or a deleted trained model
(:meth:`ResponseCache.discard_tagged`). A model replaced under the same name has other weight hashes, so its old
entries are never hit again. A request that sets ``skip_response_cache`` neither reads nor fills the cache.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from model.family import StyleModel, StylizeOptions
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["CachedResponse", "ResponseCache", "response_key"]

ENTRY_OVERHEAD = 512  # bytes an entry costs besides its image: key, tags, object headers (counted, so tiny images
# cannot grow the cache past its budget by their number)


@dataclass(frozen=True)
class CachedResponse:
    """What a Stylize response carries besides its timing and request id."""

    image: bytes
    mime_type: str
    width: int
    height: int
    model: str
    untrained: bool
    tags: frozenset[str]  # the registered style ids and the model name it was computed from

    @property
    def nbytes(self) -> int:
        return len(self.image) + ENTRY_OVERHEAD


def _parts(*parts: bytes | str | float | int | bool) -> bytes:
    """Parts, each length-prefixed, so that no two different sequences of parts hash alike."""
    out = bytearray()
    for part in parts:
        data = part if isinstance(part, bytes) else repr(part).encode()
        out += struct.pack("<Q", len(data)) + data
    return bytes(out)


def response_key(request: pb.StylizeRequest, model: StyleModel, options: StylizeOptions) -> bytes:
    """The SHA-256 of everything that decides a Stylize response's image (see the module docstring)."""
    info = model.info
    digest = hashlib.sha256(_parts(info.name, info.address, model.code_identity,
                                   *sorted(f"{role}={sha}" for role, sha in info.weights.items())))
    digest.update(_parts(options.alpha, options.color.value, options.content_size, options.style_size,
                         options.tile_size, request.output_format, request.quality, request.flatten_alpha))
    digest.update(_parts(hashlib.sha256(request.content).digest(), len(request.styles)))
    for style in request.styles:
        source = style.WhichOneof("source") or ""
        value = hashlib.sha256(style.image).digest() if source == "image" else style.style_id
        mask = hashlib.sha256(style.mask).digest() if style.HasField("mask") else b"-"
        digest.update(_parts(source, value, style.weight, mask))
    return digest.digest()


class ResponseCache:
    """A thread-safe LRU of responses bounded by ``max_bytes`` (0: nothing is kept). The callbacks feed metrics."""

    def __init__(self, max_bytes: int, *, on_hit: Callable[[], None] | None = None,
                 on_miss: Callable[[], None] | None = None,
                 on_size: Callable[[int, int], None] | None = None) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, CachedResponse] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._on_hit, self._on_miss, self._on_size = on_hit, on_miss, on_size

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: bytes) -> CachedResponse | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        callback = self._on_hit if entry is not None else self._on_miss
        if callback is not None:
            callback()
        return entry

    def put(self, key: bytes, entry: CachedResponse) -> None:
        """Keeps ``entry`` (an entry larger than the whole budget is not kept), dropping the least recently used."""
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= old.nbytes if old is not None else 0
            self._entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
            self._report()

    def discard_tagged(self, tags: Iterable[str]) -> None:
        """Drops every entry computed from one of ``tags`` (a deleted style's id, a deleted model's name)."""
        gone = set(tags)
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.tags & gone]:
                self._bytes -= self._entries.pop(key).nbytes
            self._report()

    def _report(self) -> None:
        if self._on_size is not None:
            self._on_size(self._bytes, len(self._entries))
