"""The HTTP port's connections: accepted up to a cap, closed when they stall, and answered in the gateway's JSON
error format when they are malformed. Whatever is served on the port (the API, the page, streams) goes through here.

asyncio's own accept loop (``loop.create_server``) accepts without limit, and when the process runs out of file
descriptors it logs ``socket.accept() out of system resource`` and retries in a way that can write hundreds of
thousands of lines a minute while keeping the event loop busy. Here the listening sockets are watched with
``loop.add_reader`` and each connection is handed to aiohttp with ``loop.connect_accepted_socket``:

- at most ``max_connections`` are open; at the cap the listener stops accepting, so new clients wait in the kernel's
  listen queue (as Go's ``LimitListener`` and nginx's ``worker_connections`` do), and resumes when one closes;
- out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) it stops accepting for half a second, and says so at most
  once every 10 seconds;
- the cap is lowered at start to fit the process's descriptor limit (raised first up to the hard limit, as the Go
  runtime does), so connections alone cannot run the process out of descriptors.

A connection (:class:`_Connection`, aiohttp's ``RequestHandler``) is closed when a request's headers take longer
than ``header_timeout`` (from connecting, or from the first byte of a later request: slow-header clients), when it
is idle longer than ``idle_timeout`` between requests (aiohttp's keep-alive timeout), or when a client has not read
a reply for ``body_timeout`` (the socket's write buffer stayed full). Pauses while a request body is received are
timed by whoever reads it (``server.http.bodies.read_body``), which alone knows that it waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from server.config import Config
from server.http.replies import error_response
from server.logs import RateLimitedLog, new_request_id, request_id_var
from server.metrics import Metrics

__all__ = ["ConnectionLimits", "HttpListener", "descriptors_for"]

log = logging.getLogger(__name__)
ACCEPT_BATCH = 64  # connections accepted per readiness callback, so a flood of them cannot monopolise the loop
OUT_OF_RESOURCES_PAUSE = 0.5  # seconds without accepting when the process is out of descriptors or memory
LOG_INTERVAL = 10.0  # seconds between two lines about the same recurring condition
#: Descriptors kept for everything but HTTP connections (gRPC clients, data files, threads) when the cap is fitted.
RESERVED_DESCRIPTORS = 256
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# What a malformed request did wrong, by aiohttp's exception: its messages quote the offending line, which may hold
# a token, so neither the reply nor the log repeats them.
_MALFORMED = {"BadHttpMethod": "not an HTTP request (unknown method)", "BadStatusLine": "malformed request line",
              "LineTooLong": "request line or header too long", "InvalidHeader": "malformed header",
              "InvalidURLError": "malformed URL", "TransferEncodingError": "malformed Transfer-Encoding",
              "ContentLengthError": "malformed Content-Length"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout: float
    body_timeout: float
    idle_timeout: float

    @classmethod
    def from_config(cls, config: Config) -> ConnectionLimits:
        return cls(config.http_max_connections, config.http_header_timeout, config.http_body_timeout,
                   config.http_idle_timeout)


def descriptors_for(connections: int) -> int:
    """How many connections fit the process's descriptor limit, after raising its soft limit towards the hard one
    when ``connections`` and the reserve need more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return connections
    return max(soft - RESERVED_DESCRIPTORS, soft // 2)


class HttpListener:
    """Accepts the HTTP port's connections for an aiohttp server (``AppRunner.server``) within ``limits``."""

    def __init__(self, server: web.Server, limits: ConnectionLimits, metrics: Metrics,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = server
        self._limits = limits
        self._metrics = metrics
        self._ssl = ssl_context
        self._max = limits.max_connections
        self._sockets: list[socket.socket] = []
        self._open = 0
        self._accepting = False
        self._stopped = False
        self._resume: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._at_cap_log = RateLimitedLog(log, LOG_INTERVAL)
        self._resources_log = RateLimitedLog(log, LOG_INTERVAL)

    @property
    def max_connections(self) -> int:
        """The cap in force (``limits.max_connections``, or less where the descriptor limit is lower)."""
        return self._max

    async def start(self, host: str, port: int) -> int:
        """Listens on ``host``:``port`` (every address ``host`` resolves to); returns the bound port."""
        self._loop = asyncio.get_running_loop()
        self._max = descriptors_for(self._limits.max_connections)
        if self._max < self._limits.max_connections:
            log.warning("--http-max-connections %d lowered to %d: the process may open only %d files (ulimit -n)",
                        self._limits.max_connections, self._max, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self._sockets = await self._loop.run_in_executor(None, _listening_sockets, host, port)
        self._accept()
        return self._sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stops accepting and closes the listening sockets; open connections are the aiohttp server's to end."""
        self._pause()
        self._stopped = True
        for sock in self._sockets:
            sock.close()
        for task in list(self._connecting):
            task.cancel()

    # --- accepting -------------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        if self._accepting or self._loop is None or self._stopped:
            return
        self._accepting = True
        for sock in self._sockets:
            if sock.fileno() >= 0:
                self._loop.add_reader(sock.fileno(), self._on_readable, sock)

    def _pause(self, seconds: float | None = None) -> None:
        """Stops accepting, for ``seconds`` or until :meth:`_accept`."""
        if self._accepting and self._loop is not None:
            for sock in self._sockets:
                if sock.fileno() >= 0:
                    self._loop.remove_reader(sock.fileno())
            self._accepting = False
        if seconds is not None and self._loop is not None and self._resume is None:
            self._resume = self._loop.call_later(seconds, self._resume_accepting)
        elif seconds is None and self._resume is not None:
            self._resume.cancel()
            self._resume = None

    def _resume_accepting(self) -> None:
        self._resume = None
        if self._open < self._max:
            self._accept()

    def _on_readable(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._open >= self._max:
                self._at_cap_log.warning("the HTTP port has %d open connections (--http-max-connections): new ones "
                                         "wait until one closes", self._open)
                self._pause()
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._accept_failed(exc)
                return
            self._admit(conn)

    def _accept_failed(self, exc: OSError) -> None:
        if exc.errno in _OUT_OF_RESOURCES:
            self._resources_log.warning("the HTTP port cannot accept connections: %s (%d open); pausing %.1f s "
                                        "(raise `ulimit -n`, or lower --http-max-connections)",
                                        errno.errorcode.get(exc.errno or 0, exc), self._open,
                                        OUT_OF_RESOURCES_PAUSE)
        else:
            self._resources_log.warning("the HTTP port cannot accept connections: %s", exc)
        self._pause(OUT_OF_RESOURCES_PAUSE)

    def _admit(self, conn: socket.socket) -> None:
        assert self._loop is not None
        conn.setblocking(False)
        self._open += 1
        self._metrics.http_connections.set(self._open)
        released = False

        def release() -> None:  # once per connection: when it closes, or when its TLS handshake fails
            nonlocal released
            if not released:
                released = True
                self._release()

        task = self._loop.create_task(self._connect(conn, release))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket, release: Callable[[], None]) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            await loop.connect_accepted_socket(
                lambda: _Connection(self._server, loop=loop, limits=self._limits, release=release,
                                    closed_early=self._closed_early),
                conn, ssl=self._ssl, ssl_handshake_timeout=self._limits.header_timeout if self._ssl else None)
        except (OSError, TimeoutError, asyncio.CancelledError) as exc:  # a failed TLS handshake, or stop()
            log.debug("HTTP connection ended before its first request: %s", type(exc).__name__)
            conn.close()
            release()
        except Exception:
            log.exception("HTTP connection could not be set up")
            conn.close()
            release()

    def _release(self) -> None:
        self._open -= 1
        self._metrics.http_connections.set(self._open)
        if not self._accepting and self._resume is None and self._open < self._max:
            self._accept()

    def _closed_early(self, reason: str) -> None:
        self._metrics.http_closed.labels(reason).inc()


def _listening_sockets(host: str, port: int, backlog: int = 128) -> list[socket.socket]:
    """Non-blocking listening sockets on every address ``host`` resolves to (all interfaces for ``""``), as
    ``loop.create_server`` binds them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Connection(web.RequestHandler):
    """One HTTP connection: aiohttp's handler plus the header and send timeouts, and JSON answers (with request ids)
    where aiohttp would answer malformed requests in plain text quoting the offending header."""

    def __init__(self, server: web.Server, *, loop: asyncio.AbstractEventLoop, limits: ConnectionLimits,
                 release: Callable[[], None], closed_early: Callable[[str], None]) -> None:
        # lingering_time: how long the unread rest of a refused body is read and dropped before closing (so the
        # client sees the refusal, not a reset): a stalled client is not waited for longer than in a body.
        super().__init__(server, loop=loop, keepalive_timeout=limits.idle_timeout, access_log=None,
                         lingering_time=min(limits.body_timeout, 10.0))
        self._event_loop = loop
        self._limits = limits
        self._release = release
        self._closed_early = closed_early
        self._busy = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None

    # The gateway's middleware says when a request's handler runs: between requests the connection is waiting for
    # headers (or idle), and a stalled reply is timed by the send timer.
    def begin_request(self) -> None:
        self._busy = True
        self._cancel(self._header_timer)
        self._header_timer = None

    def end_request(self) -> None:
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel(self._header_timer)
        self._cancel(self._send_timer)
        self._release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._busy and self._header_timer is None:  # the first bytes of a request on an idle connection
            self._await_headers()
        super().data_received(data)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self._event_loop.call_later(self._limits.body_timeout, self._reader_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel(self._send_timer)
        self._send_timer = None

    def _await_headers(self) -> None:
        self._header_timer = self._event_loop.call_later(self._limits.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._busy:
            self._closed_early("header_timeout")
            self.force_close()

    def _reader_stalled(self) -> None:
        """The client has not read for ``body_timeout``: abort, as a graceful close would wait for it to read."""
        self._send_timer = None
        self._closed_early("client_not_reading")
        if self.transport is not None:
            self.transport.abort()

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (4xx) or whose handler raised (5xx): here JSON with a
        request id, logged in one line without the request's contents (malformed) or with the traceback (a fault)."""
        request_id = new_request_id()
        request_id_var.set(request_id)
        if status >= 500:
            code = grpc.StatusCode.DEADLINE_EXCEEDED if status == 504 else grpc.StatusCode.INTERNAL
            text = f"internal error (request id {request_id})"
            log.error("HTTP request failed", exc_info=exc)
        else:
            code, text = grpc.StatusCode.INVALID_ARGUMENT, _MALFORMED.get(type(exc).__name__, "malformed request")
            log.info("malformed HTTP request from %s: %s", request.remote, text)
            self._closed_early("malformed")
        if request.writer.output_size > 0:  # a reply is under way: nothing can be said any more
            raise ConnectionError("reply already started")
        response = error_response(code, text, request_id, status)
        response.force_close()
        return response

    def log_exception(self, *args: object, **kwargs: object) -> None:
        """aiohttp's other error log (a failure outside any handler): one line for malformed input, whose message
        quotes it; a traceback for anything else."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, (HttpProcessingError, web.RequestPayloadError)):  # e.g. the rest of a malformed body
            log.info("malformed HTTP request: %s", type(exc).__name__)
        else:
            log.error(*args, **kwargs)  # type: ignore[arg-type]
