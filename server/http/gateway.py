"""The HTTP/JSON gateway and the playground page, on ``--http-port``, in the gRPC server's event loop (aiohttp).

Same code path as gRPC: every HTTP call becomes a real gRPC call to this server over a private Unix socket (a
directory only this process's user can open), so the interceptors (bearer-token auth, and any added later), the
servicers' validation, limits, deadlines, message-size limits, request ids and error map are the very ones gRPC
clients get. The cost is one protobuf encode/decode and an HTTP/2 hop through the kernel, well under a millisecond
beside a stylization. The servicer tells the two transports apart by the peer address (``server.metrics``).

HTTP specifics: ``Authorization`` and ``X-Request-Id`` are forwarded as gRPC metadata, ``Grpc-Timeout`` (gRPC's
format, e.g. ``30S`` or ``500m``) becomes the call's deadline, proto3 JSON both ways (``json_format``), status codes
mapped as Google's HTTP guidelines do, errors as ``{"code", "status", "message", "requestId"}``
(``server.http.replies``). Server-streaming RPCs answer with server-sent events (``Accept: text/event-stream``) or
newline-delimited ``{"result": ...}`` objects as grpc-gateway does; the bidirectional StylizeStream is a WebSocket
(``server.http.websocket``). Cross-origin callers are answered only for the
origins ``--http-cors-origins`` lists (``server.http.cors``).

What a request may cost before the RPC sees it is bounded here, cheapest check first, so that no request, with a
token or without, can stall the event loop: from the headers alone (before any body byte is read) the bearer token,
the origin of state-changing browser requests, the content type and the declared length; then the body is read
within size and time limits and parsed in a worker thread with a bound on its fields (``server.http.bodies``).
Connections, their timeouts and malformed requests are the listener's (``server.http.listener``); open streams are
capped here (:meth:`Gateway.stream_slot`, for any long-lived reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from aiohttp import HttpVersion11, web
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from server.auth import TokenCheck
from server.config import Config
from server.errors import REQUEST_ID_HEADER, bounded
from server.http import proto_json, websocket
from server.http.bodies import BodyTimeout, BodyTooLarge, check_json_values, form_fields, read_body
from server.http.cors import CorsPolicy
from server.http.listener import ConnectionLimits, HttpListener
from server.http.replies import HTTP_STATUS, error_response, rpc_error_response, stream_error
from server.http.rules import RequestError, Route, form_message, routes_for
from server.logs import new_request_id, request_id_var
from server.metrics import Metrics
from server.tls import http_ssl_context
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["HTTP_STATUS", "MAX_TIMEOUT_SECONDS", "Gateway", "parse_grpc_timeout"]

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
TRANSPORT = "http"
API_ROUTE = "api"  # the catch-all route of the RPCs, as opposed to the page and its static files
JSON_TYPE = "application/json"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
#: Longest deadline passed on: the most a ``Grpc-Timeout`` in seconds can say (8 digits, over three years). Longer
#: ones (up to 99999999H) are legal and mean "no hurry"; gRPC's runtime would overflow on them and fail at once.
MAX_TIMEOUT_SECONDS = 99_999_999
#: Replies whose protobuf is larger than this are turned into JSON in a worker thread rather than on the event loop.
OFFLOAD_BYTES = 256 * 1024
STREAM_RPC = "StylizeStream"  # the bidirectional stream, served as a WebSocket (server.http.websocket)
PARSE_THREADS = 2  # parsing holds the GIL: more threads would not parse faster, only hold more bodies in memory
_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")  # what gRPC metadata (and RFC 6750's token68) can carry
_REQUEST_ID = web.RequestKey("request_id", str)  # where the middleware keeps a request's id for the handler
# The page loads only its own files; images are data:/blob: URLs made by the page itself.
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# The gRPC code of aiohttp's own HTTP errors (a missing static file, an unknown Expect), for the JSON error format.
_CODE_OF_HTTP = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED,
                 404: grpc.StatusCode.NOT_FOUND, 405: grpc.StatusCode.UNIMPLEMENTED,
                 408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
                 429: grpc.StatusCode.RESOURCE_EXHAUSTED, 501: grpc.StatusCode.UNIMPLEMENTED,
                 503: grpc.StatusCode.UNAVAILABLE, 504: grpc.StatusCode.DEADLINE_EXCEEDED}


def parse_grpc_timeout(value: str) -> float:
    """Seconds from a ``grpc-timeout`` value: up to 8 ASCII digits and a unit (H, M, S, m, u, n), at most
    :data:`MAX_TIMEOUT_SECONDS`."""
    found = _TIMEOUT.fullmatch(value)
    if found is None:
        raise RequestError(f"Grpc-Timeout {value[:40]!r}: expected up to 8 digits and a unit (H, M, S, m, u or n)")
    return min(int(found[1]) * _TIMEOUT_UNITS[found[2]], MAX_TIMEOUT_SECONDS)


class _CallFailed(Exception):
    """A gateway-side failure (bad JSON, bad header) answered like the RPC's own errors; ``status`` where HTTP has a
    more precise one than the code's (413, 415), ``close`` when the rest of the body is not worth reading."""

    def __init__(self, code: grpc.StatusCode, message: str, status: int | None = None, close: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.close = close


class Gateway:
    """Serves the proto's HTTP rules and the playground; calls this server's gRPC port over a Unix socket."""

    def __init__(self, config: Config, metrics: Metrics, service: ServiceDescriptor,
                 tokens: TokenCheck | None = None) -> None:
        self._config = config
        self._metrics = metrics
        self._tokens = tokens
        self._routes = routes_for(service)
        self._cors = CorsPolicy(config.cors_origins)
        self._socket_dir = tempfile.mkdtemp(prefix="styletransfer-gw-")  # mode 0700: only this user connects
        self.grpc_address = f"unix:{os.path.join(self._socket_dir, 'grpc.sock')}"
        self._channel: grpc.aio.Channel | None = None
        self._runner: web.AppRunner | None = None
        self._listener: HttpListener | None = None
        self._parser: ThreadPoolExecutor | None = None
        # Base64 in JSON is 4/3 of the bytes; the gRPC message limit still applies to the decoded request.
        self._max_body = config.max_message_bytes * 4 // 3 + 1024 * 1024
        self._streams = 0
        self._stream_method = f"/{service.full_name}/{STREAM_RPC}"
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body, middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC_DIR, append_version=True)
        app.router.add_get(websocket.PATH, self._websocket)
        app.router.add_route("*", "/{path:.*}", self._dispatch, name=API_ROUTE, expect_handler=self._expect)
        app.on_response_prepare.append(_security_headers)
        if self._cors.enabled:  # off: not even Vary, responses stay exactly as before
            app.on_response_prepare.append(self._cors_headers)
        return app

    async def start(self) -> None:
        """Opens the channel to the gRPC server's Unix socket (added by the server) and listens on --http-port."""
        size = self._config.max_message_bytes
        self._channel = grpc.aio.insecure_channel(self.grpc_address, options=[
            ("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)])
        self._parser = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="http-body")
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=self._config.grace_period)
        await self._runner.setup()
        self._listener = HttpListener(self._runner.server, ConnectionLimits.from_config(self._config), self._metrics,
                                      http_ssl_context(self._config))
        self.port = await self._listener.start(self._config.host, self._config.http_port)

    async def stop(self) -> None:
        """Closes the listener and the channel; the gRPC server has already drained the calls in flight."""
        if self._listener is not None:
            await self._listener.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._channel is not None:
            await self._channel.close()
        if self._parser is not None:
            self._parser.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    @contextlib.contextmanager
    def stream_slot(self) -> Iterator[None]:
        """One of the ``--http-max-streams`` open streaming replies (any long-lived reply: event streams, a
        WebSocket), for as long as the reply is open; :class:`_CallFailed` (429) when all are taken."""
        if self._streams >= self._config.http_max_streams:
            raise _CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{self._streams} streams are open, the most this "
                              "server allows (--http-max-streams); retry later")
        self._streams += 1
        self._metrics.http_streams.set(self._streams)
        try:
            yield
        finally:
            self._streams -= 1
            self._metrics.http_streams.set(self._streams)

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        """Around every request on the port: its request id, the connection's busy state (for its timeouts), and a
        JSON error with that id for whatever the handler raised, a fault included."""
        request_id = request.get(_REQUEST_ID) or new_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        request[_REQUEST_ID] = request_id
        request_id_var.set(request_id)
        connection = request.protocol
        if hasattr(connection, "begin_request"):
            connection.begin_request()
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own answers: a missing static file and the like
            if exc.status < 400:
                raise
            code = _CODE_OF_HTTP.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT if exc.status < 500
                                     else grpc.StatusCode.INTERNAL)
            return error_response(code, exc.reason, request_id, exc.status)
        except ConnectionError:  # the client went away: there is no one to answer
            log.info("HTTP request ended: the client closed the connection")
            return web.Response(status=499)
        except Exception:
            log.exception("HTTP request failed")
            return error_response(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})", request_id)
        finally:
            if hasattr(connection, "end_request"):
                connection.end_request()

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    def _route(self, request: web.Request) -> tuple[Route, dict[str, str]] | None:
        raw_path = request.rel_url.raw_path
        for route in self._routes:
            params = route.match(request.method, raw_path)
            if params is not None:
                return route, params
        return None

    def _methods_at(self, raw_path: str) -> set[str]:
        """The HTTP methods some RPC is mapped to at this path."""
        return {r.http_method for r in self._routes if r.pattern.fullmatch(raw_path)}

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: the header checks answer before the client sends a body it may not send."""
        request_id = request[_REQUEST_ID] = new_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        if request.headers.get("Expect", "").lower() != "100-continue":
            return error_response(grpc.StatusCode.INVALID_ARGUMENT, "Expect: only 100-continue is understood",
                                  request_id, 417)
        found = self._route(request)
        if found is not None:
            try:
                self._admit(request, found[0])
            except _CallFailed as exc:
                return self._refused(found[0].rpc.name, exc, request_id, time.perf_counter())
        if request.version == HttpVersion11:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the reply proper has not started
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        request_id = request[_REQUEST_ID]
        if self._cors.enabled and _is_preflight(request):
            return self._preflight(request, request_id)
        found = self._route(request)
        if found is None:
            allowed = bool(self._methods_at(request.rel_url.raw_path))
            code = grpc.StatusCode.UNIMPLEMENTED if allowed else grpc.StatusCode.NOT_FOUND
            message = (f"{request.method} is not allowed on {request.path}" if allowed
                       else f"no RPC is mapped to {request.method} {request.path}")
            return error_response(code, message, request_id, 405 if allowed else 404)
        route, params = found
        started = time.perf_counter()
        try:
            metadata, timeout = self._admit(request, route)
            message = await self._request_message(request, route, params)
            if route.streaming:
                with self.stream_slot():
                    return await self._stream(request, route, message, metadata, timeout, request_id)
        except _CallFailed as exc:
            return self._refused(route.rpc.name, exc, request_id, started)
        return await self._unary(route, message, metadata, timeout, request_id)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """StylizeStream as a WebSocket: the handshake passes the stream's checks, then the socket and a gRPC call
        to this server are relayed (``server.http.websocket``)."""
        assert self._channel is not None, "start() opens the channel"
        request_id, started = request[_REQUEST_ID], time.perf_counter()
        ws = websocket.StreamSocket(self._max_body)
        try:
            metadata, timeout = self._admit_socket(request)
            if not ws.can_prepare(request).ok:
                raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, f"{websocket.PATH} is a WebSocket: send a "
                                  "GET with 'Upgrade: websocket' (docs/http.md)", 426)
            with self.stream_slot():
                ws.headers["X-Request-Id"] = request_id
                await ws.prepare(request)
                call = self._channel.stream_stream(self._stream_method,
                                                   request_serializer=pb.StylizeStreamRequest.SerializeToString,
                                                   response_deserializer=pb.StylizeStreamResponse.FromString)
                await websocket.relay(ws, call(metadata=metadata, timeout=timeout), self._stream_settings,
                                      self._config.max_message_bytes - websocket.FRAME_OVERHEAD, request_id)
        except _CallFailed as exc:
            return self._refused(STREAM_RPC, exc, request_id, started)
        return ws

    def _admit_socket(self, request: web.Request) -> tuple[tuple[tuple[str, str], ...], float | None]:
        """A WebSocket handshake's checks: the token (header or subprotocol), then its origin."""
        authorization = websocket.authorization_of(request.headers)
        self._check_token(authorization)
        refusal = self._cors.websocket_refusal(request.headers.get("Origin", ""),
                                               request.headers.get("Sec-Fetch-Site"), request.host)
        if refusal is not None:
            raise _CallFailed(grpc.StatusCode.PERMISSION_DENIED, refusal)
        return self._call_metadata(request, authorization)

    async def _stream_settings(self, data: bytes) -> pb.StreamSettings:
        """A stream's settings message, parsed in a worker thread (its inline styles may be megabytes of base64)."""
        return await asyncio.get_running_loop().run_in_executor(self._parser, websocket.parse_settings, data,
                                                                self._config.http_max_fields)

    def _refused(self, method: str, exc: _CallFailed, request_id: str, started: float) -> web.Response:
        message = bounded(str(exc))  # it may quote what the client sent (a JSON key of megabytes)
        log.info("%s -> %s: %s", method, exc.code.name, message)
        self._metrics.observe_call(method, exc.code.name, time.perf_counter() - started, TRANSPORT)
        response = error_response(exc.code, message, request_id, exc.status)
        if exc.close:
            response.force_close()
        return response

    def _admit(self, request: web.Request, route: Route) -> tuple[tuple[tuple[str, str], ...], float | None]:
        """The checks a request's headers must pass before its body is read, cheapest and most telling first; returns
        the call's metadata and deadline."""
        authorization = request.headers.get("Authorization", "")
        self._check_token(authorization)
        refusal = self._cors.cross_site_refusal(request.method, request.headers.get("Origin", ""),
                                                request.headers.get("Sec-Fetch-Site"), request.host)
        if refusal is not None:
            raise _CallFailed(grpc.StatusCode.PERMISSION_DENIED, refusal)
        _check_content_type(request, route)
        if request.content_length is not None and request.content_length > self._max_body:
            raise _CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(BodyTooLarge(self._max_body)), 413, True)
        return self._call_metadata(request, authorization)

    def _check_token(self, authorization: str) -> None:
        if self._tokens is not None and not self._tokens.allows(authorization):
            raise _CallFailed(grpc.StatusCode.UNAUTHENTICATED, "a valid 'Authorization: Bearer <token>' is required")

    def _call_metadata(self, request: web.Request, authorization: str
                       ) -> tuple[tuple[tuple[str, str], ...], float | None]:
        """The gRPC call's metadata (request id, token) and deadline (``Grpc-Timeout``)."""
        if not _HEADER_VALUE.fullmatch(authorization):
            raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, "Authorization: only visible ASCII is allowed")
        try:
            timeout_header = request.headers.get("grpc-timeout")
            timeout = parse_grpc_timeout(timeout_header) if timeout_header else None
        except RequestError as exc:
            raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        metadata = [(REQUEST_ID_HEADER, request[_REQUEST_ID])]
        if authorization:
            metadata.append(("authorization", authorization))
        return tuple(metadata), timeout

    def _preflight(self, request: web.Request, request_id: str) -> web.Response:
        """204 with the CORS grant for an allowed origin; 403 for any other (module docstring of server.http.cors)."""
        methods = self._methods_at(request.rel_url.raw_path)
        if not methods:
            return error_response(grpc.StatusCode.NOT_FOUND, f"no RPC is mapped to {request.path}", request_id)
        origin = request.headers.get("Origin", "")
        headers = self._cors.preflight_headers(origin, methods)
        if headers is None:
            return error_response(grpc.StatusCode.PERMISSION_DENIED,
                                  f"origin {origin!r} is not allowed to call this API (--http-cors-origins)",
                                  request_id)
        return web.Response(status=204, headers=headers)

    async def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """CORS headers on every API response, errors and event streams included; preflights carry their own."""
        if request.match_info.route.name != API_ROUTE or _is_preflight(request):
            return
        for name, value in self._cors.response_headers(request.headers.get("Origin", "")).items():
            if name == "Vary" and (present := response.headers.get("Vary")):
                value = f"{present}, {value}"
            response.headers[name] = value

    async def _request_message(self, request: web.Request, route: Route, params: dict[str, str]) -> Message:
        """The RPC's request from the path, query and body; a body is read within its limits and parsed in a worker
        thread."""
        try:
            if not (route.body or route.form):
                return route.build_request(params, request.query.items(), b"")
            body = await read_body(request.content, request.content_length, self._max_body,
                                   self._config.http_body_timeout)
            query = list(request.query.items())
            return await asyncio.get_running_loop().run_in_executor(
                self._parser, _parse, route, params, query, body, request.headers.get("Content-Type", ""),
                self._config.http_max_fields)
        except RequestError as exc:
            raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        except BodyTooLarge as exc:
            raise _CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), 413, True) from None
        except BodyTimeout as exc:
            raise _CallFailed(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc), 408, True) from None

    async def _unary(self, route: Route, message: Message, metadata: tuple[tuple[str, str], ...],
                     timeout: float | None, request_id: str) -> web.StreamResponse:
        assert self._channel is not None, "start() opens the channel"
        call = self._channel.unary_unary(route.full_method, request_serializer=type(message).SerializeToString,
                                         response_deserializer=route.response_class().FromString)
        try:
            response = await call(message, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc, request_id)
        headers = {"X-Request-Id": request_id}
        if route.form and (image := _image_of(response)) is not None:
            data, mime_type = image
            return web.Response(body=data, content_type=mime_type, headers=headers)
        if response.ByteSize() > OFFLOAD_BYTES:  # base64 of a large image: seconds of the loop's time otherwise
            body = await asyncio.get_running_loop().run_in_executor(self._parser, _to_json, response,
                                                                    route.response_body)
        else:
            body = _to_json(response, route.response_body)
        return web.Response(body=body, content_type=JSON_TYPE, headers=headers)

    async def _stream(self, request: web.Request, route: Route, message: Message,
                      metadata: tuple[tuple[str, str], ...], timeout: float | None,
                      request_id: str) -> web.StreamResponse:
        assert self._channel is not None, "start() opens the channel"
        call = self._channel.unary_stream(route.full_method, request_serializer=type(message).SerializeToString,
                                          response_deserializer=route.response_class().FromString)
        stream = call(message, metadata=metadata, timeout=timeout)
        sse = "text/event-stream" in request.headers.get("Accept", "")
        try:
            first = await _next(stream)
        except grpc.aio.AioRpcError as exc:
            return rpc_error_response(exc, request_id)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream" if sse else "application/x-ndjson",
            "Cache-Control": "no-cache", "X-Request-Id": request_id, "X-Accel-Buffering": "no"})
        try:
            await response.prepare(request)
            async for item in _chain(first, stream):
                await response.write(_event(item, route.response_body, sse))
            if sse:
                await response.write(b"event: end\ndata: {}\n\n")
            await response.write_eof()
        except grpc.aio.AioRpcError as exc:
            with contextlib.suppress(ConnectionError):
                await response.write(stream_error(exc, request_id, sse))
                await response.write_eof()
        except ConnectionError:  # the client closed the stream: an ordinary end, not an error
            stream.cancel()
            log.info("%s: the client closed the stream", route.rpc.name)
        except asyncio.CancelledError:
            stream.cancel()
            raise
        return response


