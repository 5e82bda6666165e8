"""The server's one LRU cache, and the key of the codes of inline style images that repeat.

Mobile and game backends often send the same few style images inline on every call. Encoding a 512 px style costs
as much as encoding the content, so the codes (AdaIN: 2 x 512 floats, 4 KiB) are kept, keyed by the SHA-256 of the
image bytes, the style size and the code producer (the model's code identity), bounded by entry count. The same
:class:`LRUCache`, bounded by bytes, holds the response cache's entries (:mod:`server.response_cache`).
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
    """A thread-safe least-recently-used map holding at most ``capacity`` (0 disables caching).

    Each value weighs ``weigh(value)`` (1 by default: the capacity is an entry count; the response cache weighs its
    entries in bytes). A value heavier than the whole capacity is not kept. ``on_size(weight, entries)`` hears of
    every change."""

    def __init__(self, capacity: int, *, weigh: Callable[[V], int] | None = None,
                 on_hit: Callable[[], None] | None = None, on_miss: Callable[[], None] | None = None,
                 on_size: Callable[[int, int], None] | None = None) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._weigh = weigh or (lambda _: 1)
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()
        self._on_hit, self._on_miss, self._on_size = on_hit, on_miss, on_size

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def weight(self) -> int:
        """What the entries weigh together (their count, unless ``weigh`` says otherwise)."""
        with self._lock:
            return self._weight

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
        callback = self._on_hit if item is not None else self._on_miss
        if callback is not None:
            callback()
        return item[0] if item is not None else None

    def put(self, key: Hashable, value: V) -> None:
        weight = self._weigh(value)
        if weight > self.capacity:
            return
        with self._lock:
            self._pop(key)
            self._items[key] = (value, weight)
            self._weight += weight
            while self._weight > self.capacity:
                self._pop(next(iter(self._items)))
            self._report()

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """Returns the cached value or computes, stores and returns it (concurrent misses may compute twice)."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._pop(key)
            self._report()

    def discard_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Drops every entry whose key matches (e.g. a deleted style's codes from every model)."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                self._pop(key)
            self._report()

    def _pop(self, key: Hashable) -> None:  # with the lock held
        item = self._items.pop(key, None)
        if item is not None:
            self._weight -= item[1]

    def _report(self) -> None:  # with the lock held
        if self._on_size is not None:
            self._on_size(self._weight, len(self._items))
