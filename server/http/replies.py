"""The HTTP port's error format, one for every refusal: the RPCs' own errors, the gateway's, and the connection
layer's answers to malformed requests: ``{"code", "status", "message", "requestId"}`` with the id also in the
``X-Request-Id`` header, and the HTTP status Google's guidelines give the gRPC code."""

from __future__ import annotations

import json

import grpc
from aiohttp import web

from server.errors import REQUEST_ID_HEADER, bounded

__all__ = ["HTTP_STATUS", "error_body", "error_response", "rpc_error_response", "stream_error"]

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


def error_body(code: grpc.StatusCode, message: str, request_id: str) -> bytes:
    """google.rpc.Status's ``code`` and ``message``, plus the status name and the request id."""
    return json.dumps({"code": code.value[0], "status": code.name, "message": bounded(message),
                       "requestId": request_id}).encode()


def error_response(code: grpc.StatusCode, message: str, request_id: str,
                   status: int | None = None) -> web.Response:
    """An error reply; ``status`` overrides the code's HTTP status where HTTP has a more precise one (413, 415)."""
    headers = {"X-Request-Id": request_id}
    if code is grpc.StatusCode.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="styletransfer"'
    return web.Response(status=status or HTTP_STATUS.get(code, 500), body=error_body(code, message, request_id),
                        content_type="application/json", headers=headers)


def _request_id_of(exc: grpc.aio.AioRpcError, fallback: str) -> str:
    trailers = dict(exc.trailing_metadata() or ())
    return str(trailers.get(REQUEST_ID_HEADER, fallback))


def rpc_error_response(exc: grpc.aio.AioRpcError, request_id: str) -> web.Response:
    return error_response(exc.code(), exc.details() or exc.code().name, _request_id_of(exc, request_id))


def stream_error(exc: grpc.aio.AioRpcError, request_id: str, sse: bool) -> bytes:
    """The error that ends a stream already under way: an ``error`` event, or an ``{"error": ...}`` line."""
    body = error_body(exc.code(), exc.details() or exc.code().name, _request_id_of(exc, request_id))
    return b"event: error\ndata: " + body + b"\n\n" if sse else b'{"error": ' + body + b"}\n"
