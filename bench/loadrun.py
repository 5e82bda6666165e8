"""A load run with the server's own metrics scraped once a second, plotted as the dashboard's main panels.

``python -m bench.loadrun`` starts a server (random weights), drives Stylize at rising concurrency and then past the
wait queue's capacity, and writes ``deploy/grafana/load-run.png``: what an operator sees on the Grafana dashboard,
drawn from real scraped series where no Grafana is at hand.
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from bench.compute import test_image
from bench.serving import free_port, png_bytes, server
from styletransfer.v1 import style_transfer_pb2 as pb

OUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "load-run.png"
# (seconds, concurrent clients): a quiet start, the avatar workload at 1, 4 and 16 clients, then a burst of 32
# clients against a wait queue of 8, which must answer RESOURCE_EXHAUSTED instead of queueing without bound.
PHASES = ((5, 0), (15, 1), (15, 4), (15, 16), (15, 32), (10, 0))
MAX_QUEUE = 8


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def scrape(port: int) -> dict[str, float]:
    """The series the plot needs, summed over labels: request counts by code, queue, latency buckets, memory."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    values: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "styletransfer_requests_total" and s.labels.get("method") == "Stylize":
                values[f"code:{s.labels['code']}"] += s.value
            elif s.name in ("styletransfer_queued_requests", "styletransfer_inflight_requests",
                            "process_resident_memory_bytes", "styletransfer_queue_capacity"):
                values[s.name] = s.value
            elif (s.name == "styletransfer_request_duration_seconds_bucket" and s.labels.get("method") == "Stylize"
                  and s.labels.get("code") == "OK"):  # latency of answered calls, not of instant rejections
                values[f"le:{s.labels['le']}"] += s.value
    return values


def quantile(buckets: dict[float, float], q: float) -> float:
    """histogram_quantile over the increase of cumulative buckets (linear within a bucket, as Prometheus does)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank, previous_bound, previous_count = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / max(count - previous_count,
                                                                                            1e-9)
        previous_bound, previous_count = bound, count
    return previous_bound


def drive(stub, request: pb.StylizeRequest, clients: int, stop: threading.Event) -> list[threading.Thread]:
    def client() -> None:
        while not stop.is_set():
            try:
                stub.Stylize(request, timeout=60)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    time.sleep(0.05)  # a well-behaved client backs off before retrying

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads


def run(size: int) -> Samples:
    metrics_port = free_port()
    samples = Samples()
    with server("--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1", "--max-queue",
                str(MAX_QUEUE)) as srv:
        style = srv.stub.PutStyle(pb.PutStyleRequest(image=png_bytes(test_image(256, 2)), style_size=256),
                                  timeout=120)
        request = pb.StylizeRequest(content=png_bytes(test_image(size, 1)),  # computed, never a cache hit
                                    styles=[pb.StyleInput(style_id=style.style_id)], skip_response_cache=True)
        start = time.monotonic()
        for seconds, clients in PHASES:
            stop = threading.Event()
            threads = drive(srv.stub, request, clients, stop)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                samples.times.append(time.monotonic() - start)
                for name, value in scrape(metrics_port).items():
                    samples.series[name].append(value)
                time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join(120)
    return samples


def plot(samples: Samples, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, s = samples.times, samples.series
    n = len(t)

    def pad(name: str) -> list[float]:
        values = s.get(name, [])
        return [0.0] * (n - len(values)) + values  # a series appears at its first sample

    def rate(name: str, window: int = 5) -> list[float]:
        v = pad(name)
        return [(v[i] - v[max(0, i - window)]) / max(t[i] - t[max(0, i - window)], 1e-9) for i in range(n)]

    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0][0]
    for code in sorted(k for k in s if k.startswith("code:")):
        ax.plot(t, rate(code), label=code[5:])
    ax.set(title="Stylize requests/s by code (5 s rate)", xlabel="s")
    ax.legend()
    ax = axes[0][1]
    bounds = {float(k[3:]): k for k in s if k.startswith("le:")}
    p50, p95 = [], []
    for i in range(n):
        window = {b: pad(k)[i] - pad(k)[max(0, i - 5)] for b, k in bounds.items()}
        p50.append(quantile(window, 0.5))
        p95.append(quantile(window, 0.95))
    ax.plot(t, p50, label="p50")
    ax.plot(t, p95, label="p95")
    ax.set(title="Stylize latency (s, from the histogram)", xlabel="s")
    ax.legend()
    ax = axes[1][0]
    ax.plot(t, pad("styletransfer_queued_requests"), label="queued")
    ax.plot(t, pad("styletransfer_inflight_requests"), label="running")
    ax.plot(t, pad("styletransfer_queue_capacity"), "--", label="capacity")
    ax.set(title="Queue depth", xlabel="s")
    ax.legend()
    ax = axes[1][1]
    ax.plot(t, [v / 2**30 for v in pad("process_resident_memory_bytes")])
    ax.set(title="Process memory (GiB RSS)", xlabel="s")
    clients = ", ".join(f"{c} clients {d} s" for d, c in PHASES)
    fig.suptitle(f"styletransfer load run, scraped /metrics every second ({clients})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="content side in px (the avatar workload: 256)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    plot(run(args.size), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
