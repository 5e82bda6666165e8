"""The HTTP/JSON gateway and the playground page, on ``--http-port``, in the gRPC server's event loop (aiohttp).

Same code path as gRPC: every HTTP call becomes a real gRPC call to this server over a private Unix socket (a
directory only this process's user can open), so the interceptors (bearer-token auth, and any added later), the
servicers' validation, limits, deadlines, message-size limits, request ids and error map are the very ones gRPC
clients get. The cost is one protobuf encode/decode and an HTTP/2 hop through the kernel, well under a millisecond
beside a stylization. The servicer tells the two transports apart by the peer address (``server.metrics``).

HTTP specifics: ``Authorization`` and ``X-Request-Id`` are forwarded as gRPC metadata, ``Grpc-Timeout`` (gRPC's
format, e.g. ``30S`` or ``500m``) becomes the call's deadline, proto3 JSON both ways (``json_format``), status codes
mapped as Google's HTTP guidelines do, errors as ``{"code", "status", "message", "requestId"}``. Server-streaming
RPCs answer with server-sent events (``Accept: text/event-stream``) or newline-delimited ``{"result": ...}`` objects
as grpc-gateway does. Cross-origin callers are answered only for the origins ``--http-cors-origins`` lists
(``server.http.cors``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from aiohttp import BodyPartReader, web
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from server.config import Config
from server.http.cors import CorsPolicy
from server.http.rules import FormFile, RequestError, Route, form_message, routes_for
from server.logs import new_request_id
from server.metrics import Metrics
from server.tls import http_ssl_context

__all__ = ["HTTP_STATUS", "Gateway", "parse_grpc_timeout"]

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
REQUEST_ID_HEADER = "x-request-id"
TRANSPORT = "http"
API_ROUTE = "api"  # the catch-all route of the RPCs, as opposed to the page and its static files

#: gRPC status -> HTTP status, as google.rpc.Code documents and grpc-gateway and Envoy's transcoder apply it.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# The page loads only its own files; images are data:/blob: URLs made by the page itself.
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def parse_grpc_timeout(value: str) -> float:
    """Seconds from a ``grpc-timeout`` value: up to 8 digits and a unit (H, M, S, m, u, n)."""
    digits, unit = value[:-1], value[-1:]
    if not digits.isdigit() or len(digits) > 8 or unit not in _TIMEOUT_UNITS:
        raise RequestError(f"Grpc-Timeout {value!r}: expected up to 8 digits and a unit (H, M, S, m, u or n)")
    return int(digits) * _TIMEOUT_UNITS[unit]


class _CallFailed(Exception):
    """A gateway-side failure (bad JSON, bad header) answered like the RPC's own errors."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Gateway:
    """Serves the proto's HTTP rules and the playground; calls this server's gRPC port over a Unix socket."""

    def __init__(self, config: Config, metrics: Metrics, service: ServiceDescriptor) -> None:
        self._config = config
        self._metrics = metrics
        self._routes = routes_for(service)
        self._cors = CorsPolicy(config.cors_origins)
        self._socket_dir = tempfile.mkdtemp(prefix="styletransfer-gw-")  # mode 0700: only this user connects
        self.grpc_address = f"unix:{os.path.join(self._socket_dir, 'grpc.sock')}"
        self._channel: grpc.aio.Channel | None = None
        self._runner: web.AppRunner | None = None
        # Base64 in JSON is 4/3 of the bytes; the gRPC message limit still applies to the decoded request.
        self._max_body = config.max_message_bytes * 4 // 3 + 1024 * 1024
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC_DIR, append_version=True)
        app.router.add_route("*", "/{path:.*}", self._dispatch, name=API_ROUTE)
        app.on_response_prepare.append(_security_headers)
        if self._cors.enabled:  # off: not even Vary, responses stay exactly as before
            app.on_response_prepare.append(self._cors_headers)
        return app

    async def start(self) -> None:
        """Opens the channel to the gRPC server's Unix socket (added by the server) and listens on --http-port."""
        size = self._config.max_message_bytes
        self._channel = grpc.aio.insecure_channel(self.grpc_address, options=[
            ("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)])
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=self._config.grace_period)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._config.host, self._config.http_port,
                           ssl_context=http_ssl_context(self._config))
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Closes the listener and the channel; the gRPC server has already drained the calls in flight."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._channel is not None:
            await self._channel.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

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

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        if self._cors.enabled and _is_preflight(request):
            return self._preflight(request, request_id)
        found = self._route(request)
        if found is None:
            allowed = bool(self._methods_at(request.rel_url.raw_path))
            code = grpc.StatusCode.UNIMPLEMENTED if allowed else grpc.StatusCode.NOT_FOUND
            message = (f"{request.method} is not allowed on {request.path}" if allowed
                       else f"no RPC is mapped to {request.method} {request.path}")
            return _error_response(code, message, request_id, 405 if allowed else 404)
        route, params = found
        started = time.perf_counter()
        try:
            message, timeout = await self._request_message(request, route, params)
        except _CallFailed as exc:
            log.info("%s -> %s: %s", route.rpc.name, exc.code.name, exc)
            self._metrics.observe_call(route.rpc.name, exc.code.name, time.perf_counter() - started, TRANSPORT)
            return _error_response(exc.code, str(exc), request_id)
        metadata = _metadata(request, request_id)
        if route.streaming:
            return await self._stream(request, route, message, metadata, timeout, request_id)
        return await self._unary(route, message, metadata, timeout, request_id)

    def _preflight(self, request: web.Request, request_id: str) -> web.Response:
        """204 with the CORS grant for an allowed origin; 403 for any other (module docstring of server.http.cors)."""
        methods = self._methods_at(request.rel_url.raw_path)
        if not methods:
            return _error_response(grpc.StatusCode.NOT_FOUND, f"no RPC is mapped to {request.path}", request_id)
        origin = request.headers.get("Origin", "")
        headers = self._cors.preflight_headers(origin, methods)
        if headers is None:
            return _error_response(grpc.StatusCode.PERMISSION_DENIED,
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

    async def _request_message(self, request: web.Request, route: Route, params: dict[str, str]
                               ) -> tuple[Message, float | None]:
        try:
            timeout_header = request.headers.get("grpc-timeout")
            timeout = parse_grpc_timeout(timeout_header) if timeout_header else None
            if route.form:
                return form_message(route, await _form_fields(request, self._max_body), params), timeout
            return route.build_request(params, request.query.items(), await request.read()), timeout
        except RequestError as exc:
            raise _CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        except web.HTTPRequestEntityTooLarge as exc:
            raise _CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request body too large: {exc.text}") from None

    async def _unary(self, route: Route, message: Message, metadata: tuple[tuple[str, str], ...],
                     timeout: float | None, request_id: str) -> web.StreamResponse:
        assert self._channel is not None, "start() opens the channel"
        call = self._channel.unary_unary(route.full_method, request_serializer=type(message).SerializeToString,
                                         response_deserializer=route.response_class().FromString)
        try:
            response = await call(message, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return _rpc_error_response(exc, request_id)
        headers = {"X-Request-Id": request_id}
        if route.form and (image := _image_of(response)) is not None:
            data, mime_type = image
            return web.Response(body=data, content_type=mime_type, headers=headers)
        body = _to_json(response, route.response_body)
        return web.Response(body=body, content_type="application/json", headers=headers)

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
            return _rpc_error_response(exc, request_id)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream" if sse else "application/x-ndjson",
            "Cache-Control": "no-cache", "X-Request-Id": request_id, "X-Accel-Buffering": "no"})
        await response.prepare(request)
        try:
            async for item in _chain(first, stream):
                await response.write(_event(item, route.response_body, sse))
            if sse:
                await response.write(b"event: end\ndata: {}\n\n")
        except grpc.aio.AioRpcError as exc:
            await response.write(_stream_error(exc, request_id, sse))
        except (ConnectionResetError, asyncio.CancelledError):
            stream.cancel()  # the HTTP client went away: end the gRPC call too
            raise
        await response.write_eof()
        return response


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


def _metadata(request: web.Request, request_id: str) -> tuple[tuple[str, str], ...]:
    metadata = [(REQUEST_ID_HEADER, request_id)]
    if authorization := request.headers.get("Authorization"):
        metadata.append(("authorization", authorization))
    return tuple(metadata)


async def _form_fields(request: web.Request, max_size: int) -> list[tuple[str, str | FormFile]]:
    """A multipart or urlencoded form's fields in order (files as :class:`FormFile`), at most ``max_size`` bytes."""
    if not request.content_type.startswith("multipart/"):
        return list((await request.post()).items())  # type: ignore[arg-type]
    fields: list[tuple[str, str | FormFile]] = []
    reader = await request.multipart()
    budget = max_size
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise RequestError("form: nested multipart parts or parts without a name are not supported")
        data = await part.read()
        budget -= len(data)
        if budget < 0:
            raise web.HTTPRequestEntityTooLarge(max_size=max_size, actual_size=max_size - budget)
        if part.filename is not None:
            fields.append((part.name, FormFile(bytes(data), part.headers.get("Content-Type", ""))))
        else:
            try:
                fields.append((part.name, data.decode(part.get_charset("utf-8"))))
            except (UnicodeDecodeError, LookupError):
                raise RequestError(f"form field {part.name!r}: not text in its charset") from None
    return fields


def _to_json(message: Message, response_body: str = "") -> bytes:
    target: object = message
    for name in filter(None, response_body.split(".")):
        target = getattr(target, name)
    if isinstance(target, Message):
        return json_format.MessageToJson(target, always_print_fields_with_no_presence=True, indent=None).encode()
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


def _request_id_of(exc: grpc.aio.AioRpcError, fallback: str) -> str:
    trailers = dict(exc.trailing_metadata() or ())
    return str(trailers.get(REQUEST_ID_HEADER, fallback))


def _error_body(code: grpc.StatusCode, message: str, request_id: str) -> bytes:
    """google.rpc.Status's ``code`` and ``message``, plus the status name and the request id."""
    return json.dumps({"code": code.value[0], "status": code.name, "message": message,
                       "requestId": request_id}).encode()


def _error_response(code: grpc.StatusCode, message: str, request_id: str,
                    status: int | None = None) -> web.Response:
    headers = {"X-Request-Id": request_id}
    if code is grpc.StatusCode.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="styletransfer"'
    return web.Response(status=status or HTTP_STATUS.get(code, 500), body=_error_body(code, message, request_id),
                        content_type="application/json", headers=headers)


def _rpc_error_response(exc: grpc.aio.AioRpcError, request_id: str) -> web.Response:
    return _error_response(exc.code(), exc.details() or exc.code().name, _request_id_of(exc, request_id))


def _stream_error(exc: grpc.aio.AioRpcError, request_id: str, sse: bool) -> bytes:
    body = _error_body(exc.code(), exc.details() or exc.code().name, _request_id_of(exc, request_id))
    return b"event: error\ndata: " + body + b"\n\n" if sse else b'{"error": ' + body + b"}\n"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", _CSP)
