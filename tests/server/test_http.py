"""The HTTP/JSON gateway through a real server: the proto's google.api.http rules, proto3 JSON, the multipart twin,
status mapping with request ids, deadlines, auth, metrics by transport, and job progress as server-sent events."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from server.config import ConfigError, load_config
from server.http.rules import FormFile, form_message, routes_for
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import free_port, png_bytes, wait_for

CONTENT = png_bytes(64, 48, seed=1)
STYLE = png_bytes(64, 64, seed=2)
SERVICE = pb.DESCRIPTOR.services_by_name["StyleTransfer"]


class Reply:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(method: str, url: str, **kwargs: Any) -> Reply:
    """One HTTP request with aiohttp's client (a form is given as a list of (name, value or (filename, bytes)))."""
    form = kwargs.pop("form", None)

    async def go() -> Reply:
        if form is not None:
            data = aiohttp.FormData()
            for name, value in form:
                if isinstance(value, tuple):
                    data.add_field(name, value[1], filename=value[0], content_type="image/png")
                else:
                    data.add_field(name, value)
            kwargs["data"] = data
        async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
            return Reply(response.status, response.headers, await response.read())

    return asyncio.run(go())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def http(start_server):
    return start_server(http_port=free_port())


def test_json_stylize_accepts_camel_case_and_enum_names(http) -> None:
    body = {"content": b64(CONTENT), "styles": [{"image": b64(STYLE)}], "alpha": 0.5,
            "outputFormat": "IMAGE_FORMAT_JPEG", "content_size": 32}
    reply = fetch("POST", f"{http.http_url}/v1/stylize", json=body, headers={"X-Request-Id": "req-42"})
    assert reply.status == 200, reply.body
    out = reply.json()
    assert out["mimeType"] == "image/jpeg" and out["requestId"] == "req-42" == reply.headers["X-Request-Id"]
    assert Image.open(io.BytesIO(base64.b64decode(out["image"]))).size == (out["width"], out["height"]) == (42, 32)
    assert out["untrained"] is True and set(out["timing"]) >= {"computeMs", "totalMs"}


def test_multipart_form_returns_image_bytes_with_their_content_type(http) -> None:
    form = [("content", ("photo.png", CONTENT)), ("style", ("starry.png", STYLE)), ("alpha", "0.8"),
            ("output_format", "IMAGE_FORMAT_WEBP")]
    reply = fetch("POST", f"{http.http_url}/v1/stylize:form", form=form)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "image/webp" and reply.headers["X-Request-Id"]
    assert Image.open(io.BytesIO(reply.body)).size == (64, 48)
    assert fetch("POST", f"{http.http_url}/v1/stylize:form", form=[("content", ("p.png", CONTENT))]).status == 400


def test_form_fields_fill_repeated_styles_in_order() -> None:
    route = next(r for r in routes_for(SERVICE) if r.template == "/v1/stylize:form")
    fields = [("content", FormFile(b"c")), ("style", FormFile(b"a")), ("weight", "0.7"), ("style.mask", FormFile(b"m")),
              ("style_id", "abc"), ("styles.weight", "0.3"), ("preserveColor", "true"), ("alpha", "0.25")]
    request = form_message(route, fields, {})
    assert request.content == b"c" and request.alpha == 0.25 and request.preserve_color
    first, second = request.styles
    assert (first.image, first.weight, first.mask) == (b"a", pytest.approx(0.7), b"m")
    assert (second.style_id, second.weight, second.HasField("mask")) == ("abc", pytest.approx(0.3), False)


def test_every_rpc_has_a_route_and_verbs_win_over_ids() -> None:
    routes = routes_for(SERVICE)
    assert {r.rpc.name for r in routes} == {m.name for m in SERVICE.methods if not m.client_streaming}
    matched = next((r, p) for r in routes if (p := r.match("GET", "/v1/jobs/j%201:watch")) is not None)
    assert matched[0].rpc.name == "WatchJob" and matched[1] == {"id": "j 1"}


def test_bad_requests_get_400_with_the_grpc_code_and_request_id(http) -> None:
    url = f"{http.http_url}/v1/stylize"
    for body in ({"content": b64(CONTENT), "styles": []}, {"content": "***"}, {"contnt": b64(CONTENT)}):
        reply = fetch("POST", url, json=body)
        error = reply.json()
        assert reply.status == 400 and error["code"] == 3 and error["status"] == "INVALID_ARGUMENT", error
        assert error["requestId"] == reply.headers["X-Request-Id"] and error["message"]
    json_type = {"Content-Type": "application/json"}
    assert fetch("POST", url, data=b"{not json", headers=json_type).status == 400
    assert fetch("POST", url, data=b"\xff\xfe", headers=json_type).status == 400  # not UTF-8
    assert fetch("GET", f"{http.http_url}/v1/jobs?pageSize=abc").status == 400
    assert http.metric("styletransfer_requests_total", method="Stylize", code="INVALID_ARGUMENT",
                       transport="http") == 5


