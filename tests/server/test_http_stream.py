"""StylizeStream as a WebSocket on the HTTP port, through a real server with aiohttp's client: the documented
framing both ways, frames in order, a bad frame's own error, bad settings and oversized messages closing the socket
with a code and a message, the token (header or subprotocol), origins, the stream and HTTP limits, LIVE pacing and
draining. Timing-free: a gated model decides when a frame finishes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from server.http.websocket import PATH, SUBPROTOCOL, TOKEN_PROTOCOL
from tests.helpers import Gate, free_port, png_bytes

STYLE = png_bytes(32, 32, seed=2)
FRAMES = [png_bytes(40, 32, seed) for seed in range(6)]
END = b""  # an empty binary message: no more frames


def settings(**fields: Any) -> str:
    fields.setdefault("styles", [{"image": base64.b64encode(STYLE).decode()}])
    fields.setdefault("styleSize", 32)
    return json.dumps(fields)


@dataclass
class Result:
    header: dict[str, Any]
    image: bytes


@dataclass
class Session:
    """What the client saw: the per-frame results, the error message that ended the stream, and the close."""

    results: list[Result] = field(default_factory=list)
    error: dict[str, Any] | None = None
    close_code: int | None = None
    close_reason: str = ""
    protocol: str | None = None
    request_id: str = ""


def unpack(data: bytes) -> Result:
    """The documented result framing: a 4-byte big-endian header length, the JSON header, the image."""
    (length,) = struct.unpack(">I", data[:4])
    return Result(json.loads(data[4 : 4 + length]), data[4 + length :])


async def talk(ws: aiohttp.ClientWebSocketResponse, messages: list[str | bytes], seen: Session) -> None:
    for message in messages:
        if isinstance(message, str):
            await ws.send_str(message)
        else:
            await ws.send_bytes(message)
    for _ in range(1000):  # bounded: a stream here has a handful of results
        received = await ws.receive(timeout=60)
        if received.type == aiohttp.WSMsgType.BINARY:
            seen.results.append(unpack(received.data))
        elif received.type == aiohttp.WSMsgType.TEXT:
            seen.error = json.loads(received.data)["error"]
        else:
            seen.close_code, seen.close_reason = ws.close_code, received.extra or ""
            return
    raise AssertionError("the stream did not end")


def run_stream(url: str, messages: list[str | bytes], **connect: Any) -> Session:
    async def go() -> Session:
        seen = Session()
        async with aiohttp.ClientSession() as client, client.ws_connect(url + PATH, **connect) as ws:
            seen.protocol, seen.request_id = ws.protocol, ws._response.headers.get("X-Request-Id", "")
            await talk(ws, messages, seen)
        return seen

    return asyncio.run(go())


def handshake_status(url: str, protocols: tuple[str, ...] = (), headers: dict[str, str] | None = None
                     ) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of a refused handshake (one request, as a WebSocket client sends it)."""
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(bytes(16)).decode(), **(headers or {})}
    if protocols:
        upgrade["Sec-WebSocket-Protocol"] = ", ".join(protocols)

    async def go() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as client, client.get(url + PATH, headers=upgrade) as reply:
            return reply.status, await reply.json()

    return asyncio.run(go())


@pytest.fixture
def http(start_server):
    return start_server(http_port=free_port())


def test_frames_come_back_in_order_framed_as_documented(http) -> None:
    seen = run_stream(http.http_url, [settings(outputFormat="IMAGE_FORMAT_JPEG"), *FRAMES[:3], END])
    assert seen.close_code == 1000 and seen.error is None
    assert [r.header["sequence"] for r in seen.results] == ["0", "1", "2"]  # uint64: a string in proto3 JSON
    for n, result in enumerate(seen.results, start=1):
        header = result.header
        assert "image" not in header and header["mimeType"] == "image/jpeg" and not header["dropped"]
        assert Image.open(io.BytesIO(result.image)).size == (header["width"], header["height"]) == (40, 32)
        assert int(header["counters"]["framesStylized"]) == n and header["untrained"] is True
        assert header["timing"]["totalMs"] >= header["timing"]["computeMs"] > 0
        assert header["requestId"] == seen.request_id != ""
    assert http.metric("styletransfer_requests_total", method="StylizeStream", code="OK", transport="http") == 1
    assert http.metric("styletransfer_http_streams") == 0  # the socket's slot is given back


def test_a_later_settings_message_applies_from_the_next_frame(http) -> None:
    seen = run_stream(http.http_url, [settings(), FRAMES[0], settings(contentSize=16), FRAMES[1], END])
    assert [(r.header["settingsVersion"], r.header["width"]) for r in seen.results] == [(1, 40), (2, 20)]


