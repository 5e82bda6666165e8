"""The LRU cache of inline style statistics."""

from __future__ import annotations

import threading

import pytest

from server.style_cache import LRUCache, inline_style_key


def test_evicts_least_recently_used() -> None:
    cache: LRUCache[int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_counts_hits_and_misses() -> None:
    hits, misses = [], []
    cache: LRUCache[int] = LRUCache(4, on_hit=lambda: hits.append(1), on_miss=lambda: misses.append(1))
    computed = []
    for _ in range(3):
        cache.get_or_compute("k", lambda: computed.append(1) or 42)
    assert computed == [1]
    assert (len(hits), len(misses)) == (2, 1)


def test_zero_entries_disables_caching() -> None:
    cache: LRUCache[int] = LRUCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError):
        LRUCache(-1)


def test_key_depends_on_bytes_size_and_encoder() -> None:
    base = inline_style_key(b"png", 512, "enc")
    assert base == inline_style_key(b"png", 512, "enc")
    assert len({base, inline_style_key(b"jpg", 512, "enc"), inline_style_key(b"png", 256, "enc"),
                inline_style_key(b"png", 512, "other")}) == 4


def test_bounded_under_concurrent_writers() -> None:
    cache: LRUCache[int] = LRUCache(16)

    def writer(offset: int) -> None:
        for i in range(500):
            cache.put((offset, i), i)
            cache.get((offset, i // 2))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 16
