"""The HTTP port under hostile or broken clients, each case against a real server: what a request may cost before
the RPC sees it (token, origin, content type and size from the headers; fields counted before parsing), timeouts and
caps on connections and streams, and malformed requests answered with JSON errors and logged in one line."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.protobuf import json_format

from server.http import proto_json
from server.http.bodies import check_json_values
from server.http.gateway import MAX_TIMEOUT_SECONDS, parse_grpc_timeout
from server.http.rules import RequestError
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RawReply, free_port, http_request, png_bytes, raw_http, read_reply, wait_for

CONTENT = png_bytes(48, 32, seed=1)
STYLE = png_bytes(32, 32, seed=2)
JSON = {"Content-Type": "application/json"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_json_error(reply: RawReply, status: int, code: str) -> dict:
    """The gateway's error format: the code's name, a message, and the request id of the X-Request-Id header."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json"), reply.body[:300]
    error = reply.json()
    assert error["status"] == code and error["message"] and error["code"] == grpc.StatusCode[code].value[0]
    assert error["requestId"] == reply.headers["x-request-id"]
    return error


def multipart(fields: list[tuple[str, bytes, str | None]], boundary: str = "b0undary") -> tuple[dict, bytes]:
    """A multipart/form-data body of (name, value, filename) parts and its Content-Type header."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
             + (f'; filename="{filename}"\r\nContent-Type: image/png'.encode() if filename else b"")
             + b"\r\n\r\n" + value + b"\r\n" for name, value, filename in fields]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


@pytest.fixture
def http(start_server):
    return start_server(http_port=free_port())


# --- 1. nothing is read or parsed before it is known to be allowed, and parsing is bounded ----------------------

def test_the_token_is_checked_before_the_body_is_read(start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("secret\n")
    server = start_server(http_port=free_port(), auth_tokens_file=str(tokens))
    port = server.server.http_port
    # 40 MB announced, none sent: the refusal cannot wait for the body (it would wait forever).
    head = http_request("POST", "/v1/stylize", {**JSON, "Content-Length": "40000000"}, length=False)
    assert_json_error(raw_http(port, head + b'{"styles": [', timeout=30), 401, "UNAUTHENTICATED")
    with_expect = head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    reply = raw_http(port, with_expect, timeout=30)  # no "100 Continue": the client need not send the body
    assert_json_error(reply, 401, "UNAUTHENTICATED")
    allowed = with_expect.replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer secret\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(allowed)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
    assert server.metric("styletransfer_requests_total", method="Stylize", code="UNAUTHENTICATED",
                         transport="http") == 2


@pytest.mark.parametrize("body", [
    {"styles": [{}] * 100},  # the ten million {} that held the event loop for 34 s, scaled down
    {"styles": [[]] * 100},
    {"content": ["ab"] * 100},
    {"styles": [{"weight": 1}] * 40, "content": [[1, 2, 3]] * 20},
])
def test_json_values_are_counted_before_anything_is_parsed(start_server, body) -> None:
    server = start_server(http_port=free_port(), http_max_fields=64)
    reply = raw_http(server.server.http_port, http_request("POST", "/v1/stylize", JSON, json.dumps(body).encode()))
    assert "--http-max-fields" in assert_json_error(reply, 400, "INVALID_ARGUMENT")["message"]


def test_separators_inside_strings_are_not_values() -> None:
    check_json_values(json.dumps({"displayName": "[{," * 300, "image": "x"}).encode(), 64)
    check_json_values(b'{"a": "\\"[[[[", "b": [1, 2]}' * 10, 64)  # escaped quotes do not end a string
    with pytest.raises(RequestError, match="more than 64 JSON values"):
        check_json_values(b"[" * 65 + b"]" * 65, 64)
    with pytest.raises(RequestError):
        check_json_values(json.dumps([{"k": "v,"}] * 70).encode(), 64)


def test_form_fields_and_parts_are_counted(start_server) -> None:
    server = start_server(http_port=free_port(), http_max_fields=32)
    port = server.server.http_port
    headers, body = multipart([("alpha", b"0.5", None)] * 40)
    reply = raw_http(port, http_request("POST", "/v1/stylize:form", headers, body))
    assert "--http-max-fields" in assert_json_error(reply, 400, "INVALID_ARGUMENT")["message"]
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    reply = raw_http(port, http_request("POST", "/v1/stylize:form", urlencoded, b"&".join([b"alpha=0.5"] * 40)))
    assert "--http-max-fields" in assert_json_error(reply, 400, "INVALID_ARGUMENT")["message"]
    headers, body = multipart([("content", CONTENT, "c.png"), ("style", STYLE, "s.png"), ("alpha", b"0.5", None)])
    served = raw_http(port, http_request("POST", "/v1/stylize:form", headers, b"preamble\r\n" + body))
    assert served.status == 200 and served.headers["content-type"] == "image/png", served.body[:300]


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"abcd" * 7, bytes(range(256)) * 3])
def test_large_bytes_fields_convert_in_pieces_as_json_format_does(monkeypatch, data: bytes) -> None:
    """Base64 over PIECE characters is converted a piece per call (the event loop gets the GIL between them): the
    result is json_format's, for either alphabet, without padding, and with line breaks (its lenient way)."""
    monkeypatch.setattr(proto_json, "PIECE", 8)
    plain = base64.b64encode(data).decode()
    for text in (plain, base64.urlsafe_b64encode(data).decode(), plain.rstrip("="), plain[:9] + "\n" + plain[9:]):
        values = {"content": text, "styles": [{"image": text, "mask": text}, {"styleId": "x"}]}
        expected, got = pb.StylizeRequest(), pb.StylizeRequest()
        json_format.ParseDict(json.loads(json.dumps(values)), expected)
        proto_json.parse(values, got)
        assert got == expected
    reply = pb.StylizeRequest(content=data, styles=[pb.StyleInput(image=data, mask=data), pb.StyleInput(weight=2)])
    assert proto_json.dumps(reply) == json_format.MessageToJson(reply, always_print_fields_with_no_presence=True,
                                                                indent=None).encode()


