"""The ``google.api.http`` mapping, read from the service descriptor: which HTTP request calls which RPC, and how the
path, query string, body or form become the request message.

Nothing here names an RPC: routes come from the proto's annotations, so an RPC or field added to the proto is served
as soon as the stubs are regenerated. An RPC without a rule is still reachable the way grpc-gateway's unbound
methods are, at ``POST /<package>.<Service>/<Method>`` with the whole request as the body.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from server.http import proto_json

__all__ = ["FormFile", "RequestError", "Route", "form_message", "routes_for"]

FORM_VERB = "form"
_SEGMENT = r"[^/]+"


class RequestError(ValueError):
    """The HTTP request cannot become the RPC's request message (answered as INVALID_ARGUMENT)."""


@dataclasses.dataclass(frozen=True)
class FormFile:
    """An uploaded file of a multipart form."""

    data: bytes
    content_type: str = ""


@dataclasses.dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC: ``method`` + a path template compiled to ``pattern``."""

    http_method: str
    template: str
    pattern: re.Pattern[str]
    path_fields: tuple[str, ...]  # field paths of the template's variables, in group order
    body: str  # "" (no body), "*" (the whole request) or one field path
    response_body: str
    rpc: MethodDescriptor
    form: bool = False  # the multipart/urlencoded twin of a body "*" rule

    @property
    def full_method(self) -> str:
        """The gRPC method path, e.g. ``/styletransfer.v1.StyleTransfer/Stylize``."""
        return f"/{self.rpc.containing_service.full_name}/{self.rpc.name}"

    @property
    def streaming(self) -> bool:
        return self.rpc.server_streaming

    def match(self, http_method: str, raw_path: str) -> dict[str, str] | None:
        """The template's variables (percent-decoded) when this route serves the request, else None."""
        if http_method != self.http_method:
            return None
        found = self.pattern.fullmatch(raw_path)
        if found is None:
            return None
        return {field: urllib.parse.unquote(value) for field, value in zip(self.path_fields, found.groups(),
                                                                           strict=True)}

    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.rpc.input_type)

    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.rpc.output_type)

    def build_request(self, params: Mapping[str, str], query: Iterable[tuple[str, str]],
                      body: bytes | bytearray) -> Message:
        """The request message from path variables, query parameters and a JSON body, as the rule says."""
        request = self.request_class()()
        if self.body:
            target = request if self.body == "*" else _sub_message(request, self.body)
            try:
                proto_json.parse_body(body, target)
            except (json_format.ParseError, ValueError) as exc:  # JSON, UTF-8 and base64 errors are ValueErrors
                raise RequestError(f"body: {exc}") from None
        values: dict[str, Any] = {}
        if self.body != "*":
            for name, value in query:
                _put(values, request.DESCRIPTOR, _split(name), value, append=True)
        for name, value in params.items():
            _put(values, request.DESCRIPTOR, name.split("."), value, append=False)
        _merge(request, values)
        return request


def _split(name: str) -> list[str]:
    return [part for part in name.split(".") if part]


def _sub_message(message: Message, path: str) -> Message:
    for name in path.split("."):
        message = getattr(message, name)
    return message


def routes_for(service: ServiceDescriptor) -> list[Route]:
    """Every route of ``service``, those with a custom verb (``:cancel``) first so ``{id}`` does not swallow it.
    Client-streaming RPCs have none (StylizeStream): a request body is one message."""
    routes: list[Route] = []
    for rpc in service.methods:
        if rpc.client_streaming:  # a request body is one message; client streams need another transport
            continue
        options = rpc.GetOptions()
        if options.HasExtension(annotations_pb2.http):
            rule = options.Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                routes.extend(_bindings(rpc, binding))
        else:
            path = f"/{service.full_name}/{rpc.name}"
            routes.append(Route("POST", path, re.compile(re.escape(path)), (), "*", "", rpc))
    return sorted(routes, key=lambda r: (":" not in r.template.rsplit("/", 1)[-1], -r.template.count("/")))


