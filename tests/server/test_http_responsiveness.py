"""The event loop keeps answering while the HTTP port is abused: a gRPC health check answers within a second of its
idle latency (measured first, in the same test, so a loaded machine does not fail it) while unauthenticated clients
send the largest bodies the limits allow, and while 1000 idle connections are open."""

from __future__ import annotations

import base64
import resource
import socket
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.config import Config
from tests.helpers import free_port, http_request, raw_http, wait_for

# The one timing bound: a health check answers within this many seconds more than it does on the idle server.
BOUND = 1.0
IDLE_CONNECTIONS = 1000


def max_body(config: Config) -> int:
    """The largest body the gateway reads (base64 in JSON is 4/3 of the message limit, plus room)."""
    return config.max_message_bytes * 4 // 3 + 1024 * 1024


def check_latency(channel: grpc.Channel) -> float:
    started = time.perf_counter()
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.perf_counter() - started


def idle_latency(channel: grpc.Channel) -> float:
    """The worst of 20 checks on the idle server: what this machine, with its load right now, takes anyway."""
    check_latency(channel)  # the channel connects
    return max(check_latency(channel) for _ in range(20))


def latencies_while(channel: grpc.Channel, busy: Callable[[], bool]) -> list[float]:
    """Health-check latencies, one after another, for as long as ``busy()``."""
    seen = []
    while busy():
        seen.append(check_latency(channel))
    return seen


def largest_bodies(config: Config) -> dict[str, tuple[str, dict[str, str], bytes]]:
    """For each way a body can cost the parser, one at the size limit: (path, headers, body). The last is the largest
    a caller may send: an image of the message limit, parsed, decoded from base64 and sent on as an RPC."""
    limit = max_body(config)
    json_type = {"Content-Type": "application/json"}
    boundary = "b0undary"
    form_type = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="alpha"\r\n\r\n1\r\n'.encode()
    image = base64.b64encode(bytes(config.max_message_bytes - 4096)).decode()
    return {
        "ten million {}": ("/v1/stylize", json_type, b'{"styles": [' + b"{}," * (limit // 3 - 8) + b"{}]}"),
        "nested arrays": ("/v1/stylize", json_type, b"[" * (limit // 2) + b"]" * (limit // 2)),
        "tiny parts": ("/v1/stylize:form", form_type, part * (limit // len(part))),
        "a preamble of empty lines": ("/v1/stylize:form", form_type, b"\r\n" * (limit // 2)),
        "urlencoded fields": ("/v1/stylize:form", {"Content-Type": "application/x-www-form-urlencoded"},
                              b"a=1&" * (limit // 4)),
        "one image at the message limit": ("/v1/stylize", json_type,
                                           f'{{"content": "{image}", "styles": [{{"image": "AAAA"}}]}}'.encode()),
    }


def send(port: int, request: bytes) -> int:
    """The reply's status; 0 when the server closed the connection before its reply could be read (it may stop
    reading a body it refused, which resets the connection under a client still sending)."""
    try:
        return raw_http(port, request, timeout=120).status
    except (ConnectionError, OSError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("with_tokens", [True, False], ids=["tokens", "no tokens"])
def test_health_answers_while_the_largest_bodies_arrive(start_server, tmp_path: Path, with_tokens: bool) -> None:
    """With a tokens file they are refused from their headers; without one every caller is unauthenticated, and the
    bodies are read and parsed within their bounds, off the event loop."""
    tokens = tmp_path / "tokens"
    tokens.write_text("secret\n")
    server = start_server(http_port=free_port(), auth_tokens_file=str(tokens) if with_tokens else "")
    channel = server.channel()
    idle = idle_latency(channel)
    bodies = largest_bodies(server.config)
    assert all(len(body) <= max_body(server.config) for _, _, body in bodies.values())
    # Built before the clock starts: a 46 MB concatenation holds the GIL that the in-process server needs too.
    requests = {name: http_request("POST", *body) for name, body in bodies.items()}
    with ThreadPoolExecutor(len(requests)) as pool:
        replies = {name: pool.submit(send, server.server.http_port, request) for name, request in requests.items()}
        seen = latencies_while(channel, lambda: not all(reply.done() for reply in replies.values()))
    statuses = {name: reply.result() for name, reply in replies.items()}
    print(f"health check: idle worst {idle * 1000:.0f} ms; while {len(bodies)} bodies of up to "
          f"{max_body(server.config) / 1e6:.0f} MB arrived: worst {max(seen) * 1000:.0f} ms, median "
          f"{statistics.median(seen) * 1000:.0f} ms of {len(seen)}")  # shown with pytest -s
    refused = {401} if with_tokens else {400}
    assert all(status in refused | {0} for status in statuses.values()), statuses
    assert sum(status in refused for status in statuses.values()) >= len(statuses) // 2, statuses
    assert len(seen) >= 3 and max(seen) < idle + BOUND, (f"idle {idle:.3f} s, under load: worst {max(seen):.3f} s, "
                                                         f"median {statistics.median(seen):.3f} s of {len(seen)}")


def descriptors(needed: int) -> None:
    """Raises this process's soft descriptor limit to ``needed`` (both ends of every connection live here)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors; the hard limit here is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.slow
def test_health_answers_with_1000_idle_connections_open(start_server) -> None:
    descriptors(2 * IDLE_CONNECTIONS + 600)
    server = start_server(http_port=free_port(), http_max_connections=IDLE_CONNECTIONS + 10)
    port, channel = server.server.http_port, server.channel()
    idle = idle_latency(channel)
    held = []
    try:
        for i in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            if i % 2:
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")  # half of them stop mid-header
            held.append(sock)
        wait_for(lambda: server.metric("styletransfer_http_connections") == IDLE_CONNECTIONS, timeout=60)
        seen = [check_latency(channel) for _ in range(20)]
        print(f"health check: idle worst {idle * 1000:.0f} ms; with {len(held)} idle connections open: worst "
              f"{max(seen) * 1000:.0f} ms")  # shown with pytest -s
        assert max(seen) < idle + BOUND, f"idle {idle:.3f} s, with {len(held)} connections: worst {max(seen):.3f} s"
        assert raw_http(port, http_request("GET", "/v1/models"), timeout=30).status == 200
    finally:
        for sock in held:
            sock.close()
