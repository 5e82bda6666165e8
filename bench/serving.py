"""Serving: a real server subprocess on 127.0.0.1, driven through gRPC by bounded client threads."""

from __future__ import annotations

import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc

__all__ = ["LoadResult", "ServerProcess", "free_port", "peak_rss_bytes", "png_bytes", "reset_peak_rss", "run_load",
           "server"]

MAX_MESSAGE = 64 * 1024 * 1024


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    startup_seconds: float
    channel: grpc.Channel
    stub: pb_grpc.StyleTransferStub


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_compute_ms: float  # median compute time the server reported

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@contextmanager
def server(*extra_args: str, timeout: float = 120.0) -> Iterator[ServerProcess]:
    """Starts ``python -m server --random-weights`` on a free port; yields once health says SERVING."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        args = [sys.executable, "-m", "server", "--random-weights", "--host", "127.0.0.1", "--port", str(port),
                "--metrics-port", "0", "--data-dir", data_dir, "--max-message-bytes", str(MAX_MESSAGE), *extra_args]
        start = time.perf_counter()
        # The log goes to a file: a pipe nobody reads fills up and blocks the server's event loop mid-run.
        log = open(Path(data_dir) / "server.log", "w+")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, text=True)
        options = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
        try:
            _wait_serving(channel, proc, log, start + timeout)
            yield ServerProcess(proc, port, time.perf_counter() - start, channel, pb_grpc.StyleTransferStub(channel))
        finally:
            channel.close()
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def _wait_serving(channel: grpc.Channel, proc: subprocess.Popen, log: IO[str], deadline: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.05)
    raise TimeoutError("server did not become SERVING in time")


def run_load(stub: pb_grpc.StyleTransferStub, request: pb.StylizeRequest, concurrency: int, total: int) -> LoadResult:
    """``total`` Stylize calls spread over ``concurrency`` threads, each call timed end to end."""
    latencies: list[float] = []
    computes: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            start = time.perf_counter()
            reply = stub.Stylize(request, timeout=300)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                computes.append(reply.timing.compute_ms)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    compute_ms = statistics.median(computes)
    return LoadResult(concurrency, len(ms), seconds, _pct(ms, 50), _pct(ms, 95), _pct(ms, 99), compute_ms)


def _pct(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM) from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found")


def reset_peak_rss(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so the next peak is one request's."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def current_rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