# --- 5. malformed requests: a JSON 4xx with a request id, never aiohttp's plain-text 500 ------------------------

def _gzip_json() -> bytes:
    return http_request("POST", "/v1/stylize", {**JSON, "Content-Encoding": "gzip"}, b"not gzip at all")


MALFORMED = {
    "non-ASCII token": http_request("GET", "/v1/models", {"Authorization": "Bearer \u00e9"}),
    "non-ASCII token (UTF-8)": http_request("GET", "/v1/models").replace(
        b"\r\n\r\n", "\r\nAuthorization: Bearer \u00e9\r\n\r\n".encode()),
    "control character in a header": http_request("GET", "/v1/models", {"Authorization": "Bearer a\x01b"}),
    "multipart without boundary": http_request("POST", "/v1/stylize:form", {"Content-Type": "multipart/form-data"},
                                               b"--x\r\n"),
    "multipart with an empty boundary": http_request(
        "POST", "/v1/stylize:form", {"Content-Type": "multipart/form-data; boundary="},
        multipart([("alpha", b"1", None)], "x")[1]),
    "body not matching its boundary": http_request(
        "POST", "/v1/stylize:form", multipart([("alpha", b"1", None)], "other")[0],
        multipart([("alpha", b"1", None)], "b0undary")[1]),
    "truncated multipart": http_request("POST", "/v1/stylize:form", multipart([("alpha", b"1", None)])[0],
                                        multipart([("alpha", b"1", None)])[1][:-16]),
    "urlencoded charset=bogus": http_request(
        "POST", "/v1/stylize:form", {"Content-Type": "application/x-www-form-urlencoded; charset=bogus"},
        b"alpha=1"),
    "urlencoded raw \\xff": http_request(
        "POST", "/v1/stylize:form", {"Content-Type": "application/x-www-form-urlencoded"}, b"alpha=\xff"),
    "bad gzip Content-Encoding": _gzip_json(),
    "Grpc-Timeout \u00b2S": http_request("POST", "/v1/stylize", JSON, b"{}").replace(
        b"\r\n\r\n", "\r\nGrpc-Timeout: \u00b2S\r\n\r\n".encode()),
    "garbage request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "unknown Expect": http_request("POST", "/v1/stylize", {**JSON, "Expect": "magic"}, b"{}"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_a_json_error_with_a_request_id(http, caplog, name: str) -> None:
    caplog.set_level(logging.INFO)
    reply = raw_http(http.server.http_port, MALFORMED[name])
    assert 400 <= reply.status < 500
    assert_json_error(reply, reply.status, reply.json()["status"])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


def test_malformed_requests_log_one_line_without_header_values(http, caplog) -> None:
    caplog.set_level(logging.INFO)
    port = http.server.http_port
    for value in ("Bearer sekrit\x01tail", "Bearer sekrit\x7ftail", "Bearer sekrit\u00e9tail"):
        caplog.clear()
        raw_http(port, http_request("GET", "/v1/models", {"Authorization": value}))
        wait_for(lambda: any("malformed" in r.getMessage() or "Authorization" in r.getMessage()
                             for r in caplog.records))
        lines = [r for r in caplog.records if r.name.startswith(("server", "aiohttp"))]
        assert len(lines) <= 2, caplog.text  # the refusal, and at most the call's own line
        assert "sekrit" not in caplog.text and not any(r.exc_info for r in lines)


# --- 6. the promised statuses ------------------------------------------------------------------------------------

def test_a_body_over_the_size_limit_is_413(start_server) -> None:
    server = start_server(http_port=free_port(), max_message_bytes=64 * 1024)  # bodies up to about 1.1 MB
    port = server.server.http_port
    big = json.dumps({"content": b64(b"\0" * 2_000_000)}).encode()
    assert_json_error(raw_http(port, http_request("POST", "/v1/stylize", JSON, big)), 413, "RESOURCE_EXHAUSTED")
    chunked = http_request("POST", "/v1/stylize", {**JSON, "Transfer-Encoding": "chunked"}, length=False)
    chunks = b"".join(b"%x\r\n" % len(part) + part + b"\r\n" for part in [big[i:i + 65536]
                                                                         for i in range(0, len(big), 65536)])
    assert_json_error(raw_http(port, chunked + chunks + b"0\r\n\r\n"), 413, "RESOURCE_EXHAUSTED")
    headers, form = multipart([("content", b"\0" * 2_000_000, "c.png")])
    assert_json_error(raw_http(port, http_request("POST", "/v1/stylize:form", headers, form)), 413,
                      "RESOURCE_EXHAUSTED")


def test_long_grpc_timeouts_are_clamped_not_overflowed(http) -> None:
    for value in ("2562047H", "99999999H", "99999999S"):
        reply = raw_http(http.server.http_port, http_request("GET", "/v1/models", {"Grpc-Timeout": value}))
        assert reply.status == 200, (value, reply.body[:300])
    assert parse_grpc_timeout("99999999H") == MAX_TIMEOUT_SECONDS == parse_grpc_timeout("99999999S")
    assert parse_grpc_timeout("1500m") == 1.5
    for bad in ("\u00b2S", "\u0661S", "123456789S", "1s", "S", " 1S"):
        with pytest.raises(RequestError):
            parse_grpc_timeout(bad)


# --- 2. timeouts and caps -----------------------------------------------------------------------------------------

def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before it closed ``sock`` (fails if it is still open after ``seconds``)."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_stalled_and_idle_connections_are_closed(start_server) -> None:
    server = start_server(http_port=free_port(), http_header_timeout=1.0, http_idle_timeout=1.5,
                          http_body_timeout=1.0)
    port = server.server.http_port
    silent, slow_headers, slow_body, idle = (socket.create_connection(("127.0.0.1", port)) for _ in range(4))
    slow_headers.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    slow_body.sendall(http_request("POST", "/v1/stylize", JSON, length=False).replace(
        b"\r\n\r\n", b"\r\nContent-Length: 100\r\n\r\n") + b'{"content": ')
    idle.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_reply(idle).status == 200  # then kept alive, and idle
    for sock in (silent, slow_headers, idle):
        assert closed_within(sock, 30) == b""
    late = closed_within(slow_body, 30)
    assert late.startswith(b"HTTP/1.1 408") and b'"DEADLINE_EXCEEDED"' in late and b"--http-body-timeout" in late
    for sock in (silent, slow_headers, slow_body, idle):
        sock.close()
    assert server.metric("styletransfer_http_connections_closed_total", reason="header_timeout") == 2
    wait_for(lambda: server.metric("styletransfer_http_connections") == 0)


def test_connections_over_the_cap_wait_for_a_free_one(start_server) -> None:
    server = start_server(http_port=free_port(), http_max_connections=4)
    port = server.server.http_port
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    wait_for(lambda: server.metric("styletransfer_http_connections") == 4)
    waiting = socket.create_connection(("127.0.0.1", port))  # the kernel's listen queue takes it
    waiting.sendall(http_request("GET", "/v1/models"))
    waiting.settimeout(2)
    with pytest.raises(TimeoutError):
        waiting.recv(1)  # not accepted while four are open
    held.pop().close()
    waiting.settimeout(30)
    assert read_reply(waiting).status == 200
    for sock in (*held, waiting):
        sock.close()


def _watch(base: str, job_id: str, opened: threading.Event, done: threading.Event, events: list[bytes]) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session, session.get(
                f"{base}/v1/jobs/{job_id}:watch", headers={"Accept": "text/event-stream"}) as response:
            async for chunk in response.content.iter_any():
                events.append(chunk)
                opened.set()
                if done.is_set():
                    return  # closes the stream from the client's side

    asyncio.run(go())


def _gatys_job(base: str) -> str:
    body = json.dumps({"content": b64(png_bytes(64, 48, 1)), "styles": [{"image": b64(STYLE)}], "iterations": 2000,
                       "numScales": 1}).encode()
    port = int(base.rsplit(":", 1)[1])
    return raw_http(port, http_request("POST", "/v1/jobs:gatys", JSON, body)).json()["id"]


def test_open_streams_are_capped_and_a_closed_one_is_no_error(start_server, caplog) -> None:
    caplog.set_level(logging.INFO)
    server = start_server(http_port=free_port(), http_max_streams=1, gatys_checkpoint_every=1)
    base, port = server.http_url, server.server.http_port
    job_id = _gatys_job(base)
    opened, done, events = threading.Event(), threading.Event(), []
    reader = threading.Thread(target=_watch, args=(base, job_id, opened, done, events), daemon=True)
    reader.start()
    assert opened.wait(60)
    second = raw_http(port, http_request("GET", f"/v1/jobs/{job_id}:watch"))
    assert "--http-max-streams" in assert_json_error(second, 429, "RESOURCE_EXHAUSTED")["message"]
    done.set()  # the first watcher goes away at its next event
    reader.join(60)
    wait_for(lambda: "WatchJob: the client closed the stream" in caplog.text, timeout=60)
    wait_for(lambda: server.metric("styletransfer_http_streams") == 0)
    assert raw_http(port, http_request("POST", f"/v1/jobs/{job_id}:cancel")).status == 200
    third = raw_http(port, http_request("GET", f"/v1/jobs/{job_id}:watch", {"Accept": "text/event-stream"}))
    assert third.status == 200 and b"JOB_STATE_CANCELLED" in third.body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


# --- 8. no page on another site can make the server work for it ---------------------------------------------------

def test_json_rules_take_json_bodies_only(http) -> None:
    port = http.server.http_port
    body = json.dumps({"content": b64(CONTENT), "styles": [{"image": b64(STYLE)}], "iterations": 2}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        reply = raw_http(port, http_request("POST", "/v1/jobs:gatys", {"Content-Type": content_type}, body))
        assert "application/json" in assert_json_error(reply, 415, "INVALID_ARGUMENT")["message"]
    assert raw_http(port, http_request("GET", "/v1/jobs")).json()["jobs"] == []
    form = multipart([("content", CONTENT, "c.png")])[1]
    reply = raw_http(port, http_request("POST", "/v1/stylize:form", JSON, form))
    assert_json_error(reply, 415, "INVALID_ARGUMENT")


def test_state_changes_from_other_sites_are_refused(start_server) -> None:
    server = start_server(http_port=free_port(), http_cors_origins="https://app.example.com")
    port = server.server.http_port
    own, host = f"http://127.0.0.1:{port}", {"Host": f"127.0.0.1:{port}"}
    seeds = iter(range(100))

    def put_style(**extra: str) -> RawReply:  # a new image each time: a style is registered once per image
        headers, form = multipart([("image", png_bytes(32, 32, next(seeds)), "s.png"), ("style_size", b"32", None)])
        return raw_http(port, http_request("POST", "/v1/styles:form", {**headers, **host, **extra}, form))

    refused = [{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
               {"Origin": "https://evil.example"},  # a browser without Fetch Metadata
               {"Origin": "https://sub.127.0.0.1.nip.io", "Sec-Fetch-Site": "same-site"},
               {"Origin": "null", "Sec-Fetch-Site": "cross-site"}]
    for extra in refused:
        assert "--http-cors-origins" in assert_json_error(put_style(**extra), 403, "PERMISSION_DENIED")["message"]
    allowed = [{}, {"Origin": own}, {"Origin": own, "Sec-Fetch-Site": "same-origin"},
               {"Origin": "https://proxy.example", "Sec-Fetch-Site": "same-origin"},  # Host rewritten by a proxy
               {"Sec-Fetch-Site": "none"}, {"Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"}]
    for extra in allowed:
        assert put_style(**extra).status == 200, extra
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    listed = raw_http(port, http_request("GET", "/v1/styles", evil))  # reading is not refused (CORS hides it)
    assert listed.status == 200 and len(listed.json()["styles"]) == len(allowed)
    cancel = "/v1/jobs/" + "0" * 32 + ":cancel"  # no such job: refused before the call, else NOT_FOUND
    assert_json_error(raw_http(port, http_request("POST", cancel, evil)), 403, "PERMISSION_DENIED")
    assert_json_error(raw_http(port, http_request("POST", cancel)), 404, "NOT_FOUND")


def test_header_and_send_timers_of_a_connection() -> None:
    """The timers alone, on a fake transport: a reply the client does not read for the body timeout aborts the
    connection; a request under way is never cut by the header timeout."""
    from aiohttp import web

    from server.http.listener import ConnectionLimits, _Connection

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.aborted = self.closed = False

        def abort(self) -> None:
            self.aborted = True

        def close(self) -> None:
            self.closed = True

        def is_closing(self) -> bool:
            return self.aborted or self.closed

        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

    async def scenario() -> tuple[bool, bool, bool, list[str]]:
        loop = asyncio.get_running_loop()
        limits = ConnectionLimits(max_connections=1, header_timeout=0.05, body_timeout=0.05, idle_timeout=60)
        released, reasons = [], []
        server = web.Server(lambda request: web.Response())

        def connection(transport: Transport) -> _Connection:
            conn = _Connection(server, loop=loop, limits=limits, release=lambda: released.append(1),
                               closed_early=reasons.append)
            conn.connection_made(transport)
            return conn

        busy, stalled, silent = Transport(), Transport(), Transport()
        connection(busy).begin_request()  # headers in: a long request is not a slow header
        reply = connection(stalled)
        reply.begin_request()
        reply.pause_writing()  # the client stopped reading the reply
        connection(silent)
        await asyncio.sleep(0.3)
        return busy.closed or busy.aborted, stalled.aborted, silent.closed, reasons

    busy_cut, stalled_aborted, silent_closed, reasons = asyncio.run(scenario())
    assert not busy_cut and stalled_aborted and silent_closed
    assert sorted(reasons) == ["client_not_reading", "header_timeout"]


# A server in a process of its own whose descriptors run out: it holds all but a few of them once it is serving.
OUT_OF_DESCRIPTORS = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))
from model.adain.stylizer import AdaINModel
from tests.helpers import RunningServer, base_config
server = RunningServer(base_config(http_port=int(sys.argv[1]), data_dir=sys.argv[2]), AdaINModel.random(device="cpu"))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(512 - len(os.listdir("/proc/self/fd")) - 12)]
print("ready", server.server.port, flush=True)
sys.stdin.read()  # until the test closes stdin
for fd in held:
    os.close(fd)
