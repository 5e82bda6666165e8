"""StylizeStream against a real server: pacing (LIVE drops stale frames, EVERY_FRAME keeps order and bounds what it
holds), per-frame errors, settings, limits, auth, draining and metrics. Timing-free: a gated model decides when each
frame finishes."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from server.config import ConfigError, load_config
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import Gate, code_of, encode, make_image, png_bytes, wait_for

STYLE = png_bytes(32, 32, 2)
FRAMES = [png_bytes(40, 32, seed) for seed in range(12)]
LIVE, EVERY_FRAME = pb.STREAM_PACING_LIVE, pb.STREAM_PACING_EVERY_FRAME


def settings(**fields) -> pb.StylizeStreamRequest:
    fields.setdefault("styles", [pb.StyleInput(image=STYLE)])
    fields.setdefault("style_size", 32)
    return pb.StylizeStreamRequest(settings=pb.StreamSettings(**fields))


def frame(image: bytes, sequence: int | None = None) -> pb.StylizeStreamRequest:
    message = pb.StreamFrame(image=image)
    if sequence is not None:
        message.sequence = sequence
    return pb.StylizeStreamRequest(frame=message)


def stream(stub, messages: Iterable[pb.StylizeStreamRequest], **kwargs) -> list[pb.StylizeStreamResponse]:
    return list(stub.StylizeStream(iter(messages), timeout=kwargs.pop("timeout", 120), **kwargs))


def failure(call) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the stream was expected to fail")


class Sender:
    """A client's side of a stream that the test feeds message by message (``close`` ends it)."""

    def __init__(self, stub, first: pb.StylizeStreamRequest, **kwargs) -> None:
        self._queue: queue.Queue[pb.StylizeStreamRequest | None] = queue.Queue()
        self._queue.put(first)
        self.call = stub.StylizeStream(self._messages(), timeout=120, **kwargs)
        self.responses: queue.Queue[pb.StylizeStreamResponse | grpc.RpcError | None] = queue.Queue()
        threading.Thread(target=self._receive, daemon=True).start()

    def _messages(self) -> Iterator[pb.StylizeStreamRequest]:
        while (message := self._queue.get()) is not None:
            yield message

    def _receive(self) -> None:
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as exc:
            self.responses.put(exc)
        self.responses.put(None)

    def send(self, message: pb.StylizeStreamRequest) -> None:
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(None)

    def next(self) -> pb.StylizeStreamResponse:
        item = self.responses.get(timeout=60)
        assert isinstance(item, pb.StylizeStreamResponse), item
        return item

    def end(self) -> grpc.RpcError | None:
        """The stream's end: None when it ended OK, else its error (no response may come before it)."""
        item = self.responses.get(timeout=60)
        assert not isinstance(item, pb.StylizeStreamResponse), f"unexpected response {item.sequence}"
        return item


@pytest.fixture
def gate(random_model) -> Gate:
    return Gate(random_model)


# --- the basics ------------------------------------------------------------------------------------------------------

def test_frames_come_back_in_order_with_their_numbers_timings_and_counters(server) -> None:
    stub = server.stub()
    messages = [settings(output_format=pb.IMAGE_FORMAT_JPEG), *(frame(f, 100 + i) for i, f in enumerate(FRAMES[:4])),
                frame(FRAMES[4])]
    replies = stream(stub, messages)
    assert [r.sequence for r in replies] == [100, 101, 102, 103, 4]  # unset: the frame's index in the stream
    for n, reply in enumerate(replies, start=1):
        assert (reply.width, reply.height, reply.mime_type) == (40, 32, "image/jpeg")
        assert reply.image[:2] == b"\xff\xd8" and not reply.dropped and not reply.HasField("error")
        assert reply.counters.frames_stylized == n and reply.counters.frames_received >= n
        assert reply.settings_version == 1 and reply.model and reply.untrained and reply.request_id
        assert reply.timing.total_ms >= reply.timing.compute_ms > 0
    assert replies[-1].counters.frames_received == 5 and len({r.request_id for r in replies}) == 1


