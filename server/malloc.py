"""Keeps freed tensor memory in the process for the next forward pass instead of handing it back to the kernel.

By default glibc serves every allocation above a threshold (at most 32 MiB) with a fresh ``mmap`` and unmaps it on
free, and threads other than the main one allocate from arenas whose heaps cannot grow past 64 MiB, so their large
blocks are mmapped whatever the threshold. A 512 px AdaIN pass allocates a dozen activations of 16 to 64 MiB; each
came back as fresh pages that the kernel faulted in and zeroed, about 126,000 page faults per pass, which took a
fifth of the pass's time on a 2-core EPYC (0.65 s with them, 0.52 s without). PyTorch's CUDA allocator caches
blocks for the same reason; on CPU it relies on malloc, which is tuned here:

- one arena (``M_ARENA_MAX``), so inference threads allocate from the main heap, which has no size cap;
- an mmap threshold of ``MAX_MMAP_THRESHOLD``, so activations come from that heap and are reused;
- a trim threshold: freed memory at the top of the heap goes back to the kernel only when more than this much is
  free, which bounds what an idle process keeps after a huge request.

Only glibc has these knobs; elsewhere :func:`retain_freed_memory` changes nothing and says so. It is called by
``python -m server`` before torch is imported (glibc fixes its arena limit when a second thread first allocates),
and by the benchmark, so its in-process numbers are the server's. This module imports neither torch nor gRPC.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from dataclasses import dataclass

__all__ = ["MallocTuning", "retain_freed_memory"]

# mallopt parameters from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

# Blocks up to 128 MiB come from the heap and are reused: every activation at 512 px (64 MiB at most) and the
# 128-channel ones at 1024 px; the slack covers malloc's alignment padding. Larger blocks (64-channel activations at
# 1024 px, the tiled path's full-image buffers) keep their own mappings: reusing those too took a 16 MP request's
# peak RSS from 4.8 to 6.6 GB (freed holes the next, differently sized, blocks do not fit) for 7% at 1024 px.
MAX_MMAP_THRESHOLD = 129 << 20
FALLBACK_MMAP_THRESHOLD = 32 << 20  # the most older glibc releases accept


@dataclass(frozen=True)
class MallocTuning:
    applied: bool
    mmap_threshold: int = 0
    trim_threshold: int = 0
    reason: str = ""


def _libc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def retain_freed_memory(trim_threshold: int = 1 << 30) -> MallocTuning:
    """Tunes glibc malloc for large, repeated tensor allocations; call once at process start, before the threads."""
    if trim_threshold <= 0:
        return MallocTuning(False, reason="disabled")
    libc = _libc()
    if libc is None:
        return MallocTuning(False, reason=f"not glibc ({platform.libc_ver()[0] or 'unknown libc'})")
    mmap_threshold = MAX_MMAP_THRESHOLD
    if not libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold):
        mmap_threshold = FALLBACK_MMAP_THRESHOLD
        if not libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold):
            return MallocTuning(False, reason="mallopt(M_MMAP_THRESHOLD) refused")
    trim_threshold = min(trim_threshold, 2**31 - 1)  # mallopt takes an int
    libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    libc.mallopt(M_ARENA_MAX, 1)
    return MallocTuning(True, mmap_threshold, trim_threshold)

