"""StylizeStream over a WebSocket on the HTTP port (``GET /v1/stylize:stream``), for browsers and other clients
that cannot speak gRPC.

A browser cannot hold a gRPC bidirectional stream (``fetch`` has no full-duplex body), so the stream is carried by a
WebSocket. Like every route of the gateway it becomes a real StylizeStream call to this server over the private
socket (:func:`relay`), so the token check, the stream limits (streams open, frame pixels, frames per stream, idle
timeout), pacing, deadlines, draining, request ids and metrics are the gRPC stream's own; this module only turns
WebSocket messages into the call's messages and back.

Client to server:

- a text message is a JSON object of ``StreamSettings`` (proto3 JSON names, as the other routes' bodies): the first
  message must be one; a later one replaces the settings from the next frame;
- a binary message is one encoded frame (PNG, JPEG or WebP); its sequence number is its index among the frames;
- an empty binary message says that no frames follow (gRPC's half-close): the server answers the frames it holds
  and closes with 1000.

Server to client:

- a binary message is one frame's result (:func:`pack`): a 4-byte big-endian length ``n``, ``n`` bytes of UTF-8 JSON
  (the ``StylizeStreamResponse`` without its image, proto3 JSON as the other routes reply), then the image's bytes
  (none when the frame was dropped or failed);
- a text message ``{"error": {"code", "status", "message", "requestId"}}`` is the error that ends the stream, sent
  just before the close frame, whose code is 4000 plus the gRPC code (:func:`close_code`).

Browsers cannot send an ``Authorization`` header with a WebSocket, so the token may also come as a subprotocol:
``bearer.`` and the token in unpadded base64url, offered beside :data:`SUBPROTOCOL` (which the server selects; the
token is never echoed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import struct
from collections.abc import Awaitable, Callable, Mapping

import grpc
from aiohttp import WSCloseCode, WSMsgType, web
from google.protobuf import json_format

from server.errors import REQUEST_ID_HEADER, bounded
from server.http import proto_json
from server.http.bodies import check_json_values
from server.http.replies import error_body
from server.http.rules import RequestError
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["PATH", "SUBPROTOCOL", "TOKEN_PROTOCOL", "StreamSocket", "authorization_of", "close_code", "pack",
           "parse_settings", "relay"]

log = logging.getLogger(__name__)
PATH = "/v1/stylize:stream"
#: The subprotocol the server selects; clients may offer it (browsers must, when they offer a token).
SUBPROTOCOL = "styletransfer.stream.v1"
#: Prefix of the subprotocol that carries a bearer token (unpadded base64url after it).
TOKEN_PROTOCOL = "bearer."
#: Close codes from 4000 up are the application's (RFC 6455 7.4.2): 4000 + the gRPC status code.
APPLICATION_CLOSE = 4000
#: Bytes a close frame's reason may hold (125 bytes of payload, 2 of them the code).
MAX_CLOSE_REASON = 123
#: What a frame's protobuf wrapping adds to its image (tags and lengths), so a frame the socket took fits the call.
FRAME_OVERHEAD = 16
_HEADER = struct.Struct(">I")
# The reason of a close that aiohttp's reader decided (it closes before the handler hears of it).
_READER_CLOSES = {WSCloseCode.MESSAGE_TOO_BIG: "a message is over the size limit (--max-message-bytes, plus room "
                  "for base64 in a settings message)",
                  WSCloseCode.INVALID_TEXT: "a text message is not UTF-8",
                  WSCloseCode.PROTOCOL_ERROR: "WebSocket protocol error"}


class StreamSocket(web.WebSocketResponse):
    """The server's side of the socket, without compression (frames are JPEG or PNG already; deflating them costs
    CPU for nothing) and with a reason on the closes that aiohttp's reader decides."""

    def __init__(self, max_message_bytes: int) -> None:
        super().__init__(protocols=(SUBPROTOCOL,), compress=False, max_msg_size=max_message_bytes)

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if not message and code in _READER_CLOSES:
            message = _READER_CLOSES[code].encode()
        return await super().close(code=code, message=message, drain=drain)


def authorization_of(headers: Mapping[str, str]) -> str:
    """The ``Authorization`` header, else ``Bearer <token>`` from a ``bearer.<base64url>`` subprotocol; "" when
    neither is there (a token that does not decode is passed on as given, and refused by the token check)."""
    if header := headers.get("Authorization", ""):
        return header
    for protocol in headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(TOKEN_PROTOCOL):
            encoded = protocol.removeprefix(TOKEN_PROTOCOL)
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                token = encoded
            return f"Bearer {token}"
    return ""


def close_code(code: grpc.StatusCode) -> int:
    """The close code of a stream that ends with ``code``: 4000 + its number (4003 INVALID_ARGUMENT...)."""
    return APPLICATION_CLOSE + code.value[0]


def pack(response: pb.StylizeStreamResponse) -> bytes:
    """One frame's result as one binary message: header length, JSON header (proto3 JSON as the other routes
    reply, without the image), image bytes. Takes the image out of ``response`` (never turned into base64)."""
    image = response.image
    response.ClearField("image")
    values = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
    del values["image"]
    header = json.dumps(values, separators=(",", ":")).encode()
    return _HEADER.pack(len(header)) + header + image


def parse_settings(data: bytes, max_fields: int) -> pb.StreamSettings:
    """A settings message (JSON object of StreamSettings) with at most ``max_fields`` values; RequestError naming
    what is wrong."""
    settings = pb.StreamSettings()
    try:
        check_json_values(data, max_fields)
        proto_json.parse_body(data, settings)
    except RequestError as exc:
        raise RequestError(f"settings: {str(exc).removeprefix('body: ')}") from None
    except (json_format.ParseError, ValueError, RecursionError) as exc:
        raise RequestError(f"settings: {exc}") from None
    return settings