def _parse(route: Route, params: dict[str, str], query: Iterable[tuple[str, str]], body: bytearray,
           content_type: str, max_fields: int) -> Message:
    """A body route's request message (in a worker thread): the body's fields counted before anything is built."""
    try:
        if route.form:
            return form_message(route, form_fields(body, content_type, max_fields), params)
        check_json_values(body, max_fields)
        return route.build_request(params, query, body)
    except RecursionError:
        raise RequestError("body: nested too deeply") from None


def _check_content_type(request: web.Request, route: Route) -> None:
    """JSON rules take ``application/json`` bodies only and form twins forms only: a page on another site can send
    neither to this server without a preflight, which CORS refuses, so it cannot make the server work for it."""
    if route.form:
        if request.content_type not in FORM_TYPES:
            raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, f"Content-Type: {route.template} takes "
                              f"{' or '.join(FORM_TYPES)}", 415)
    elif route.body and request.body_exists and request.content_type != JSON_TYPE:
        raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, f"Content-Type: {route.template} takes {JSON_TYPE} "
                          "bodies", 415)


def _is_preflight(request: web.Request) -> bool:
    """A CORS preflight: the browser asking whether it may send the request named in the headers."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


async def _next(stream: grpc.aio.UnaryStreamCall) -> Message | None:
    """The first message (None for an empty stream), so a failure before it is still a plain HTTP error."""
    async for item in stream:
        return item
    return None


async def _chain(first: Message | None, stream: grpc.aio.UnaryStreamCall) -> AsyncIterator[Message]:
    if first is None:
        return
    yield first
    async for item in stream:
        yield item


def _to_json(message: Message, response_body: str = "") -> bytes:
    target: object = message
    for name in filter(None, response_body.split(".")):
        target = getattr(target, name)
    if isinstance(target, Message):
        return proto_json.dumps(target)
    return json.dumps(target).encode()


def _image_of(message: Message) -> tuple[bytes, str] | None:
    """A response's image for the form endpoints: its first non-empty bytes field, when the message also says its
    ``mime_type`` (StylizeResponse, JobResult; a Style's thumbnail is not the answer)."""
    if "mime_type" not in message.DESCRIPTOR.fields_by_name:
        return None
    for field in message.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_BYTES and not field.is_repeated and getattr(message, field.name):
            return getattr(message, field.name), message.mime_type or "application/octet-stream"
    return None


def _event(message: Message, response_body: str, sse: bool) -> bytes:
    data = _to_json(message, response_body)
    if sse:
        return b"data: " + data + b"\n\n"
    return b'{"result": ' + data + b"}\n"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", _CSP)

