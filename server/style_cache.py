"""An LRU cache of style codes for inline style images that repeat.

Mobile and game backends often send the same few style images inline on every call. Encoding a 512 px style costs
as much as encoding the content, so the codes (AdaIN: 2 x 512 floats, 4 KiB) are kept, keyed by the SHA-256 of the
image bytes, the style size and the code producer (the model's code identity). Bounded by entry count; thread-safe.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRUCache", "inline_style_key"]

V = TypeVar("V")


def inline_style_key(image_bytes: bytes, style_size: int, producer: str) -> tuple[str, int, str]:
    """The cache key of an inline style: what determines its code (the producer is the model's code identity)."""
    return hashlib.sha256(image_bytes).hexdigest(), style_size, producer


class LRUCache(Generic[V]):
    """A thread-safe least-recently-used map with at most ``max_entries`` entries (0 disables caching)."""

    def __init__(self, max_entries: int, *, on_hit: Callable[[], None] | None = None,
                 on_miss: Callable[[], None] | None = None) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._on_hit = on_hit
        self._on_miss = on_miss

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
        callback = self._on_hit if value is not None else self._on_miss
        if callback is not None:
            callback()
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """Returns the cached value or computes, stores and returns it (concurrent misses may compute twice)."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def discard_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Drops every entry whose key matches (e.g. a deleted style's codes from every model)."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]