server.stop(1.0)
"""


@pytest.mark.slow
def test_running_out_of_descriptors_is_logged_in_a_few_lines_and_passes(tmp_path: Path) -> None:
    """Under a descriptor limit of 512 with only a few left, 100 clients: the listener stops accepting for a moment
    and says so at most once in 10 seconds (asyncio's accept loop logged `out of system resource` about 6,500 times
    a second), gRPC still answers, and once descriptors are free again the HTTP port serves."""
    import subprocess
    import sys

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    SERVING = health_pb2.HealthCheckResponse.SERVING
    http_port = free_port()
    stderr = tmp_path / "stderr"  # a file, not a pipe: a server that logs without bound must not block on it
    child = subprocess.Popen([sys.executable, "-c", OUT_OF_DESCRIPTORS, str(http_port), str(tmp_path / "data")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr.open("w"), text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        ready = child.stdout.readline().split()
        assert ready[:1] == ["ready"], stderr.read_text()[-3000:]
        channel = grpc.insecure_channel(f"127.0.0.1:{ready[1]}")
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == SERVING  # before it runs out
        clients = [socket.create_connection(("127.0.0.1", http_port), timeout=30) for _ in range(100)]
        time.sleep(3)  # the condition lasts: a loop that logs per attempt would write thousands of lines meanwhile
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == SERVING
        for sock in clients:
            sock.close()
        wait_for(lambda: raw_http(http_port, http_request("GET", "/v1/models"), timeout=30).status == 200, 60)
        channel.close()
    finally:
        child.stdin.close()
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    log = stderr.read_text()
    assert "out of system resource" not in log
    lines = [line for line in log.splitlines() if "cannot accept" in line]
    assert 1 <= len(lines) <= 2 and "EMFILE" in lines[0], log[-3000:]