def test_the_style_is_encoded_once_per_stream(server) -> None:
    stub = server.stub()
    stream(stub, [settings(), *map(frame, FRAMES[:5])])
    assert server.metric("styletransfer_style_cache_misses_total", cache="inline") == 1
    assert server.metric("styletransfer_style_cache_hits_total", cache="inline") == 0


def test_a_later_settings_message_applies_from_the_next_frame(server) -> None:
    stub = server.stub()
    other_style = png_bytes(32, 32, 7)
    messages = [settings(), frame(FRAMES[0]), frame(FRAMES[1]),
                settings(styles=[pb.StyleInput(image=other_style)], content_size=16), frame(FRAMES[2])]
    replies = stream(stub, messages)
    assert [(r.settings_version, r.width) for r in replies] == [(1, 40), (1, 40), (2, 20)]


def test_a_stream_with_no_message_ends_ok_with_no_response(server) -> None:
    assert stream(server.stub(), []) == []
    assert stream(server.stub(), [settings()]) == []


def test_temporal_stabilisation_carries_the_previous_output_and_starts_afresh_with_new_settings(server) -> None:
    scene = make_image(72, 56, 5)
    panned = [encode(scene.crop((2 * i, i, 2 * i + 64, i + 48))) for i in range(3)]  # a camera panning 2 px a frame
    stub = server.stub()
    per_frame = [r.image for r in stream(stub, [settings(), *map(frame, panned)])]
    on = pb.TemporalOptions(enabled=True, strength=1.0)
    stable = stream(stub, [settings(temporal=on), *map(frame, panned), settings(temporal=on), frame(panned[2])])
    assert stable[0].image == per_frame[0]  # the first frame has nothing to carry
    assert stable[1].image != per_frame[1] and stable[2].image != per_frame[2]
    assert stable[3].image == per_frame[2]  # new settings: the stabiliser starts again


# --- pacing ----------------------------------------------------------------------------------------------------------

def test_live_drops_stale_frames_so_the_next_result_is_the_newest_frame(start_server, gate) -> None:
    server = start_server(models=[gate])
    sender = Sender(server.stub(), settings(pacing=LIVE))
    sender.send(frame(FRAMES[0]))
    gate.wait_entered()  # frame 0 is being stylized and cannot finish ...
    for i in range(1, 8):  # ... while frames 1..7 arrive: each replaces the one waiting
        sender.send(frame(FRAMES[i]))
    dropped = [sender.next() for _ in range(6)]  # answered at once, before frame 0 finishes
    assert [(r.sequence, r.dropped, r.image) for r in dropped] == [(i, True, b"") for i in range(1, 7)]
    assert dropped[-1].counters.frames_dropped == 6
    gate.release()
    assert sender.next().sequence == 0
    gate.wait_entered()
    gate.release()
    newest = sender.next()
    assert (newest.sequence, newest.dropped, newest.width) == (7, False, 40)  # one frame behind, not seven
    assert newest.counters == pb.StreamCounters(frames_received=8, frames_stylized=2, frames_dropped=6)
    sender.close()
    assert sender.end() is None
    assert server.metric("styletransfer_stream_frames_total", model=gate.info.name, event="dropped") == 6
    assert server.metric("styletransfer_stream_frames_total", model=gate.info.name, event="stylized") == 2