def test_a_bad_frame_gets_its_own_error_and_the_stream_goes_on(http) -> None:
    seen = run_stream(http.http_url, [settings(), FRAMES[0], b"not an image", FRAMES[1], END])
    assert seen.close_code == 1000
    good, bad, after = seen.results
    assert good.image and after.image and after.header["sequence"] == "2"
    assert bad.image == b"" and bad.header["error"]["status"] == "INVALID_ARGUMENT"
    assert "frame.image" in bad.header["error"]["message"] and bad.header["counters"]["framesFailed"] == "1"


@pytest.mark.parametrize(("first", "named"), [
    (settings(alpha=7), "alpha"),
    (settings(bogus=1), "bogus"),
    ("[1, 2", "settings"),
    (FRAMES[0], "settings"),  # a frame before any settings
])
def test_bad_settings_close_the_socket_with_invalid_argument_naming_the_field(http, first, named) -> None:
    seen = run_stream(http.http_url, [first, FRAMES[1]])
    assert seen.close_code == 4003 and seen.close_reason.startswith("INVALID_ARGUMENT: ")
    assert seen.error is not None and seen.error["status"] == "INVALID_ARGUMENT" and named in seen.error["message"]
    assert seen.results == []


def test_settings_with_too_many_json_values_are_refused_before_they_are_built(start_server) -> None:
    server = start_server(http_port=free_port(), http_max_fields=50)
    seen = run_stream(server.http_url, [settings(styles=[{"styleId": "x"}] * 60)])
    assert seen.close_code == 4003 and "--http-max-fields" in seen.error["message"]