def test_status_codes_map_to_http(http) -> None:
    base = http.http_url
    missing = fetch("GET", f"{base}/v1/styles/nope")
    assert missing.status == 404 and missing.json()["status"] == "NOT_FOUND"
    assert fetch("GET", f"{base}/v1/nowhere").status == 404
    assert fetch("PUT", f"{base}/v1/stylize").status == 405
    late = fetch("POST", f"{base}/v1/stylize", json={"content": b64(CONTENT), "styles": [{"image": b64(STYLE)}]},
                 headers={"Grpc-Timeout": "1n"})
    assert late.status == 504 and late.json()["status"] == "DEADLINE_EXCEEDED"
    assert fetch("POST", f"{base}/v1/stylize", json={}, headers={"Grpc-Timeout": "soon"}).status == 400


def test_styles_resource_round_trip_and_metrics_by_transport(http) -> None:
    base = http.http_url
    put = fetch("POST", f"{base}/v1/styles", json={"image": b64(STYLE), "displayName": "starry", "styleSize": 32})
    assert put.status == 200, put.body
    style = put.json()
    assert style["displayName"] == "starry" and style["styleSize"] == 32
    thumbnail = Image.open(io.BytesIO(base64.b64decode(style["thumbnail"])))
    assert thumbnail.format == "JPEG" and thumbnail.size == (64, 64)  # the stored image, never upscaled
    listed = fetch("GET", f"{base}/v1/styles?page_size=10").json()
    assert [s["styleId"] for s in listed["styles"]] == [style["styleId"]]
    stylized = fetch("POST", f"{base}/v1/stylize:form",
                     form=[("content", ("c.png", CONTENT)), ("style_id", style["styleId"])])
    assert stylized.status == 200 and stylized.headers["Content-Type"] == "image/png"
    assert fetch("DELETE", f"{base}/v1/styles/{style['styleId']}").status == 200
    assert fetch("GET", f"{base}/v1/styles/{style['styleId']}").status == 404
    http.stub().ListModels(pb.ListModelsRequest(), timeout=10)
    assert http.metric("styletransfer_requests_total", method="PutStyle", code="OK", transport="http") == 1
    assert http.metric("styletransfer_requests_total", method="ListModels", code="OK", transport="grpc") == 1
    assert http.metric("styletransfer_requests_total", method="ListModels", code="OK", transport="http") == 0