def test_every_frame_keeps_order_and_holds_a_bounded_number_of_frames(start_server, gate) -> None:
    server = start_server(models=[gate], stream_max_buffered_frames=3)
    pulled = []

    def fast_sender() -> Iterator[pb.StylizeStreamRequest]:
        yield settings(pacing=EVERY_FRAME)
        for i in range(40):
            pulled.append(i)
            yield frame(FRAMES[i % len(FRAMES)])

    replies = server.stub().StylizeStream(fast_sender(), timeout=120)
    gate.wait_entered()

    def received() -> float:
        return server.metric("styletransfer_stream_frames_total", model=gate.info.name, event="received")

    wait_for(lambda: received() == 3)
    wait_for(lambda: len(pulled) >= 10)  # gRPC has taken more from the sender than the server reads ...
    assert received() == 3  # ... but the server holds three frames: one being stylized, two waiting
    gate.release(40)
    assert [r.sequence for r in replies] == list(range(40))


def test_live_answers_at_once_a_frame_refused_on_receipt(start_server, gate) -> None:
    server = start_server(models=[gate])
    sender = Sender(server.stub(), settings(pacing=LIVE))
    sender.send(frame(FRAMES[0]))
    gate.wait_entered()
    sender.send(frame(FRAMES[1]))
    sender.send(frame(b"not an image"))  # refused: the waiting frame 1 stays
    refused = sender.next()
    assert (refused.sequence, refused.error.status) == (2, "INVALID_ARGUMENT")
    gate.release(2)
    assert [sender.next().sequence for _ in range(2)] == [0, 1]
    sender.close()
    assert sender.end() is None


# --- errors: a frame's own, and the stream's --------------------------------------------------------------------------

def test_a_bad_frame_gets_its_own_error_and_the_stream_goes_on(start_server) -> None:
    server = start_server(stream_max_frame_pixels=48 * 48)
    truncated = FRAMES[1][: len(FRAMES[1]) // 2]  # a valid header over a broken body: fails when decoded
    messages = [settings(), frame(FRAMES[0]), frame(b"not an image"), frame(b""), frame(png_bytes(64, 64)),
                frame(truncated), frame(png_bytes(8, 40)), frame(FRAMES[2])]
    replies = stream(server.stub(), messages)
    assert [r.sequence for r in replies] == list(range(7))  # EVERY_FRAME: errors keep their place
    assert [r.error.status or "OK" for r in replies] == ["OK", *["INVALID_ARGUMENT"] * 5, "OK"]
    assert all(r.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] for r in replies[1:6])
    assert "frame.image" in replies[1].error.message and "over the limit 2304" in replies[3].error.message
    assert "could not be decoded" in replies[4].error.message and "at least 9 px" in replies[5].error.message
    assert replies[-1].width == 40 and replies[-1].counters.frames_failed == 5


@pytest.mark.parametrize(("messages", "field"), [
    ([frame(FRAMES[0])], "settings: the first message"),
    ([settings(alpha=2.0)], "settings.alpha"),
    ([settings(styles=[])], "settings.styles"),
    ([settings(styles=[pb.StyleInput(image=b"junk")])], "settings.styles[0].image"),
    ([settings(pacing=7)], "settings.pacing"),
    ([settings(quality=101)], "settings.quality"),
    ([settings(temporal=pb.TemporalOptions(strength=0.5))], "settings.temporal.strength: set temporal.enabled"),
    ([settings(temporal=pb.TemporalOptions(enabled=True, strength=1.5))], "settings.temporal.strength: must be"),
    ([settings(), pb.StylizeStreamRequest()], "settings or a frame"),
])
def test_invalid_settings_end_the_stream_with_invalid_argument_naming_the_field(server, messages, field) -> None:
    error = failure(lambda: stream(server.stub(), messages))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field in error.details()
    assert dict(error.trailing_metadata())["x-request-id"]


def test_later_invalid_settings_end_the_stream_once_earlier_frames_are_answered(server) -> None:
    for bad, field in ((settings(alpha=-1.0), "settings.alpha"), (settings(pacing=LIVE), "settings.pacing")):
        sender = Sender(server.stub(), settings())
        for message in (frame(FRAMES[0]), frame(FRAMES[1]), bad, frame(FRAMES[2])):
            sender.send(message)
        assert [sender.next().sequence for _ in range(2)] == [0, 1]
        error = sender.end()
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field in error.details()


