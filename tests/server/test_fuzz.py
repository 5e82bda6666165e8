"""Property tests: any value of any field of any RPC gets an answer that is not INTERNAL or UNKNOWN, and the server
stays healthy. Requests are built from the message descriptors (every field, nested messages, oneofs, optionals)
with edge values: real tiny images of odd sizes and formats, garbage, huge and negative numbers, NaN and infinities,
unknown enum values, ids with newlines, long strings. A real server with tight limits answers them; few examples per
RPC keep the suite to about a minute.

The HTTP port gets the same treatment byte for byte: any method, path, headers, content type and body (valid JSON of
those messages, forms, garbage), framed right or wrong, is answered in the JSON error format with a request id, never
with a 500, and the server stays healthy and serves HTTP after."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from server.http.rules import routes_for
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import (
    RunningServer,
    base_config,
    encode,
    free_port,
    http_request,
    make_datasets,
    make_image,
    raw_http,
)

pytestmark = pytest.mark.slow  # property-based fuzzing of every RPC

BAD = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
VALID = [encode(make_image(32, 32, 1)), encode(make_image(24, 40, 2)), encode(make_image(40, 40, 3), "JPEG")]
IMAGES = [
    *VALID * 3, encode(make_image(48, 24, 2), "JPEG"), encode(make_image(20, 40, 3), "WEBP"),
    encode(make_image(9, 9, 4)), encode(make_image(8, 40, 5)), encode(make_image(1, 1, 6)),
    encode(Image.new("RGB", (2000, 1))), encode(Image.new("RGB", (64, 64), (9, 9, 9))),
    encode(make_image(64, 64, 7, mode="RGBA")), encode(make_image(30, 30, 8, mode="P")),
    encode(make_image(16, 16, 9, mode="I;16")), encode(make_image(40, 40, 1), "GIF"),
    encode(make_image(32, 32, 1))[:50], b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
]
STRINGS = ["", "a", "faces", "house-style", "avatars", "default", "gram", "mean_std", "0" * 32, "f" * 32,
           "evil-id\n", "../../etc/passwd", "/abs", "x" * 300, "\u00e9\u4e2d\U0001f600", "style\x00nul", "y" * 5000]
INTS = [0, 0, 1, 2, 2, 3, 8, 9, 15, 16, 17, 32, 32, 63, 64, 65, 128, 512, 6000, 2**31 - 1, 2**32 - 1]
FLOATS = [0.5, 1.0, 0.5, 1.0, 2.0, 0.0, 0.01, -1.0, 1e-30, 1e30, math.nan, math.inf, -math.inf]
ENUMS = [0, 1, 2, 3, 99, 2**31 - 1]
UNSIGNED = {FieldDescriptor.TYPE_UINT32: 2**32 - 1, FieldDescriptor.TYPE_UINT64: 2**64 - 1}
SIGNED = {FieldDescriptor.TYPE_INT32: 2**31 - 1, FieldDescriptor.TYPE_INT64: 2**63 - 1}


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    kind = field.type
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.sampled_from(IMAGES)
    if kind == FieldDescriptor.TYPE_STRING:
        return st.sampled_from(STRINGS)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from(ENUMS)
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.sampled_from(FLOATS)
    if kind in UNSIGNED:
        return st.sampled_from([i for i in INTS if i <= UNSIGNED[kind]])
    if kind in SIGNED:
        return st.sampled_from([-1, -(2**31), *[i for i in INTS if i <= SIGNED[kind]]])
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    raise AssertionError(f"no strategy for {field.full_name}")


@st.composite
def _message(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> dict:
    values: dict = {}
    oneof_choice = {o.name: draw(st.sampled_from([*o.fields, *o.fields, None])) for o in descriptor.oneofs
                    if not o.name.startswith("_")}  # "_x" oneofs are proto3 optionals
    for field in descriptor.fields:
        real_oneof = field.containing_oneof is not None and not field.containing_oneof.name.startswith("_")
        if real_oneof and oneof_choice[field.containing_oneof.name] is not field:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        if field.message_type is not None and (depth >= 2 or field.message_type.full_name.startswith("google.")):
            continue
        if not real_oneof and draw(st.integers(0, 4)) == 4:  # mostly set; the simplest example sets all
            continue  # unset (optional fields absent, scalars at their zero value)
        if field.is_repeated:
            values[field.name] = draw(st.lists(_value(field, depth), min_size=1, max_size=4))
        else:
            values[field.name] = draw(_value(field, depth))
    return values


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy:
    cls = getattr(pb, descriptor.name)
    return _message(descriptor, depth).map(lambda values: cls(**values))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, random_model) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    make_datasets(data / "datasets")
    config = base_config(data_dir=str(data), metrics_port=0, http_port=free_port(), http_header_timeout=2.0,
                         http_body_timeout=1.0, max_image_pixels=256 * 256, max_output_pixels=128 * 128,
                         max_style_pixels=128 * 128, max_styles=3, gatys_max_pixels=64 * 64,
                         gatys_max_iterations=3, gatys_default_iterations=2, train_max_iterations=3,
                         train_default_iterations=2, train_max_batch_pixels=2 * 32 * 32, train_max_processes=1,
                         max_queued_jobs=4, job_workers=1)
    server = RunningServer(config, random_model)
    stub = server.stub()
    stub.PutStyle(pb.PutStyleRequest(image=IMAGES[0], style_size=32), timeout=60)  # something to find
    yield server
    assert health(server) == health_pb2.HealthCheckResponse.SERVING
    server.stop(1.0)


def health(server: RunningServer, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(server.channel())
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30).status


def answer(call) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            for _ in zip(range(3), result, strict=False):  # a stream: its first few messages
                pass
            result.cancel()
    except grpc.RpcError as exc:
        assert exc.code() not in BAD, f"{exc.code()}: {exc.details()}"
        return exc.code()
    return grpc.StatusCode.OK


RPCS = [name for name in pb.DESCRIPTOR.services_by_name["StyleTransfer"].methods_by_name]
FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                        HealthCheck.data_too_large])


@pytest.mark.parametrize("rpc", RPCS)
def test_no_request_is_an_internal_error(fuzz_server: RunningServer, rpc: str) -> None:
    method = pb.DESCRIPTOR.services_by_name["StyleTransfer"].methods_by_name[rpc]
    call = getattr(fuzz_server.stub(), rpc)

    one = messages(method.input_type)

    @FUZZ
    @given(request=st.lists(one, min_size=1, max_size=4) if method.client_streaming else one)
    def check(request) -> None:  # a client stream sends a few messages
        answer(lambda: call(iter(request) if method.client_streaming else request, timeout=60))

    check()
    assert health(fuzz_server) == health_pb2.HealthCheckResponse.SERVING


def test_the_fuzzed_server_still_serves(fuzz_server: RunningServer) -> None:
    reply = fuzz_server.stub().Stylize(pb.StylizeRequest(content=IMAGES[0], styles=[pb.StyleInput(image=IMAGES[1])],
                                                         style_size=32), timeout=60)
    assert (reply.width, reply.height) == (32, 32)


# --- the HTTP port ------------------------------------------------------------------------------------------------

ROUTES = routes_for(pb.DESCRIPTOR.services_by_name["StyleTransfer"])
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD", "BREW"]
ODD_PATHS = ["/", "/static/app.js", "/static/../../etc/passwd", "/static/nope", "/v1/nowhere", "//v1//stylize",
             "/v1/stylize?" + "a=1&" * 500, "/%", "/v1/styles/%ff%00", "*", "/v1/jobs/" + "x" * 3000 + ":watch"]
SEGMENTS = ["abc", "0" * 32, "%00", "..%2F..", "x" * 300, "%E9t%C3%A9", "a%0Ab", "~!$&'()*+,;=:@"]
QUERIES = ["", "?pageSize=2", "?page_size=abc", "?preview=true", "?state=JOB_STATE_RUNNING&kind=99", "?a.b.c=1",
           "?%ff=1", "?styles.weight=1", "?pageToken=%00"]
HEADER_NAMES = ["Authorization", "Grpc-Timeout", "X-Request-Id", "Origin", "Sec-Fetch-Site", "Content-Encoding",
                "Transfer-Encoding", "Expect", "Accept", "Content-Type", "Host"]
HEADER_VALUES = ["Bearer x", "Bearer \u00e9", "Basic Zm9v", "1S", "99999999H", "\u00b2S", "1n", "0m", "gzip",
                 "deflate", "br", "chunked", "identity, chunked", "100-continue", "text/event-stream", "null",
                 "https://evil.example", "cross-site", "same-origin", "", "req-1", "x" * 5000, "\x01", "a\tb"]
CONTENT_TYPES = ["application/json", "application/json; charset=latin-1", "text/plain", "", "application/*",
                 "multipart/form-data; boundary=zz", "multipart/form-data", "multipart/form-data; boundary=",
                 "multipart/form-data; boundary=\"a b\"", "multipart/mixed; boundary=zz",
                 "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=bogus"]
_VARIABLE = re.compile(r"\{[^}]*\}")


@st.composite
def _form(draw: st.DrawFn, route) -> bytes:
    """A multipart body (boundary zz) whose parts are named after the request's fields, files and text alike."""
    names = [f.name for f in route.rpc.input_type.fields] + ["style", "weight", "mask", "styles.weight", "", "x.y"]
    parts = []
    for name in draw(st.lists(st.sampled_from(names), max_size=6)):
        value = draw(st.one_of(st.sampled_from(IMAGES), st.sampled_from(STRINGS).map(str.encode)))
        filename = draw(st.sampled_from(['; filename="f.png"', "", '; filename=""']))
        head = f'--zz\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
        parts.append(head.encode() + value + b"\r\n")
    return b"".join(parts) + draw(st.sampled_from([b"--zz--\r\n", b"", b"--zz"]))


