"""Bearer-token authentication: one check (:class:`TokenCheck`), applied to gRPC calls by an interceptor and to HTTP
requests by the gateway before it reads a body. Health checks and reflection stay open (probes and ``grpcurl list``
must work without a token). Tokens are compared in constant time and never logged."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from server.errors import REQUEST_ID_HEADER, begin_request
from server.metrics import Metrics, transport_of

__all__ = ["BearerTokenInterceptor", "TokenCheck", "read_tokens"]

log = logging.getLogger(__name__)
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_TOKEN = re.compile(r"[\x21-\x7e]+")


def read_tokens(path: str) -> list[str]:
    """One token per line; blank lines and '#' comments are ignored. An empty file is an error (locks everyone out)."""
    lines = Path(path).read_text().splitlines()
    tokens = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not tokens:
        raise ValueError(f"{path}: no tokens")
    if not all(_TOKEN.fullmatch(token) for token in tokens):  # gRPC metadata and HTTP headers carry no others
        raise ValueError(f"{path}: tokens are visible ASCII characters without spaces")
    return tokens


class TokenCheck:
    """Whether an ``authorization`` value (gRPC metadata or HTTP header) carries one of the accepted tokens."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens]

    def allows(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        # surrogateescape: an HTTP header with bytes that are not UTF-8 is compared as sent, never an error
        given = token.strip().encode("utf-8", "surrogateescape")
        return any(hmac.compare_digest(given, known) for known in self._tokens)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenCheck, metrics: Metrics) -> None:
        self._tokens = tokens
        self._metrics = metrics

    def _allowed(self, metadata: tuple) -> bool:
        return self._tokens.allows(dict(metadata or ()).get("authorization", ""))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if details.method.startswith(OPEN_PREFIXES) or handler is None or self._allowed(details.invocation_metadata):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        return _denying(handler, lambda context: self._refused(method, context))

    def _refused(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Logs and counts a refused call (inside the call, so the log line carries its request id)."""
        log.info("%s refused: missing or unknown bearer token", method)
        self._metrics.observe_call(method, "UNAUTHENTICATED", 0.0, transport_of(context.peer()))


def _denying(handler: grpc.RpcMethodHandler,
             observe: Callable[[grpc.aio.ServicerContext], None]) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that counts the call with ``observe`` and answers UNAUTHENTICATED."""

    async def deny_unary(request: object, context: grpc.aio.ServicerContext) -> None:
        request_id = begin_request(context)
        observe(context)
        # Like every failed call, the refusal carries its request id (server/errors.py).
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid 'authorization: Bearer <token>' is required",
                            trailing_metadata=((REQUEST_ID_HEADER, request_id),))

    async def deny_stream(request: object, context: grpc.aio.ServicerContext):
        await deny_unary(request, context)
        yield  # pragma: no cover - abort raises first

    kwargs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(deny_stream, **kwargs)
    if handler.stream_stream:  # the request is the iterator of the client's messages, left unread
        return grpc.stream_stream_rpc_method_handler(deny_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(deny_unary, **kwargs)