def test_an_unknown_model_or_style_id_ends_the_stream_with_not_found(server) -> None:
    for message in (settings(model="nope"), settings(styles=[pb.StyleInput(style_id="0" * 32)])):
        assert failure(lambda m=message: stream(server.stub(), [m])).code() == grpc.StatusCode.NOT_FOUND


# --- limits, auth, deadlines ------------------------------------------------------------------------------------------

def test_stream_limits_are_flags_checked_at_start() -> None:
    config = load_config(["--stream-max-concurrent", "3", "--stream-idle-timeout", "0"],
                         {"STYLETRANSFER_STREAM_MAX_FRAMES": "10"})
    assert (config.stream_max_concurrent, config.stream_idle_timeout, config.stream_max_frames) == (3, 0.0, 10)
    for flag, value, message in (("--stream-max-buffered-frames", "1", "at least 2"),
                                 ("--stream-max-frames", "0", "positive"),
                                 ("--stream-max-frame-pixels", "0", "positive"),
                                 ("--stream-idle-timeout", "-1", "not be negative")):
        with pytest.raises(ConfigError, match=f"{flag} must .*{message}"):
            load_config([flag, value], {})


def test_frames_per_stream_are_bounded(start_server) -> None:
    server = start_server(stream_max_frames=3)
    sender = Sender(server.stub(), settings())
    for image in FRAMES[:5]:
        sender.send(frame(image))
    assert [sender.next().sequence for _ in range(3)] == [0, 1, 2]  # the frames within the limit are answered
    error = sender.end()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--stream-max-frames" in error.details()


def test_a_message_over_the_size_limit_ends_the_stream(start_server) -> None:
    server = start_server(max_message_bytes=64 * 1024)
    sender = Sender(server.stub(), settings())
    sender.send(frame(FRAMES[0]))
    assert sender.next().sequence == 0
    sender.send(frame(FRAMES[1] + b"\0" * 100_000))  # gRPC's own limit: it ends the call
    assert sender.end().code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_concurrent_streams_are_bounded(start_server) -> None:
    server = start_server(stream_max_concurrent=2)
    open_streams = [Sender(server.stub(), settings()) for _ in range(2)]
    for sender in open_streams:
        sender.send(frame(FRAMES[0]))
        assert sender.next().sequence == 0  # both are open
    error = failure(lambda: stream(server.stub(), [settings()]))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--stream-max-concurrent" in error.details()
    assert server.metric("styletransfer_streams_active") == 2
    open_streams[0].close()
    assert open_streams[0].end() is None
    wait_for(lambda: server.metric("styletransfer_streams_active") == 1)
    assert len(stream(server.stub(), [settings(), frame(FRAMES[1])])) == 1  # a place is free again
    open_streams[1].close()


def test_an_idle_stream_ends_but_not_while_its_frame_is_being_stylized(start_server, gate) -> None:
    server = start_server(models=[gate], stream_idle_timeout=0.2)
    sender = Sender(server.stub(), settings())
    sender.send(frame(FRAMES[0]))
    gate.wait_entered()
    threading.Event().wait(0.6)  # three idle periods pass while the frame is in the model: the stream stays
    gate.release()
    assert sender.next().sequence == 0
    error = sender.end()  # then the client says nothing
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "--stream-idle-timeout" in error.details()


