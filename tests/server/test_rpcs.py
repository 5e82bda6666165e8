"""Every StyleTransfer RPC through a real server: results, validation and status codes."""

from __future__ import annotations

import io
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from server.logs import request_id_var
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, bomb_png, encode, make_image, png_bytes

CONTENT = png_bytes(48, 40, seed=1)
STYLE = png_bytes(40, 40, seed=2)
STYLE2 = png_bytes(32, 48, seed=3)


def stylize(server: RunningServer, **fields) -> pb.StylizeResponse:
    fields.setdefault("content", CONTENT)
    fields.setdefault("styles", [pb.StyleInput(image=STYLE)])
    return server.stub().Stylize(pb.StylizeRequest(**fields), timeout=60)


def error_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_stylize_returns_an_image_of_the_content_size(server: RunningServer) -> None:
    reply = stylize(server)
    image = Image.open(io.BytesIO(reply.image))
    assert (reply.width, reply.height) == image.size == (48, 40)
    assert reply.mime_type == "image/png" and image.format == "PNG"
    assert reply.untrained and reply.model == "default" and reply.request_id
    t = reply.timing
    assert t.compute_ms > 0 and t.total_ms >= t.compute_ms and t.decode_ms >= 0 and t.encode_ms > 0


@pytest.mark.parametrize("fmt, pil", [(pb.IMAGE_FORMAT_JPEG, "JPEG"), (pb.IMAGE_FORMAT_WEBP, "WEBP")])
def test_output_formats(server: RunningServer, fmt: int, pil: str) -> None:
    reply = stylize(server, output_format=fmt, quality=70)
    assert Image.open(io.BytesIO(reply.image)).format == pil


def test_options_reach_the_model(server: RunningServer) -> None:
    base = stylize(server).image
    assert stylize(server, alpha=0.0).image != base
    assert stylize(server, preserve_color=True).image != base
    assert stylize(server, color_preservation=pb.COLOR_PRESERVATION_LUMINANCE).image != base
    two = stylize(server, styles=[pb.StyleInput(image=STYLE, weight=1), pb.StyleInput(image=STYLE2, weight=3)])
    assert two.image != base
    mask = encode(Image.new("L", (48, 40), 255))
    assert stylize(server, styles=[pb.StyleInput(image=STYLE, mask=mask)]).width == 48
    resized = stylize(server, content_size=20)
    assert (resized.width, resized.height) == (24, 20)
    assert stylize(server, styles=[pb.StyleInput(image=STYLE, weight=0)]).image == base  # 0 reads as 1 when alone


def test_repeated_inline_style_hits_the_cache(server: RunningServer) -> None:
    # past the response cache, which would answer the identical second call before any style is encoded
    stylize(server, style_size=32, skip_response_cache=True)
    stylize(server, style_size=32, skip_response_cache=True)
    assert server.metric("styletransfer_style_cache_hits_total", cache="inline") >= 1
    assert server.metric("styletransfer_style_cache_misses_total", cache="inline") >= 1


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"content": b""}, "content"),
        ({"content": b"garbage"}, "content: is not a PNG"),
        ({"styles": []}, "styles"),
        ({"styles": [pb.StyleInput()]}, "styles[0]"),
        ({"styles": [pb.StyleInput(image=STYLE, weight=-1)]}, "styles[0].weight"),
        ({"styles": [pb.StyleInput(image=b"x")]}, "styles[0].image"),
        ({"styles": [pb.StyleInput(image=STYLE, mask=b"x")]}, "styles[0].mask"),
        ({"styles": [pb.StyleInput(image=STYLE, weight=0), pb.StyleInput(image=STYLE2, weight=0)]}, "weight"),
        ({"alpha": 1.5}, "alpha"),
        ({"quality": 101}, "quality"),
        ({"output_format": 9}, "output_format"),
        ({"color_preservation": 7}, "color_preservation"),
        ({"content_size": 100_000}, "content_size"),
        ({"styles": [pb.StyleInput(image=STYLE)] * 9}, "at most 8 styles"),
        ({"content": bomb_png(30_000, 30_000)}, "over the limit"),
    ],
)
def test_invalid_requests_name_the_field(server: RunningServer, fields: dict, needle: str) -> None:
    err = error_of(lambda: stylize(server, **fields))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.details()