def test_bearer_tokens_apply_to_http(start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("secret\n")
    server = start_server(http_port=free_port(), auth_tokens_file=str(tokens))
    denied = fetch("GET", f"{server.http_url}/v1/models", headers={"Authorization": "Bearer expired"})
    assert denied.status == 401 and denied.headers["WWW-Authenticate"].startswith("Bearer")
    assert denied.json()["status"] == "UNAUTHENTICATED"
    allowed = fetch("GET", f"{server.http_url}/v1/models", headers={"Authorization": "Bearer secret"})
    assert allowed.status == 200 and allowed.json()["models"]
    assert fetch("GET", f"{server.http_url}/").status == 200  # the page itself is public; its calls are not
    assert server.metric("styletransfer_requests_total", method="ListModels", code="UNAUTHENTICATED",
                         transport="http") == 1


def sse_events(body: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def test_gatys_job_progress_as_server_sent_events(http) -> None:
    base = http.http_url
    job = fetch("POST", f"{base}/v1/jobs:gatys",
                json={"content": b64(CONTENT), "styles": [{"image": b64(STYLE)}], "iterations": 6,
                      "numScales": 1}).json()
    assert job["state"] == "JOB_STATE_QUEUED" and job["kind"] == "JOB_KIND_GATYS"
    watch = fetch("GET", f"{base}/v1/jobs/{job['id']}:watch", headers={"Accept": "text/event-stream"})
    assert watch.status == 200 and watch.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(watch.body)
    assert events[-1] == ("end", {})
    updates = [data for kind, data in events if kind == "message"]
    assert updates[-1]["state"] == "JOB_STATE_SUCCEEDED" and int(updates[-1]["progress"]["step"]) == 6
    steps = [int(u["progress"]["step"]) for u in updates]
    assert steps == sorted(steps) and len(updates) >= 2
    ndjson = fetch("GET", f"{base}/v1/jobs/{job['id']}:watch").body.decode().splitlines()
    assert json.loads(ndjson[-1])["result"]["state"] == "JOB_STATE_SUCCEEDED"
    result = fetch("GET", f"{base}/v1/jobs/{job['id']}/result").json()
    assert Image.open(io.BytesIO(base64.b64decode(result["image"]))).size == (64, 48)
    listed = fetch("GET", f"{base}/v1/jobs?state=JOB_STATE_SUCCEEDED&kind=JOB_KIND_GATYS").json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    missing = fetch("GET", f"{base}/v1/jobs/nope:watch", headers={"Accept": "text/event-stream"})
    assert missing.status == 404 and missing.json()["status"] == "NOT_FOUND"


def test_previews_of_a_running_job_and_cancel_by_custom_verb(start_server) -> None:
    server = start_server(http_port=free_port(), gatys_checkpoint_every=2)
    base = server.http_url
    job = fetch("POST", f"{base}/v1/jobs:gatys", json={"content": b64(CONTENT), "styles": [{"image": b64(STYLE)}],
                                                       "iterations": 2000, "numScales": 1}).json()
    wait_for(lambda: int(fetch("GET", f"{base}/v1/jobs/{job['id']}").json()["progress"]["step"]) >= 4, timeout=120)
    assert fetch("GET", f"{base}/v1/jobs/{job['id']}/result").status == 400  # FAILED_PRECONDITION: not done
    preview = fetch("GET", f"{base}/v1/jobs/{job['id']}/result?preview=true").json()
    assert preview["mimeType"] == "image/png" and (preview["width"], preview["height"]) == (64, 48)
    assert Image.open(io.BytesIO(base64.b64decode(preview["image"]))).size == (64, 48)
    cancelled = fetch("POST", f"{base}/v1/jobs/{job['id']}:cancel")
    assert cancelled.status == 200 and cancelled.json()["id"] == job["id"]
    final = fetch("GET", f"{base}/v1/jobs/{job['id']}:watch", headers={"Accept": "text/event-stream"})
    assert [d for k, d in sse_events(final.body) if k == "message"][-1]["state"] == "JOB_STATE_CANCELLED"
    assert fetch("GET", f"{base}/v1/jobs/{job['id']}/result").status == 400  # FAILED_PRECONDITION


HTTP_DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"


def test_docs_mapping_table_lists_every_route() -> None:
    text = HTTP_DOC.read_text()
    for route in routes_for(SERVICE):
        if not route.form:
            row = f"| `{route.rpc.name}` | `{route.http_method} {route.template}` |"
            assert row in text, f"add a row starting {row} to the mapping table of docs/http.md"


def test_an_rpc_without_a_rule_is_served_at_its_grpc_path() -> None:
    """RPCs added to the proto without an annotation still get a route (grpc-gateway's unbound methods)."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    proto = descriptor_pb2.FileDescriptorProto(name="unbound.proto", package="unbound.v1", syntax="proto3")
    message = proto.message_type.add(name="Thing")
    message.field.add(name="thing_id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="thingId")
    proto.service.add(name="Things").method.add(name="Touch", input_type=".unbound.v1.Thing",
                                                output_type=".unbound.v1.Thing")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    (route,) = routes_for(pool.FindServiceByName("unbound.v1.Things"))
    assert (route.http_method, route.template, route.body) == ("POST", "/unbound.v1.Things/Touch", "*")
    assert route.match("POST", "/unbound.v1.Things/Touch") == {}
    assert route.build_request({}, [], b'{"thingId": "a"}').thing_id == "a"


def test_shutdown_ends_open_event_streams(start_server) -> None:
    """A watcher's stream does not hold the server up: draining ends it with an error event, then the port closes."""
    server = start_server(http_port=free_port(), grace_period=1.0)
    base = server.http_url
    job = fetch("POST", f"{base}/v1/jobs:gatys", json={"content": b64(CONTENT), "styles": [{"image": b64(STYLE)}],
                                                       "iterations": 2000, "numScales": 1}).json()
    watch_url = f"{base}/v1/jobs/{job['id']}:watch"
    events: list[bytes] = []
    opened = threading.Event()

    async def read() -> None:
        async with aiohttp.ClientSession() as session, session.get(
                watch_url, headers={"Accept": "text/event-stream"}) as response:
            async for chunk in response.content.iter_any():
                events.append(chunk)
                opened.set()

    reader = threading.Thread(target=lambda: asyncio.run(read()), daemon=True)
    reader.start()
    assert opened.wait(60)
    server.stop(1.0)
    reader.join(30)
    assert not reader.is_alive()
    assert b"event: error" in b"".join(events)


APP = "https://app.example.com"


def cors_headers(reply: Reply) -> dict[str, str]:
    return {k.lower(): v for k, v in reply.headers.items() if k.lower().startswith("access-control-")}


def preflight(url: str, origin: str, method: str = "POST") -> Reply:
    return fetch("OPTIONS", url, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                          "Access-Control-Request-Headers": "authorization, content-type"})


@pytest.fixture
def cors(start_server):
    return start_server(http_port=free_port(), http_cors_origins=f"{APP}, http://localhost:5173")


def test_cors_preflight_grants_an_allowed_origin_the_routes_methods(cors) -> None:
    reply = preflight(f"{cors.http_url}/v1/stylize", APP)
    assert reply.status == 204, reply.body
    granted = cors_headers(reply)
    assert granted["access-control-allow-origin"] == APP and granted["access-control-allow-credentials"] == "true"
    assert granted["access-control-allow-methods"] == "POST"
    headers = {h.strip() for h in granted["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "grpc-timeout", "x-request-id"} <= headers
    assert int(granted["access-control-max-age"]) > 0 and "Origin" in reply.headers["Vary"]
    style = preflight(f"{cors.http_url}/v1/styles/abc", "http://localhost:5173", "DELETE")
    assert style.status == 204 and set(cors_headers(style)["access-control-allow-methods"].split(", ")) == {
        "GET", "DELETE"}
    assert preflight(f"{cors.http_url}/v1/nowhere", APP).status == 404


def test_cors_headers_on_responses_and_errors_for_allowed_origins_only(cors) -> None:
    ok = fetch("GET", f"{cors.http_url}/v1/models", headers={"Origin": APP})
    assert ok.status == 200 and cors_headers(ok) == {"access-control-allow-origin": APP,
                                                     "access-control-allow-credentials": "true",
                                                     "access-control-expose-headers": "x-request-id"}
    assert "Origin" in ok.headers["Vary"]
    missing = fetch("GET", f"{cors.http_url}/v1/styles/nope", headers={"Origin": APP})
    assert missing.status == 404 and cors_headers(missing)["access-control-allow-origin"] == APP
    evil = fetch("GET", f"{cors.http_url}/v1/models", headers={"Origin": "https://evil.example.com"})
    assert evil.status == 200 and cors_headers(evil) == {}  # the browser withholds the reply from the page
    refused = preflight(f"{cors.http_url}/v1/stylize", "https://evil.example.com")
    assert refused.status == 403 and cors_headers(refused) == {}
    assert refused.json()["status"] == "PERMISSION_DENIED"
    page = fetch("GET", f"{cors.http_url}/", headers={"Origin": APP})
    assert cors_headers(page) == {} and "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_cors_wildcard_allows_any_origin_without_credentials(start_server) -> None:
    server = start_server(http_port=free_port(), http_cors_origins="*")
    reply = preflight(f"{server.http_url}/v1/models", "https://anywhere.example.org", "GET")
    assert reply.status == 204 and cors_headers(reply)["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in cors_headers(reply)
    listed = fetch("GET", f"{server.http_url}/v1/models", headers={"Origin": "https://anywhere.example.org"})
    assert cors_headers(listed) == {"access-control-allow-origin": "*", "access-control-expose-headers": "x-request-id"}


def test_default_config_sends_no_cors_headers(http) -> None:
    listed = fetch("GET", f"{http.http_url}/v1/models", headers={"Origin": APP})
    assert listed.status == 200 and cors_headers(listed) == {} and "Vary" not in listed.headers
    assert preflight(f"{http.http_url}/v1/stylize", APP).status == 405  # no OPTIONS route: as without CORS


@pytest.mark.parametrize("origins", ["https://app.example.com/", "*, https://app.example.com", "app.example.com",
                                     "https://App.example.com", "null"])
def test_cors_origins_that_never_match_are_refused(origins: str) -> None:
    with pytest.raises(ConfigError, match="--http-cors-origins"):
        load_config(["--http-cors-origins", origins], {})
    assert load_config([], {"STYLETRANSFER_HTTP_CORS_ORIGINS": "https://a.example:8443,http://[::1]:3000"}
                       ).cors_origins == ("https://a.example:8443", "http://[::1]:3000")
