"""``StyleClient.stylize_stream`` against a real server: results in order whatever the pacing, settings among the
frames, a frame's error, the stream's errors and the caller's own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clients.client import StreamSettings, StyleClient, StyleTransferError
from tests.helpers import Gate, make_image, png_bytes, wait_for

STYLE = png_bytes(32, 32, 2)


@pytest.fixture
def client(server) -> Iterator[StyleClient]:
    with StyleClient(server.target, timeout=60) as c:
        yield c


def test_any_iterable_of_images_is_stylized_in_order(client: StyleClient, tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(png_bytes(40, 30, 1))
    frames = (image for image in (str(path), path, png_bytes(40, 30, 1), make_image(40, 30, seed=1)))
    results = list(client.stylize_stream(frames, STYLE, style_size=32, output_format="jpeg", quality=80))
    assert [r.sequence for r in results] == [0, 1, 2, 3] and all(r.ok for r in results)
    assert len({r.image for r in results}) == 1  # the same pixels, however they were given
    assert results[-1].counters.stylized == 4 and results[0].mime_type == "image/jpeg"
    assert results[0].to_pil().size == (40, 30) and results[0].timing["compute_ms"] > 0
    results[0].save(tmp_path / "out.png")  # re-encoded to the format the name asks for
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_settings_among_the_frames_apply_from_the_next_frame(client: StyleClient) -> None:
    frames = [png_bytes(40, 30, 1), StreamSettings(STYLE, style_size=32, content_size=15), png_bytes(40, 30, 2)]
    results = list(client.stylize_stream(frames, STYLE, style_size=32, temporal=0.5))
    assert [(r.sequence, r.settings_version, r.width) for r in results] == [(0, 1, 40), (1, 2, 20)]


def test_live_results_come_in_order_with_the_dropped_frames(start_server, random_model) -> None:
    gate = Gate(random_model)
    server = start_server(models=[gate])

    def frames() -> Iterator[bytes]:
        yield png_bytes(40, 30, 0)
        gate.wait_entered()  # frame 0 is being stylized: the next five arrive meanwhile
        yield from (png_bytes(40, 30, i) for i in range(1, 6))

    def release_after_the_drops() -> None:
        wait_for(lambda: server.metric("styletransfer_stream_frames_total", model=gate.info.name,
                                       event="dropped") == 4)
        gate.release(2)

    threading.Thread(target=release_after_the_drops, daemon=True).start()
    with StyleClient(server.target) as client:
        results = list(client.stylize_stream(frames(), STYLE, style_size=32, pacing="live"))
    assert [(r.sequence, r.dropped) for r in results] == [(0, False), *[(i, True) for i in range(1, 5)], (5, False)]
    assert results[-1].counters.dropped == 4 and not results[1].ok and not results[1].image


def test_a_bad_frame_has_its_error_and_the_stream_goes_on(client: StyleClient) -> None:
    results = list(client.stylize_stream([png_bytes(40, 30, 1), b"junk", png_bytes(40, 30, 2)], STYLE))
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "frame.image" in error.details and error.request_id


def test_stream_errors_raise_one_exception_with_the_code(client: StyleClient) -> None:
    with pytest.raises(StyleTransferError) as info:
        list(client.stylize_stream([png_bytes(40, 30, 1)], STYLE, alpha=3.0))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "settings.alpha" in info.value.details
    with pytest.raises(ValueError, match="pacing"):
        client.stylize_stream([], STYLE, pacing="fast")  # refused before any call
    with pytest.raises(TypeError):
        client.stylize_stream([], STYLE, colour=True)


def test_an_error_of_the_frames_iterable_is_raised_after_the_frames_before_it(client: StyleClient,
                                                                               tmp_path: Path) -> None:
    def frames() -> Iterator[bytes]:
        yield png_bytes(40, 30, 1)
        yield (tmp_path / "missing.png").read_bytes()

    seen = []
    with pytest.raises(FileNotFoundError):
        for result in client.stylize_stream(frames(), STYLE):
            seen.append(result.sequence)
    assert seen == [0]


def test_stopping_early_ends_the_stream(server, client: StyleClient) -> None:
    results = client.stylize_stream((png_bytes(40, 30, i % 3) for i in range(1000)), STYLE, style_size=32)
    assert next(results).sequence == 0
    results.close()
    wait_for(lambda: server.metric("styletransfer_streams_active") == 0)
