"""The malloc tuning must let a worker thread reuse freed 64 MiB activations instead of faulting in fresh pages.

Each case runs in its own interpreter: the tuning is process-wide, cannot be undone, and must precede torch's import.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from server.malloc import retain_freed_memory

# On a non-main thread (as the server's inference worker), each round makes and frees two 64 MiB results, as a
# 64-channel layer at 512 px does; the page faults of the last rounds are reported (the heap settles in the first).
PROBE = """
import json, resource, sys, threading
from server.malloc import retain_freed_memory
tuning = retain_freed_memory() if sys.argv[1] == "tuned" else None
import torch
faults = []
def work():
    x = torch.ones(4096, 4096)
    for _ in range(12):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        y = torch.mul(x, 2.0).relu_()
        z = torch.add(y, x)
        del y, z
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps({"faults": faults[-4:], "applied": bool(tuning and tuning.applied)}))
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the tuning is glibc's")


def _probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_untuned_malloc_faults_in_every_large_block_again() -> None:
    # The baseline the tuning exists for: 128 MiB of fresh pages per round (fewer faults with huge pages).
    assert min(_probe("plain")["faults"]) > 1000


@glibc_only
def test_tuned_malloc_reuses_freed_blocks_on_worker_threads() -> None:
    result = _probe("tuned")
    assert result["applied"]
    assert max(result["faults"]) < 100


def test_zero_leaves_malloc_alone() -> None:
    tuning = retain_freed_memory(0)
    assert not tuning.applied and tuning.reason == "disabled"