def test_unknown_style_and_model_are_not_found(server: RunningServer) -> None:
    err = error_of(lambda: stylize(server, styles=[pb.StyleInput(style_id="0" * 32)]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = error_of(lambda: stylize(server, model="nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.details()


def test_style_registry(server: RunningServer) -> None:
    stub = server.stub()
    put = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32, display_name="starry"), timeout=30)
    # the stored image's size (40 x 40), and the size models encode it at
    assert len(put.style_id) == 32 and (put.width, put.height, put.style_size) == (40, 40, 32)
    again = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32, display_name="other"), timeout=30)
    assert again.style_id == put.style_id and again.display_name == "starry"  # idempotent
    assert stub.GetStyle(pb.GetStyleRequest(style_id=put.style_id)).display_name == "starry"
    by_id = stylize(server, styles=[pb.StyleInput(style_id=put.style_id)], style_size=32)
    inline = stylize(server, styles=[pb.StyleInput(image=STYLE)], style_size=32)
    assert by_id.image == inline.image
    coral = stylize(server, styles=[pb.StyleInput(style_id=put.style_id)], preserve_color=True)
    assert coral.image
    assert server.metric("styletransfer_style_cache_hits_total", cache="registered") >= 1
    stub.DeleteStyle(pb.DeleteStyleRequest(style_id=put.style_id))
    assert error_of(lambda: stub.GetStyle(pb.GetStyleRequest(style_id=put.style_id))).code() == \
        grpc.StatusCode.NOT_FOUND
    assert error_of(lambda: stub.DeleteStyle(pb.DeleteStyleRequest(style_id=put.style_id))).code() == \
        grpc.StatusCode.NOT_FOUND
    assert error_of(lambda: stub.PutStyle(pb.PutStyleRequest())).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_styles_pages(server: RunningServer) -> None:
    stub = server.stub()
    ids = [stub.PutStyle(pb.PutStyleRequest(image=png_bytes(16, 16, seed=s), style_size=16)).style_id
           for s in range(5)]
    seen, token, pages = [], "", 0
    while True:
        reply = stub.ListStyles(pb.ListStylesRequest(page_size=2, page_token=token))
        seen += [s.style_id for s in reply.styles]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert seen == ids and pages == 3
    err = error_of(lambda: stub.ListStyles(pb.ListStylesRequest(page_token="???")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_models_describes_the_random_model(server: RunningServer) -> None:
    reply = server.stub().ListModels(pb.ListModelsRequest())
    assert reply.default_model == "default"
    (model,) = reply.models
    assert model.untrained and model.is_default and model.device == "cpu" and model.dtype == "float32"
    assert len(model.encoder_sha256) == 64 and model.encoder_source.startswith("random(")


def test_health_and_reflection(server: RunningServer) -> None:
    channel = server.channel()
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "styletransfer.v1.StyleTransfer"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                          timeout=5)
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"styletransfer.v1.StyleTransfer", "grpc.health.v1.Health"} <= names


def test_unimplemented_rpcs_answer_unimplemented_when_jobs_are_off(server: RunningServer) -> None:
    err = error_of(lambda: server.stub().GetJob(pb.GetJobRequest(id="x"), timeout=5))
    assert err.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND)


def test_metrics_count_calls_by_code(server: RunningServer) -> None:
    stylize(server)
    error_of(lambda: stylize(server, alpha=2.0))
    assert server.metric("styletransfer_requests_total", method="Stylize", code="OK", transport="grpc") == 1
    assert server.metric("styletransfer_requests_total", method="Stylize", code="INVALID_ARGUMENT",
                         transport="grpc") == 1
    text = server.metrics()
    for name in ("styletransfer_request_duration_seconds_bucket", "styletransfer_compute_seconds_count",
                 "styletransfer_queue_wait_seconds_count", "styletransfer_inflight_requests",
                 "styletransfer_queued_requests", "styletransfer_image_pixels_bucket", "process_resident_memory_bytes"):
        assert name in text, name
    assert server.metric("styletransfer_model_info", model="default", family="adain", version="random",
                         device="cpu", dtype="float32", untrained="true") == 1


def test_big_message_is_refused(start_server) -> None:
    server = start_server(max_message_bytes=64 * 1024)
    big = encode(make_image(256, 256, seed=9), "PNG", compress_level=0)
    assert len(big) > 64 * 1024
    err = error_of(lambda: stylize(server, content=big))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_errors_carry_the_request_id_the_caller_sent(server: RunningServer) -> None:
    request = pb.StylizeRequest(content=png_bytes(24, 24, 1), styles=[pb.StyleInput(image=png_bytes(24, 24, 2))],
                                alpha=3.0)
    with pytest.raises(grpc.RpcError) as info:
        server.stub().Stylize(request, timeout=30, metadata=(("x-request-id", "trace-42"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())["x-request-id"] == "trace-42"


def test_successful_calls_are_logged_with_their_request_id(server: RunningServer) -> None:
    seen: list[tuple[str, str]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # runs in the call's context: its request id is set
            seen.append((record.getMessage(), request_id_var.get()))

    handler = Capture(logging.INFO)
    logger = logging.getLogger("server.errors")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        server.stub().ListModels(pb.ListModelsRequest(), timeout=30, metadata=(("x-request-id", "trace-43"),))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert [m for m, rid in seen if rid == "trace-43" and m.startswith("ListModels -> OK")]
