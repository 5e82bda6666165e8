"""The response cache's gain: end-to-end latency of a Stylize call it answers against one it cannot.

A server process (``python -m server``, Magenta the default model) gets, alternately, a request it has seen (a hit)
and one it has not (a miss: a new content each time, with the same registered style), both at ``size`` px through
gRPC from this process. Alternating keeps a change of the machine's speed during the run from favouring either side.
Run: ``python -m bench --sections response_cache``.
"""

from __future__ import annotations

import statistics
import time

from bench.compute import test_image
from bench.serving import png_bytes, server
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["measure_response_cache", "response_cache_table"]


def measure_response_cache(size: int = 256, repeats: int = 20) -> dict:
    with server("--default-model", "magenta") as srv:
        style = srv.stub.PutStyle(pb.PutStyleRequest(image=png_bytes(test_image(256, 1))), timeout=120)

        def request(seed: int) -> pb.StylizeRequest:
            return pb.StylizeRequest(content=png_bytes(test_image(size, seed)),
                                     styles=[pb.StyleInput(style_id=style.style_id)])

        seen = request(2)
        srv.stub.Stylize(seen, timeout=300)  # computed once: every later call of it is a hit
        hits, misses, served = [], [], []
        for i in range(repeats):
            for kind, req in (("hit", seen), ("miss", request(100 + i))):
                start = time.perf_counter()
                reply = srv.stub.Stylize(req, timeout=300)
                (hits if kind == "hit" else misses).append(time.perf_counter() - start)
                served.append(reply.cached == (kind == "hit"))
    return {"size": size, "repeats": repeats, "hit_ms": 1000 * statistics.median(hits),
            "miss_ms": 1000 * statistics.median(misses), "hit_p95_ms": 1000 * sorted(hits)[int(0.95 * repeats)],
            "miss_p95_ms": 1000 * sorted(misses)[int(0.95 * repeats)], "as_expected": all(served)}


def response_cache_table(result: dict) -> list[str]:
    return ["| Stylize at {size} px, registered style, Magenta | median ms | p95 ms |".format(**result),
            "|---|---|---|",
            f"| computed (a new content each call) | {result['miss_ms']:.1f} | {result['miss_p95_ms']:.1f} |",
            f"| answered from the response cache | {result['hit_ms']:.1f} | {result['hit_p95_ms']:.1f} |",
            f"| ratio | {result['miss_ms'] / result['hit_ms']:.0f}x | |"]
