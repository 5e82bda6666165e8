"""StylizeStream: a stream's settings, frames, pacing and responses, apart from the transport that carries them.

:class:`StreamSession` takes the client's messages as an async iterator and yields the responses. The gRPC servicer
(``server.service``) drives it with the call's messages; another transport that turns its own frames into the same
messages can drive it too. Validation, cost checks, inference workers and the error map are the unary Stylize's
(``server.stylize``, ``server.costs``, ``server.limits``, ``server.errors``); no model family is named here.

A stream runs as three parts on the event loop:

- the reader takes the client's messages. Settings are checked and their styles encoded once, on a worker; a frame's
  header is checked on receipt, and the frame waits for the worker by pacing: EVERY_FRAME keeps every frame in
  order; LIVE keeps one, and a newer frame replaces it (the replaced frame is answered as dropped at once);
- the worker stylizes one frame at a time on the inference workers (``Scheduler``; where the dynamic batcher is on,
  frames of concurrent streams share a batch);
- the writer (:meth:`StreamSession.run`) yields responses as they are ready.

A frame holds one of ``--stream-max-buffered-frames`` slots from being read until its response is sent, and the
reader takes a slot before it reads on: a stream never holds more frames than that, and a client that sends faster
than the server stylizes (or than it reads its responses) is slowed by gRPC flow control.

Errors of one frame (undecodable, over a limit) go in that frame's response. Errors of the stream (settings that
cannot be used, the frame allowance used up, an idle client) end it once the frames read before them are answered;
a draining server, the call's deadline and a cancelled call end it after the frame being stylized.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from model.errors import InvalidImageError, InvalidOptionError
from model.family import StyleModel, StyleSource, StylizeOptions
from model.images import probe_image
from model.network import StopCheck
from model.temporal import DEFAULT_STRENGTH, TemporalStabilizer, check_strength
from server.costs import check_frame
from server.errors import DeadlineExpired, InvalidArgument, LimitReached, ShuttingDown, status_for
from server.presets import model_for
from server.runtime import Runtime
from server.stylize import Outcome, Output, PostProcess, check_settings, output_of, render, style_sources
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["StreamSession"]

log = logging.getLogger(__name__)
#: Status codes that end the stream rather than fail one frame: the server, the deadline or the client is going away.
_ENDS_STREAM = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.CANCELLED})
_CLIENT_FAULTS = (InvalidArgument, InvalidOptionError, InvalidImageError)
_END = object()  # the writer's end of stream


@dataclass(frozen=True)
class Plan:
    """A settings message checked and its styles encoded: what the frames read after it are stylized with."""

    version: int  # 1 for the stream's first settings, then one more per settings message
    model: StyleModel
    options: StylizeOptions
    sources: tuple[StyleSource, ...]
    output: Output
    temporal: float | None  # stabilisation strength; None stylizes every frame on its own


@dataclass(frozen=True)
class Frame:
    sequence: int
    data: bytes
    plan: Plan
    received: float  # time.perf_counter() when the reader read it


@dataclass
class Counters:
    received: int = 0
    stylized: int = 0
    dropped: int = 0
    failed: int = 0

    def message(self) -> pb.StreamCounters:
        return pb.StreamCounters(frames_received=self.received, frames_stylized=self.stylized,
                                 frames_dropped=self.dropped, frames_failed=self.failed)


class _Waiting:
    """Frames read and not yet taken by the worker (and, for EVERY_FRAME, answers to frames refused on receipt, which
    keep their place in the order). LIVE keeps only the newest frame: :meth:`put` returns the one it replaced. How
    many wait is bounded by the stream's slots, so ``put`` never blocks."""

    def __init__(self, live: bool) -> None:
        self._live = live
        self._items: collections.deque[Frame | pb.StylizeStreamResponse] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None

    def put(self, item: Frame | pb.StylizeStreamResponse) -> Frame | None:
        replaced = self._items.pop() if self._live and self._items else None
        self._items.append(item)
        self._ready.set()
        assert replaced is None or isinstance(replaced, Frame), "LIVE answers refused frames at once"
        return replaced

    def close(self, error: BaseException | None = None) -> None:
        """No more items; once the waiting ones are taken, :meth:`get` raises ``error`` (or returns None)."""
        self._closed, self._error = True, error
        self._ready.set()

    async def get(self) -> Frame | pb.StylizeStreamResponse | None:
        while not self._items and not self._closed:
            self._ready.clear()
            await self._ready.wait()
        if self._items:
            return self._items.popleft()
        if self._error is not None:
            raise self._error
        return None