def test_auth_holds_for_streams(start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("secret\n")
    server = start_server(auth_tokens_file=str(tokens))
    stub = server.stub()
    error = failure(lambda: stream(stub, [settings(), frame(FRAMES[0])]))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and dict(error.trailing_metadata())["x-request-id"]
    replies = stream(stub, [settings(), frame(FRAMES[0])], metadata=(("authorization", "Bearer secret"),))
    assert replies[0].width == 40
    assert server.metric("styletransfer_requests_total", method="StylizeStream", code="UNAUTHENTICATED",
                         transport="grpc") == 1


def test_the_deadline_ends_a_stream_and_stops_its_frame(start_server, gate) -> None:
    server = start_server(models=[gate])
    stub = server.stub()
    done = threading.Event()

    def messages() -> Iterator[pb.StylizeStreamRequest]:
        yield settings()
        yield frame(FRAMES[0])
        done.wait(60)  # the client keeps the stream open past its deadline

    call = stub.StylizeStream(messages(), timeout=1.0)
    error = failure(lambda: list(call))
    done.set()
    gate.release()
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: server.metric("styletransfer_requests_total", method="StylizeStream", code="DEADLINE_EXCEEDED",
                                   transport="grpc") == 1)
    wait_for(lambda: server.metric("styletransfer_streams_active") == 0)


def test_request_ids_from_the_client_are_used(server) -> None:
    replies = stream(server.stub(), [settings(), frame(FRAMES[0])], metadata=(("x-request-id", "my-stream-1"),))
    assert replies[0].request_id == "my-stream-1"


# --- the server around streams ----------------------------------------------------------------------------------------

def test_draining_ends_streams_after_the_frame_in_flight(start_server, gate) -> None:
    server = start_server(models=[gate])
    busy, idle = Sender(server.stub(), settings()), Sender(server.stub(), settings())
    busy.send(frame(FRAMES[0]))
    busy.send(frame(FRAMES[1]))  # waits in the stream: never stylized, the server is going away
    gate.wait_entered()
    # As SIGTERM does (RunningServer.stop would close the test's channels first).
    stopping = ThreadPoolExecutor(1).submit(server._run, server.server.stop(30.0))
    assert idle.end().code() == grpc.StatusCode.UNAVAILABLE  # waiting for its client: ends at once
    gate.release()
    assert busy.next().sequence == 0  # the frame in flight is answered
    assert busy.end().code() == grpc.StatusCode.UNAVAILABLE
    stopping.result(timeout=60)


def test_frames_of_concurrent_streams_share_a_batch_where_batching_is_on(start_server) -> None:
    # On a GPU (--batching auto): here forced on. A batch runs when full, so four streams' frames meet in one.
    server = start_server(batching="on", max_batch_size=4, max_batch_delay_ms=600_000)
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: stream(server.stub(), [settings(), frame(FRAMES[i])]), range(4)))
    assert [r[0].width for r in replies] == [40] * 4
    assert server.metric("styletransfer_batch_size_count") == 1 and server.metric("styletransfer_batch_size_sum") == 4


def test_eight_concurrent_streams_keep_the_server_healthy(server) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def one(index: int) -> list[int]:
        replies = stream(server.stub(), [settings(pacing=LIVE if index % 2 else EVERY_FRAME),
                                         *(frame(FRAMES[(index + i) % len(FRAMES)]) for i in range(6))])
        return [r.sequence for r in replies if not r.dropped]

    with ThreadPoolExecutor(8) as pool:
        streams = [pool.submit(one, i) for i in range(8)]
        health = health_pb2_grpc.HealthStub(server.channel())
        serving = health_pb2.HealthCheckResponse.SERVING
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == serving
        unary = pb.StylizeRequest(content=FRAMES[0], styles=[pb.StyleInput(image=STYLE)], style_size=32)
        assert code_of(lambda: server.stub().Stylize(unary, timeout=120)) == grpc.StatusCode.OK
        results = [s.result(timeout=300) for s in streams]
    for index, sequences in enumerate(results):
        assert sequences == sorted(sequences) and sequences[-1] == 5  # in order, the newest always stylized
        if index % 2 == 0:
            assert sequences == list(range(6))
    assert server.metric("styletransfer_streams_active") == 0
    assert server.metric("styletransfer_requests_total", method="StylizeStream", code="OK", transport="grpc") == 8
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == serving
