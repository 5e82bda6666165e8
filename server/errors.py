"""The one map from exceptions to gRPC status codes, and the decorators that apply it to every RPC.

Servicer methods raise precise exceptions (their own, or the model's ``ValueError`` subclasses); the ``unary`` and
``server_stream`` decorators turn them into ``context.abort(code, message)``, count the call in the metrics and
log internal faults with the request id, so no method repeats a try/except.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from model.errors import (
    Cancelled,
    IncompatibleModelError,
    InvalidImageError,
    InvalidOptionError,
    WeightsError,
)
from server import batcher
from server.jobs.store import StoreUnavailable
from server.logs import new_request_id, request_id_var
from server.metrics import transport_of

__all__ = [
    "DEADLINE_SLACK",
    "REQUEST_ID_HEADER",
    "AlreadyExists",
    "DataLoss",
    "DeadlineExpired",
    "FailedPrecondition",
    "InvalidArgument",
    "LimitReached",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "ShuttingDown",
    "begin_request",
    "bounded",
    "server_stream",
    "status_for",
    "unary",
]

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
# gRPC cancels a call's handler when its deadline passes, by a clock read a few microseconds apart from the one the
# server measures the deadline with: a cancellation this close to the deadline is the deadline, not the client.
DEADLINE_SLACK = 0.05  # seconds


class InvalidArgument(ValueError):
    """A request field is missing or out of range; the message names the field."""


class NotFound(LookupError):
    """A style, model or job id that does not exist."""


class AlreadyExists(Exception):
    """A name that must be new is taken."""


class FailedPrecondition(Exception):
    """The request is valid but the resource is not in a state that allows it (e.g. a result not ready)."""


class DataLoss(Exception):
    """A stored object (a style, a model) is damaged; the message names the object, never a server path."""


class PermissionDenied(Exception):
    """The caller may not do this (e.g. a dataset path that escapes the datasets root)."""


class Overloaded(Exception):
    """All workers are busy and the wait queue is full."""


class LimitReached(Exception):
    """A caller used up a per-call allowance (streams open at once, frames per stream); the message names the flag."""


class DeadlineExpired(Exception):
    """The call's deadline passed before or during the work."""


class ShuttingDown(Exception):
    """The server is draining and takes no new work."""


_MAP: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidOptionError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidImageError, grpc.StatusCode.INVALID_ARGUMENT),
    (IncompatibleModelError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (DataLoss, grpc.StatusCode.DATA_LOSS),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (LimitReached, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExpired, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (batcher.DeadlineExpired, grpc.StatusCode.DEADLINE_EXCEEDED),  # dropped before its batch ran
    (batcher.BatcherClosed, grpc.StatusCode.UNAVAILABLE),  # the server is stopping
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
    (Cancelled, grpc.StatusCode.CANCELLED),
    (WeightsError, grpc.StatusCode.FAILED_PRECONDITION),
)


MAX_MESSAGE = 512  # characters of a status message (and of its log line)


def bounded(message: str) -> str:
    """Messages may quote what a client sent (an id, a name): control characters are escaped (a newline cannot
    split a log line or a reply) and the length is bounded (a 1 MB id must not make a 1 MB message)."""
    if not message.isprintable():
        message = message.encode("unicode_escape").decode("ascii")
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "... (truncated)"


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for ``exc``; anything unexpected is INTERNAL with a request id."""
    for kind, code in _MAP:
        if isinstance(exc, kind):
            return code, bounded(str(exc))
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id_var.get()})"


def _observe(servicer: Any, method: str, code: grpc.StatusCode, started: float,
             context: grpc.aio.ServicerContext) -> None:
    """Counts the call in the servicer's metrics (``servicer.runtime.metrics``), when it has them."""
    metrics = getattr(getattr(servicer, "runtime", None), "metrics", None)
    if metrics is not None:
        metrics.observe_call(method, code.name, time.perf_counter() - started, transport_of(context.peer()))


def begin_request(context: grpc.aio.ServicerContext) -> str:
    """Sets (and returns) the call's request id: the caller's ``x-request-id`` when sane, else a fresh one."""
    incoming = dict(context.invocation_metadata() or ()).get(REQUEST_ID_HEADER, "")
    request_id = new_request_id(incoming)
    request_id_var.set(request_id)
    return request_id


def _begin(context: grpc.aio.ServicerContext) -> float:
    begin_request(context)
    return time.perf_counter()


async def _fail(
    servicer: Any, method: str, exc: BaseException, context: grpc.aio.ServicerContext, started: float
) -> None:
    code, message = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("%s failed", method, exc_info=exc)
    else:
        log.info("%s -> %s: %s", method, code.name, message)
    _observe(servicer, method, code, started, context)
    # Every failure carries its request id, so a client's bug report finds the server's log line.
    await context.abort(code, message, trailing_metadata=((REQUEST_ID_HEADER, request_id_var.get()),))


T = TypeVar("T")
Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]]


@contextlib.asynccontextmanager
async def _call(servicer: Any, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    """One RPC's request id, error mapping (exceptions become ``context.abort``) and call metrics."""
    started = _begin(context)
    try:
        yield
    except asyncio.CancelledError:  # gRPC ended the call: the client went away, or its deadline passed
        code = grpc.StatusCode.DEADLINE_EXCEEDED if _deadline_passed(context) else grpc.StatusCode.CANCELLED
        log.info("%s -> %s", method, code.name)
        _observe(servicer, method, code, started, context)
        raise
    except grpc.aio.AbortError:
        raise
    except Exception as exc:
        await _fail(servicer, method, exc, context, started)  # raises AbortError
    else:
        # One line per successful call too, so the request id a client saw leads to the server's log.
        log.info("%s -> OK in %.1f ms", method, (time.perf_counter() - started) * 1000)
        _observe(servicer, method, grpc.StatusCode.OK, started, context)


def _deadline_passed(context: grpc.aio.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= DEADLINE_SLACK


def unary(fn: Handler[T]) -> Handler[T]:
    """Wraps an async unary servicer method with the error map, request ids and call metrics."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        async with _call(self, fn.__name__, context):
            return await fn(self, request, context)
        raise AssertionError("unreachable: failures abort")

    return wrapper


def server_stream(fn: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    """The same for async-generator methods: server-streaming ones, and bidirectional ones, whose ``request`` is the
    iterator of the client's messages."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[T]:
        async with _call(self, fn.__name__, context):
            async for item in fn(self, request, context):
                yield item

    return wrapper