class _Ended(Exception):
    """A message the call cannot carry: the gateway ends the stream itself, with a status as the server would."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


async def relay(ws: web.WebSocketResponse, call: grpc.aio.StreamStreamCall,
                settings: Callable[[bytes], Awaitable[pb.StreamSettings]], max_frame_bytes: int,
                request_id: str) -> None:
    """Carries one stream between an open socket and its call until either ends, then closes the socket: 1000 when
    the call ended OK, else the error message and 4000 + its code; nothing when the client went away. A fault here
    closes it with 1011 (the reply is under way: no HTTP error can be sent any more)."""
    try:
        await _relay(ws, call, settings, max_frame_bytes, request_id)
    except Exception:
        log.exception("StylizeStream over WebSocket failed")
        call.cancel()
        with contextlib.suppress(ConnectionError):
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=f"internal error (request id {request_id})"
                           .encode())


_GONE = "gone"  # the client closed the socket, or stopped reading and went away: no one to answer
_CALL_ENDED = "call ended"  # the call ended while the client was sending: its status says why
Status = tuple[grpc.StatusCode, str, str] | None  # code, message, request id; None for OK


async def _relay(ws: web.WebSocketResponse, call: grpc.aio.StreamStreamCall,
                 settings: Callable[[bytes], Awaitable[pb.StreamSettings]], max_frame_bytes: int,
                 request_id: str) -> None:
    # Nothing is written before the server has admitted the call (its initial metadata) or ended it: a write that
    # meets an ended call makes grpcio's asyncio client replace the server's status with INTERNAL "Internal error
    # from Core" (grpc/grpc#36066), and a refused stream (--stream-max-concurrent) must say why.
    await call.initial_metadata()
    upstream = asyncio.create_task(_upstream(ws, call, settings, max_frame_bytes))
    downstream = asyncio.create_task(_downstream(ws, call, request_id))
    try:
        await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
        if not downstream.done() and (stop := upstream.result()) is not _CALL_ENDED:
            call.cancel()  # the client went away, or sent what the call cannot carry
            status: Status | str = _GONE if stop is _GONE else (stop.code, str(stop), request_id)
        else:
            status = await downstream
    finally:
        for task in (upstream, downstream):
            task.cancel()
        await asyncio.gather(upstream, downstream, return_exceptions=True)
    if status is _GONE:
        call.cancel()
        log.info("StylizeStream over WebSocket: the client closed the connection")
    else:
        await _close(ws, status)


async def _downstream(ws: web.WebSocketResponse, call: grpc.aio.StreamStreamCall, request_id: str) -> Status | str:
    """Sends the call's responses to the socket until the call ends; returns its status (or _GONE)."""
    try:
        async for response in call:
            await ws.send_bytes(pack(response))
    except grpc.aio.AioRpcError as exc:
        trailers = dict(exc.trailing_metadata() or ())
        return exc.code(), exc.details() or exc.code().name, str(trailers.get(REQUEST_ID_HEADER, request_id))
    except ConnectionError:
        return _GONE
    return None


async def _close(ws: web.WebSocketResponse, status: Status) -> None:
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError):
        if status is None:
            await ws.close()
            return
        code, message, request_id = status
        await ws.send_str('{"error": ' + error_body(code, message, request_id).decode() + "}")
        reason = f"{code.name}: {bounded(message)}".encode()[:MAX_CLOSE_REASON].decode("utf-8", "ignore")
        await ws.close(code=close_code(code), message=reason.encode())


async def _upstream(ws: web.WebSocketResponse, call: grpc.aio.StreamStreamCall,
                    settings: Callable[[bytes], Awaitable[pb.StreamSettings]], max_frame_bytes: int
                    ) -> _Ended | str:
    """Writes the client's messages to the call until the socket closes (_GONE) or the call ends (_CALL_ENDED);
    returns an :class:`_Ended` for a message the call cannot carry."""
    frames_done = False
    if call.done():
        return _CALL_ENDED
    try:
        async for request in _requests(ws, settings, max_frame_bytes):
            if frames_done:
                raise _Ended(grpc.StatusCode.INVALID_ARGUMENT, "a message after the empty message that ended the "
                             "frames")
            if request is None:
                frames_done = True
                await call.done_writing()
            else:
                await call.write(request)
    except _Ended as exc:
        return exc
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        return _CALL_ENDED
    return _GONE


async def _requests(ws: web.WebSocketResponse, settings: Callable[[bytes], Awaitable[pb.StreamSettings]],
                    max_frame_bytes: int):
    """The call's messages from the socket's (None for the end of the frames) until the socket closes."""
    async for message in ws:  # ends on a close (the client's, or aiohttp's for a malformed or oversized message)
        if message.type == WSMsgType.TEXT:
            try:
                yield pb.StylizeStreamRequest(settings=await settings(message.data.encode()))
            except RequestError as exc:
                raise _Ended(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        elif message.type == WSMsgType.BINARY:
            if len(message.data) > max_frame_bytes:
                raise _Ended(grpc.StatusCode.RESOURCE_EXHAUSTED, f"frame.image: {len(message.data)} bytes, over "
                             f"the {max_frame_bytes} a frame may have (--max-message-bytes)")
            yield pb.StylizeStreamRequest(frame=pb.StreamFrame(image=message.data)) if message.data else None