class StreamSession:
    """One StylizeStream call: ``async for response in StreamSession(...).run(messages): ...``."""

    def __init__(self, runtime: Runtime, *, deadline: float | None, cancelled: threading.Event,
                 request_id: str) -> None:
        self._runtime = runtime
        self._config = runtime.config
        self._metrics = runtime.metrics
        self._deadline = deadline  # a time.monotonic() instant, or None
        self._cancelled = cancelled
        self._request_id = request_id
        self._counters = Counters()
        self._slots = asyncio.Semaphore(runtime.config.stream_max_buffered_frames)
        self._unanswered = 0  # frames read whose response has not been sent
        self._out: asyncio.Queue[pb.StylizeStreamResponse | BaseException | object] = asyncio.Queue()
        self._plan: Plan | None = None
        self._live = False
        self._stabilizer: TemporalStabilizer | None = None
        self._stabilized_version = 0  # the plan the stabiliser belongs to

    async def run(self, messages: AsyncIterator[pb.StylizeStreamRequest]
                  ) -> AsyncIterator[pb.StylizeStreamResponse]:
        """Yields one response per frame until the client closes its side; stream errors raise (server.errors
        maps them). A client that closes without a message gets no response and an OK status."""
        reading = _Reading(messages, self._runtime.streams.closing)
        try:
            first = await self._next(reading)
            if first is None:
                return
            if first.WhichOneof("message") != "settings":
                raise InvalidArgument("settings: the first message of a stream must hold its settings")
            self._live = self._pacing(first.settings) == pb.STREAM_PACING_LIVE
            self._plan = await self._settings(first.settings)
            waiting = _Waiting(self._live)
            tasks = [asyncio.create_task(self._read(reading, waiting)), asyncio.create_task(self._work(waiting))]
            try:
                while (item := await self._out.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    item.counters.CopyFrom(self._counters.message())  # as of sending: they never go back
                    yield item
                    self._unanswered -= 1
                    self._slots.release()
            finally:
                for task in tasks:
                    task.cancel()
        finally:
            reading.close()

    # --- the reader ------------------------------------------------------------------------------------------------

    async def _read(self, reading: _Reading, waiting: _Waiting) -> None:
        """Reads frames and later settings until the client closes its side or the stream must end; either way
        ``waiting`` is closed, with the error that ends the stream if there is one."""
        try:
            while True:
                await self._slots.acquire()  # released when the frame's response is sent (or now, for settings)
                message = await self._next(reading)
                kind = None if message is None else message.WhichOneof("message")
                if kind != "frame":
                    self._slots.release()
                if message is None:
                    break
                if kind == "settings":
                    self._pacing(message.settings)
                    self._plan = await self._settings(message.settings)
                elif kind == "frame":
                    await self._frame(message.frame, waiting)
                else:
                    raise InvalidArgument("a stream message must hold settings or a frame")
            waiting.close()
        except Exception as exc:
            waiting.close(exc)

    async def _next(self, reading: _Reading) -> pb.StylizeStreamRequest | None:
        """The client's next message (None when it has closed its side), unless the server drains or the client
        says nothing for --stream-idle-timeout seconds while none of its frames is in the stream."""
        idle = self._config.stream_idle_timeout or None
        while True:
            message = await reading.next(idle)
            if message is not _Reading.TIMEOUT:
                return message
            if self._unanswered == 0:
                raise DeadlineExpired(f"no message from the client for {idle:g} s (--stream-idle-timeout)")

    def _pacing(self, settings: pb.StreamSettings) -> int:
        """The stream's pacing; a later settings message may leave it unspecified or repeat it."""
        pacing = settings.pacing or pb.STREAM_PACING_EVERY_FRAME
        if pacing not in (pb.STREAM_PACING_LIVE, pb.STREAM_PACING_EVERY_FRAME):
            raise InvalidArgument(f"settings.pacing {pacing} is not LIVE or EVERY_FRAME")
        if self._plan is not None and settings.pacing and (pacing == pb.STREAM_PACING_LIVE) != self._live:
            raise InvalidArgument("settings.pacing: fixed by the stream's first settings; open a new stream")
        return pacing

    async def _settings(self, settings: pb.StreamSettings) -> Plan:
        """Checks a settings message and encodes its styles, once for the frames that follow it (on a worker)."""
        runtime = self._runtime
        try:
            # The styles' presets choose their model; else the named one (may load a trained model).
            model = await asyncio.to_thread(model_for, runtime.presets, settings, runtime.models.get)
            options = check_settings(settings, runtime, model)
            temporal = _temporal_strength(settings.temporal)
            timed = await runtime.scheduler.run(
                lambda stop: style_sources(runtime, model, settings, options, stop),
                deadline=self._deadline, cancelled=self._cancelled, bounded=False)
        except _CLIENT_FAULTS as exc:
            raise InvalidArgument(f"settings.{exc}") from None
        version = self._plan.version + 1 if self._plan is not None else 1
        return Plan(version, model, options, tuple(timed.value), output_of(settings), temporal)

    async def _frame(self, frame: pb.StreamFrame, waiting: _Waiting) -> None:
        """Counts a frame and checks its header; a bad frame is answered (LIVE: at once, EVERY_FRAME: in its place),
        a good one waits for the worker (LIVE: replacing the one waiting, which is answered as dropped)."""
        received = time.perf_counter()
        if self._counters.received >= self._config.stream_max_frames:
            raise LimitReached(f"the stream sent {self._counters.received} frames, the most one stream may "
                               f"(--stream-max-frames); open a new stream")
        sequence = frame.sequence if frame.HasField("sequence") else self._counters.received
        self._counters.received += 1
        self._unanswered += 1
        assert self._plan is not None
        self._count(self._plan, "received")
        item = Frame(sequence, frame.image, self._plan, received)
        try:
            self._check_frame(frame)
        except Exception as exc:
            failed = self._failed(item, exc)
            if self._live:
                self._out.put_nowait(failed)
            else:
                waiting.put(failed)
            return
        replaced = waiting.put(item)
        if replaced is not None:
            self._counters.dropped += 1
            self._count(replaced.plan, "dropped")
            self._out.put_nowait(self._response(replaced, dropped=True))

    def _check_frame(self, frame: pb.StreamFrame) -> None:
        cfg = self._config
        if not frame.image:
            raise InvalidArgument("frame.image: an image is required")
        width, height = probe_image(frame.image, field="frame.image", max_pixels=cfg.stream_max_frame_pixels)
        assert self._plan is not None
        check_frame("frame.image", width, height, self._plan.options.content_size, cfg,
                    self._plan.model.capabilities.min_side)

    # --- the worker ------------------------------------------------------------------------------------------------

    async def _work(self, waiting: _Waiting) -> None:
        """Stylizes the waiting frames one at a time, in order, until the reader closes ``waiting``."""
        try:
            while (item := await waiting.get()) is not None:
                if isinstance(item, Frame):
                    item = await self._stylize(item)
                self._out.put_nowait(item)
            self._out.put_nowait(_END)
        except Exception as exc:
            self._out.put_nowait(exc)

    async def _stylize(self, frame: Frame) -> pb.StylizeStreamResponse:
        """One frame's response: its image, or its error when the error is the frame's own (others raise)."""
        plan = frame.plan
        post = self._post(plan)
        runtime = self._runtime

        def work(stop: StopCheck) -> Outcome:
            return render(runtime, plan.model, frame.data, "frame.image", lambda: plan.sources, plan.options,
                          plan.output, stop, max_pixels=self._config.stream_max_frame_pixels, post=post)

        try:
            timed = await runtime.scheduler.run(work, deadline=self._deadline, cancelled=self._cancelled,
                                                bounded=False)
        except Exception as exc:
            if status_for(exc)[0] in _ENDS_STREAM:
                raise
            return self._failed(frame, exc)
        out = timed.value
        self._counters.stylized += 1
        self._count(plan, "stylized")
        response = self._response(frame, outcome=out, queue_ms=timed.queue_seconds * 1000)
        self._metrics.stream_frame_latency.labels(plan.model.info.name).observe(response.timing.total_ms / 1000)
        return response

    def _post(self, plan: Plan) -> PostProcess | None:
        """What runs between the model and the encoder for a frame of ``plan``: the stream's temporal stabiliser,
        a fresh one for each settings message (the previous look is not carried into new settings). Frames run one
        at a time, so the stabiliser's state is only ever touched by one worker."""
        if plan.temporal is None:
            return None
        if self._stabilizer is None or self._stabilized_version != plan.version:
            self._stabilizer = TemporalStabilizer(plan.temporal)
            self._stabilized_version = plan.version
        return self._stabilizer.stabilize

    # --- responses -------------------------------------------------------------------------------------------------

    def _failed(self, frame: Frame, exc: Exception) -> pb.StylizeStreamResponse:
        code, message = status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.error("StylizeStream frame %d failed", frame.sequence, exc_info=exc)
        else:
            log.debug("StylizeStream frame %d -> %s: %s", frame.sequence, code.name, message)
        self._counters.failed += 1
        self._count(frame.plan, "failed")
        error = pb.FrameError(code=code.value[0], status=code.name, message=message)
        return self._response(frame, error=error)

    def _response(self, frame: Frame, *, outcome: Outcome | None = None, queue_ms: float = 0.0,
                  dropped: bool = False, error: pb.FrameError | None = None) -> pb.StylizeStreamResponse:
        info = frame.plan.model.info
        timing = pb.Timing(total_ms=(time.perf_counter() - frame.received) * 1000, queue_ms=queue_ms)
        image = {}
        if outcome is not None:
            image = {"image": outcome.data, "mime_type": outcome.mime_type, "width": outcome.width,
                     "height": outcome.height}
            timing.decode_ms, timing.compute_ms, timing.encode_ms = (outcome.decode_ms, outcome.compute_ms,
                                                                     outcome.encode_ms)
        return pb.StylizeStreamResponse(
            sequence=frame.sequence, timing=timing, dropped=dropped, error=error,
            model=info.name, untrained=info.untrained, settings_version=frame.plan.version,
            request_id=self._request_id, **image)

    def _count(self, plan: Plan, event: str) -> None:
        self._metrics.stream_frames.labels(plan.model.info.name, event).inc()


class _Reading:
    """The client's messages, read one at a time with a timeout, and the server's drain signal beside them."""

    TIMEOUT = object()

    def __init__(self, messages: AsyncIterator[pb.StylizeStreamRequest], closing: asyncio.Event) -> None:
        self._messages = aiter(messages)
        self._pending: asyncio.Future | None = None  # a read that outlived a timeout is picked up by the next call
        self._closing = asyncio.ensure_future(closing.wait())

    async def next(self, timeout: float | None) -> pb.StylizeStreamRequest | object | None:
        """The next message; None when the client has closed its side; TIMEOUT after ``timeout`` seconds (the read
        goes on); ShuttingDown when the server drains."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self._messages, None))
        done, _ = await asyncio.wait({self._pending, self._closing}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._pending in done:
            read, self._pending = self._pending, None
            return read.result()
        if self._closing in done:
            raise ShuttingDown("server is shutting down; open the stream again")
        return self.TIMEOUT

    def close(self) -> None:
        for future in (self._pending, self._closing):
            if future is not None:
                future.cancel()


def _temporal_strength(temporal: pb.TemporalOptions) -> float | None:
    """The stabilisation strength the settings ask for (the stabiliser's default when unset); None when off."""
    if not temporal.enabled:
        if temporal.HasField("strength"):
            raise InvalidArgument("temporal.strength: set temporal.enabled too")
        return None
    if not temporal.HasField("strength"):
        return DEFAULT_STRENGTH
    try:
        return check_strength(temporal.strength)
    except InvalidOptionError as exc:  # named as the stream's field
        raise InvalidArgument("temporal.strength: " + str(exc).removeprefix(f"{exc.option}: ")) from None