def test_the_token_comes_as_a_header_or_a_subprotocol_and_is_checked_before_the_upgrade(start_server,
                                                                                     tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret/+token\n")
    server = start_server(http_port=free_port(), auth_tokens_file=str(tokens))
    status, body = handshake_status(server.http_url)
    assert (status, body["status"]) == (401, "UNAUTHENTICATED")
    wrong = TOKEN_PROTOCOL + base64.urlsafe_b64encode(b"guess").decode().rstrip("=")
    assert handshake_status(server.http_url, protocols=(SUBPROTOCOL, wrong))[0] == 401
    by_header = run_stream(server.http_url, [settings(), FRAMES[0], END],
                           headers={"Authorization": "Bearer s3cret/+token"})
    assert by_header.close_code == 1000 and len(by_header.results) == 1
    token = TOKEN_PROTOCOL + base64.urlsafe_b64encode(b"s3cret/+token").decode().rstrip("=")
    by_protocol = run_stream(server.http_url, [settings(), FRAMES[0], END], protocols=(SUBPROTOCOL, token))
    assert by_protocol.close_code == 1000 and by_protocol.protocol == SUBPROTOCOL  # the token is never echoed
    assert server.metric("styletransfer_requests_total", method="StylizeStream", code="UNAUTHENTICATED",
                         transport="http") == 2


def test_a_handshake_from_another_sites_page_is_refused(start_server) -> None:
    server = start_server(http_port=free_port(), http_cors_origins="https://app.example.com")
    status, body = handshake_status(server.http_url, headers={"Origin": "https://evil.example"})
    assert (status, body["status"]) == (403, "PERMISSION_DENIED") and "WebSocket" in body["message"]
    own = f"http://127.0.0.1:{server.server.http_port}"
    for origin in ("https://app.example.com", own):
        seen = run_stream(server.http_url, [settings(), FRAMES[0], END], headers={"Origin": origin})
        assert seen.close_code == 1000 and len(seen.results) == 1


def test_a_plain_get_is_told_to_upgrade(http) -> None:
    async def go() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as client, client.get(http.http_url + PATH) as reply:
            return reply.status, await reply.json()

    status, body = asyncio.run(go())
    assert status == 426 and "Upgrade: websocket" in body["message"]


def test_oversized_messages_close_the_socket(start_server) -> None:
    limit = 64 * 1024
    server = start_server(http_port=free_port(), max_message_bytes=limit)
    big_frame = b"\x89PNG" + bytes(limit)
    seen = run_stream(server.http_url, [settings(), big_frame])
    assert seen.close_code == 4008 and "--max-message-bytes" in seen.error["message"]
    # Past the socket's own bound (the message limit plus room for base64 in a settings message), aiohttp's
    # reader refuses the message before it is whole.
    seen = run_stream(server.http_url, [settings(), b"x" * (3 * limit + 2 * 1024 * 1024)])
    assert seen.close_code == 1009 and "--max-message-bytes" in seen.close_reason


def test_stream_limits_apply_as_to_grpc_streams(start_server) -> None:
    server = start_server(http_port=free_port(), stream_max_frames=2)
    seen = run_stream(server.http_url, [settings(), *FRAMES[:3], END])
    assert len(seen.results) == 2 and seen.close_code == 4008 and "--stream-max-frames" in seen.error["message"]
    idle = start_server(http_port=free_port(), stream_idle_timeout=0.2)
    seen = run_stream(idle.http_url, [settings()])
    assert seen.close_code == 4004 and "--stream-idle-timeout" in seen.error["message"]


def test_open_streams_are_capped_by_both_limits(start_server) -> None:
    async def second_while_first_is_open(url: str) -> tuple[Session | int, int]:
        async with aiohttp.ClientSession() as client, client.ws_connect(url + PATH) as first:
            await first.send_str(settings())
            # a frame's result: the first stream holds its slot before the second asks (else, on a loaded machine,
            # the second's settings could reach the server first, and the first be the one refused)
            await first.send_bytes(FRAMES[0])
            assert unpack((await first.receive(timeout=60)).data).image
            try:
                seen = Session()
                async with client.ws_connect(url + PATH) as ws:
                    await talk(ws, [settings()], seen)
                outcome: Session | int = seen
            except aiohttp.WSServerHandshakeError as exc:
                outcome = exc.status
            await first.send_bytes(END)
            return outcome, (await first.receive(timeout=60)).type

    grpc_capped = start_server(http_port=free_port(), stream_max_concurrent=1)
    seen, _ = asyncio.run(second_while_first_is_open(grpc_capped.http_url))
    assert isinstance(seen, Session) and seen.close_code == 4008 and "--stream-max-concurrent" in seen.error["message"]
    http_capped = start_server(http_port=free_port(), http_max_streams=1)
    status, first_end = asyncio.run(second_while_first_is_open(http_capped.http_url))
    assert status == 429 and first_end == aiohttp.WSMsgType.CLOSE


def test_live_pacing_answers_stale_frames_as_dropped_at_once(start_server, random_model) -> None:
    gate = Gate(random_model)  # frame 0 stays in the model until the test releases it
    server = start_server(models=[gate], http_port=free_port())

    async def go() -> tuple[list[Result], Result, Result, int | None]:
        async with aiohttp.ClientSession() as client, client.ws_connect(server.http_url + PATH) as ws:
            await ws.send_str(settings(pacing="STREAM_PACING_LIVE"))
            await ws.send_bytes(FRAMES[0])
            await asyncio.to_thread(gate.wait_entered)
            for image in FRAMES[1:5]:  # each replaces the one waiting
                await ws.send_bytes(image)
            dropped = [unpack((await ws.receive(timeout=60)).data) for _ in range(3)]
            gate.release()
            first = unpack((await ws.receive(timeout=60)).data)
            await asyncio.to_thread(gate.wait_entered)
            gate.release()
            newest = unpack((await ws.receive(timeout=60)).data)
            await ws.send_bytes(END)
            await ws.receive(timeout=60)
            return dropped, first, newest, ws.close_code

    dropped, first, newest, code = asyncio.run(go())
    assert [(r.header["sequence"], r.header["dropped"], r.image) for r in dropped] == [(str(i), True, b"")
                                                                                      for i in (1, 2, 3)]
    assert first.header["sequence"] == "0" and first.image
    assert newest.header["sequence"] == "4" and newest.image and newest.header["counters"]["framesDropped"] == "3"
    assert code == 1000


def test_a_draining_server_closes_the_socket_with_unavailable(start_server) -> None:
    server = start_server(http_port=free_port())

    async def go() -> Session:
        seen = Session()
        async with aiohttp.ClientSession() as client, client.ws_connect(server.http_url + PATH) as ws:
            await ws.send_str(settings())
            await ws.send_bytes(FRAMES[0])
            seen.results.append(unpack((await ws.receive(timeout=60)).data))
            # As SIGTERM does (RunningServer.stop would close the test's channels first).
            stopping = ThreadPoolExecutor(1).submit(server._run, server.server.stop(30.0))
            await talk(ws, [], seen)
            await asyncio.to_thread(stopping.result, 60)
        return seen

    seen = asyncio.run(go())
    assert len(seen.results) == 1 and seen.close_code == 4014 and seen.error["status"] == "UNAVAILABLE"