def _bindings(rpc: MethodDescriptor, rule: http_pb2.HttpRule) -> list[Route]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return []
    if kind == "custom":
        http_method, template = rule.custom.kind.upper(), rule.custom.path
    else:
        http_method, template = kind.upper(), getattr(rule, kind)
    pattern, fields = compile_template(template)
    routes = [Route(http_method, template, pattern, fields, rule.body, rule.response_body, rpc)]
    if rule.body == "*" and ":" not in template.rsplit("/", 1)[-1]:
        form_template = f"{template}:{FORM_VERB}"
        form_pattern, _ = compile_template(form_template)
        routes.append(Route(http_method, form_template, form_pattern, fields, "*", rule.response_body, rpc, True))
    return routes


_VARIABLE = re.compile(r"\{([A-Za-z0-9_.]+)(?:=([^}]*))?\}")


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A regex for an HttpRule path template (``/v1/{name=shelves/*}/books:verb``) and its variables' field paths.

    ``*`` is one path segment, ``**`` any number of them, as the template grammar in google/api/http.proto says.
    """
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} must start with '/'")
    fields: list[str] = []
    out: list[str] = []
    position = 0
    for found in _VARIABLE.finditer(template):
        out.append(_literal(template[position:found.start()]))
        fields.append(found.group(1))
        out.append(f"({_segments(found.group(2) or '*')})")
        position = found.end()
    out.append(_literal(template[position:]))
    return re.compile("".join(out)), tuple(fields)


def _literal(text: str) -> str:
    return "/".join(_segments(part) if part in ("*", "**") else re.escape(part) for part in text.split("/"))


def _segments(pattern: str) -> str:
    parts = []
    for part in pattern.split("/"):
        if part == "**":
            parts.append(".+")
        elif part == "*":
            parts.append(_SEGMENT)
        else:
            parts.append(re.escape(part))
    return "/".join(parts)


def _field(descriptor: Any, name: str) -> FieldDescriptor:
    """A field by its proto name or JSON (camelCase) name."""
    field = descriptor.fields_by_name.get(name) or next(
        (f for f in descriptor.fields if f.json_name == name), None)
    if field is None:
        raise RequestError(f"{descriptor.full_name} has no field {name!r}")
    return field


def _put(values: dict[str, Any], descriptor: Any, path: list[str], raw: str, *, append: bool) -> None:
    """Stores a string parameter at a field path of a JSON-shaped dict, converted to the field's JSON type."""
    if not path:
        raise RequestError("empty parameter name")
    field = _field(descriptor, path[0])
    if len(path) > 1:
        if field.message_type is None or _is_repeated(field):
            raise RequestError(f"{'.'.join(path)}: {field.name} is not a singular message field")
        _put(values.setdefault(field.name, {}), field.message_type, path[1:], raw, append=append)
        return
    value = _scalar(field, raw)
    if _is_repeated(field) and append:
        values.setdefault(field.name, []).append(value)
    elif _is_repeated(field):
        values[field.name] = [value]
    else:
        values[field.name] = value


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _scalar(field: FieldDescriptor, raw: str) -> Any:
    """A text value as the JSON value ``json_format`` expects for ``field``."""
    kind = field.type
    try:
        if kind == FieldDescriptor.TYPE_BOOL:
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "on", "off"):
                raise ValueError(f"not a boolean: {raw!r}")
            return lowered in ("true", "1", "on")
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return raw if raw in ("NaN", "Infinity", "-Infinity") else float(raw)
        if kind == FieldDescriptor.TYPE_ENUM:
            return int(raw) if raw.lstrip("-").isdigit() else raw
        if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                              FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
            return int(raw)
    except ValueError as exc:
        raise RequestError(f"{field.name}: {exc}") from None
    return raw  # strings, base64 bytes, and message types with a string JSON form (Timestamp, Duration)


def _merge(request: Message, values: dict[str, Any]) -> None:
    if not values:
        return
    extra = type(request)()
    try:
        json_format.ParseDict(values, extra)
    except json_format.ParseError as exc:
        raise RequestError(str(exc)) from None
    request.MergeFrom(extra)


def form_message(route: Route, fields: Iterable[tuple[str, str | FormFile]], params: Mapping[str, str]) -> Message:
    """The request from a multipart or urlencoded form whose field names are the request's field paths.

    Files fill bytes fields; a file given for a message field fills that message's first bytes field, so
    ``style=@starry.jpg`` sets ``styles[i].image``. A repeated field may be named in the singular (``style`` for
    ``styles``), and a field of the one message field that has it by its own name (``weight`` for ``styles.weight``).
    Elements are filled in order: a name that is already set in the current element (or whose ``oneof`` is) starts
    the next one, so ``style=@a.jpg weight=0.7 style=@b.jpg weight=0.3`` gives two styles.
    """
    request = route.request_class()()
    values: dict[str, Any] = {}
    for name, value in fields:
        _form_put(values, request.DESCRIPTOR, _split(name), value)
    try:
        proto_json.parse(values, request)
    except (json_format.ParseError, ValueError) as exc:
        raise RequestError(str(exc)) from None
    _merge(request, _params(request, params))
    return request


def _params(request: Message, params: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in params.items():
        _put(values, request.DESCRIPTOR, name.split("."), value, append=False)
    return values


def _form_field(descriptor: Any, name: str) -> FieldDescriptor:
    try:
        return _field(descriptor, name)
    except RequestError:
        plural = descriptor.fields_by_name.get(name + "s")
        if plural is None or not _is_repeated(plural):
            raise
        return plural


def _owner(descriptor: Any, name: str) -> FieldDescriptor | None:
    """The one message field of ``descriptor`` whose message has a field ``name`` (``weight`` -> ``styles``)."""
    owners = [f for f in descriptor.fields if f.message_type is not None and not _is_wrapper_like(f)
              and (name in f.message_type.fields_by_name or any(s.json_name == name for s in f.message_type.fields))]
    return owners[0] if len(owners) == 1 else None


def _form_put(values: dict[str, Any], descriptor: Any, path: list[str], value: str | FormFile) -> None:
    if not path:
        raise RequestError("empty form field name")
    try:
        field = _form_field(descriptor, path[0])
    except RequestError:
        owner = _owner(descriptor, path[0])
        if owner is None:
            raise
        field, path = owner, [owner.name, *path]
    rest = path[1:]
    if field.message_type is not None and not _is_wrapper_like(field):
        if not rest:
            rest = [_first_bytes_field(field)]
        if _is_repeated(field):
            elements = values.setdefault(field.name, [])
            leaf = _form_field(field.message_type, rest[0]) if len(rest) == 1 else None
            if not elements or (leaf is not None and _occupied(elements[-1], leaf)):
                elements.append({})
            _form_put(elements[-1], field.message_type, rest, value)
        else:
            _form_put(values.setdefault(field.name, {}), field.message_type, rest, value)
        return
    if rest:
        raise RequestError(f"{'.'.join(path)}: {field.name} is not a message field")
    if isinstance(value, FormFile):
        if field.type != FieldDescriptor.TYPE_BYTES:
            raise RequestError(f"{field.name}: a file was sent for a field that is not bytes")
        converted: Any = value.data  # set as is by proto_json.parse, without a base64 round trip
    else:
        converted = _scalar(field, value)
    if _is_repeated(field):
        values.setdefault(field.name, []).append(converted)
    else:
        values[field.name] = converted


def _is_wrapper_like(field: FieldDescriptor) -> bool:
    """Well-known types written as one JSON string or number (Timestamp, Duration, wrappers)."""
    return field.message_type.full_name.startswith("google.protobuf.")


def _first_bytes_field(field: FieldDescriptor) -> str:
    for sub in field.message_type.fields:
        if sub.type == FieldDescriptor.TYPE_BYTES:
            return sub.name
    raise RequestError(f"{field.name}: a value needs a sub-field name, e.g. {field.name}.<field>")


def _occupied(element: dict[str, Any], field: FieldDescriptor) -> bool:
    """True when ``field`` (or another member of its oneof) is already set in this element."""
    if field.containing_oneof is not None:
        return any(f.name in element for f in field.containing_oneof.fields)
    return field.name in element and not _is_repeated(field)