def _body(route) -> st.SearchStrategy[bytes]:
    """Bodies for ``route``: its request as proto3 JSON, a form, or garbage."""
    as_json = messages(route.rpc.input_type).map(lambda m: json_format.MessageToJson(m).encode())
    return st.one_of(as_json, _form(route), st.binary(max_size=1500), st.just(b""),
                     st.sampled_from([b"{}", b"[]", b"null", b'{"content": 1e999}', b"[" * 900 + b"]" * 900,
                                      b"alpha=0.5&style_size=32", b"\xff\xfe{}"]))


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """(method, the request's bytes): a route's path filled with odd segments (or an odd path), its method or
    another, up to five odd headers, a content type, a body, framed by Content-Length, chunked, or wrongly."""
    route = draw(st.sampled_from([*ROUTES, None]))
    if route is None:
        method, path = draw(st.sampled_from(METHODS)), draw(st.sampled_from(ODD_PATHS))
        body = draw(st.binary(max_size=300))
    else:
        path = _VARIABLE.sub(lambda _: draw(st.sampled_from(SEGMENTS)), route.template) + draw(st.sampled_from(QUERIES))
        method = draw(st.sampled_from([route.http_method] * 6 + METHODS))
        body = draw(_body(route))
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES), max_size=5))
    headers.setdefault("Content-Type", draw(st.sampled_from(CONTENT_TYPES)))
    framing = draw(st.sampled_from(["length"] * 4 + ["chunked", "length too small", "no length"]))
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        body = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    elif framing == "length too small":
        headers["Content-Length"] = str(len(body) // 2)
    request = http_request(method, path, headers, body, length=framing == "length")
    return method, request


HTTP_FUZZ = settings(FUZZ, max_examples=300)


@pytest.mark.slow
def test_no_http_request_gets_a_500_or_a_plain_text_error(fuzz_server: RunningServer) -> None:
    port = fuzz_server.server.http_port

    @HTTP_FUZZ
    @given(request=http_requests())
    def check(request: tuple[str, bytes]) -> None:
        method, raw = request
        reply = raw_http(port, raw, timeout=60, body=method != "HEAD")
        assert reply.status != 500 and reply.status < 600, (reply.status, reply.body[:300])
        if reply.status >= 400 and method != "HEAD":
            error = reply.json()
            assert error["status"] not in ("INTERNAL", "UNKNOWN"), error
            assert error["message"] and error["requestId"] == reply.headers["x-request-id"], error

    check()
    assert health(fuzz_server) == health_pb2.HealthCheckResponse.SERVING
    form = (b"--zz\r\nContent-Disposition: form-data; name=content; filename=c.png\r\n\r\n" + IMAGES[0]
            + b"\r\n--zz\r\nContent-Disposition: form-data; name=style; filename=s.png\r\n\r\n" + IMAGES[1]
            + b"\r\n--zz\r\nContent-Disposition: form-data; name=style_size\r\n\r\n32\r\n--zz--\r\n")
    served = raw_http(port, http_request("POST", "/v1/stylize:form", {"Content-Type": CONTENT_TYPES[5]}, form))
    assert served.status == 200 and served.headers["content-type"] == "image/png", served.body[:300]
