"""proto3 JSON (``google.protobuf.json_format``) for the gateway, with large bytes fields converted in pieces.

json_format decodes or encodes a bytes field's base64 in one call. On a 32 MB image that one call holds the GIL, and
so the event loop's thread, for a tenth of a second on an idle core and for about a second on a busy machine. Here
bytes fields over :data:`PIECE` are taken out before json_format sees them and converted in pieces, each its own
call, so the event loop gets the GIL between pieces; everything else is json_format's, as before. Form uploads (raw
bytes) are set the same way, without a base64 round trip. A JSON body is read the same way (:func:`parse_body`): long
base64 strings are cut out of it before ``json.loads`` sees the text, and decoded from the body's own pieces.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["PIECE", "dumps", "loads", "parse", "parse_body"]

#: Base64 characters converted per call (a multiple of 4; 3/4 of it in bytes): a millisecond or two of an idle core.
PIECE = 1 << 20
_URLSAFE = bytes.maketrans(b"-_", b"+/")  # json_format accepts either alphabet
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="  # both alphabets, and padding
_OTHERS = bytes(0 if code in _BASE64 else 1 for code in range(256))  # translate table: 1 marks a non-base64 byte
_QUOTE = ord('"')
Path = tuple[str | int, ...]  # field names, and indexes into repeated fields
Pieces = list[bytes | bytearray]  # a long base64 string's text, cut from a body in pieces of PIECE characters


def loads(body: bytes | bytearray) -> Any:
    """The JSON values of a body, as ``json.loads`` gives them, refusing duplicate keys as ``json_format.Parse`` does
    (ValueError)."""
    values, cut = _loads(body)
    return _restore(values, {placeholder: _text(pieces) for placeholder, pieces in cut.items()})


def parse_body(body: bytes | bytearray, message: Message) -> None:
    """``parse(loads(body), message)``, with each long base64 string decoded from the body's pieces as they are:
    joined into one str first, a 46 MB one would be a single copy of tens of milliseconds, GIL held."""
    values, cut = _loads(body)
    parse(values, message, cut)


def _loads(body: bytes | bytearray) -> tuple[Any, dict[str, Pieces]]:
    """``json.loads``'s values with a placeholder in place of each long base64 string, and the strings' pieces by
    placeholder.

    Decoding a 46 MB body and ``json.loads`` of it are two calls that hold the GIL for about a tenth of a second
    together, nearly all of it spent on one base64 string. So base64 string literals that cover a whole
    :data:`PIECE` are cut out first, a piece per call, and the small rest is parsed with a placeholder in each one's
    place. Wherever that could differ from the plain parse (invalid JSON or UTF-8, whose errors give positions; a
    placeholder that is not a whole value, such as a key), the plain parse of the whole body answers instead.
    """
    text, cut = _cut(body)
    if not cut:
        return _plain(body), cut
    try:
        values = _plain(text)
    except ValueError:
        return _plain(body), {}  # raises the body's own error, positions included
    if sum(value in cut for _, _, value in _strings([values])) != len(cut):
        return _plain(body), {}
    return values, cut


def _plain(body: bytes | bytearray) -> Any:
    return json.loads(body.decode("utf-8").strip() or "{}", object_pairs_hook=_unique_keys)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            raise ValueError(f"duplicate key {key!r}")
        values[key] = value
    return values


def _cut(body: bytes | bytearray) -> tuple[bytes | bytearray, dict[str, Pieces]]:
    """``body`` with each long base64 string literal's characters replaced by a placeholder (hex, so the JSON around
    it reads the same), and the strings' pieces by placeholder."""
    parts: list[bytes | bytearray] = []
    cut: dict[str, Pieces] = {}
    done = 0  # body[:done] is in parts
    for start, end in _long_literals(body):
        placeholder = uuid.uuid4().hex
        parts += [body[done:start], placeholder.encode()]
        cut[placeholder] = [body[i:min(i + PIECE, end)] for i in range(start, end, PIECE)]
        done = end
    if not cut:
        return body, cut
    return b"".join([*parts, body[done:]]), cut


def _long_literals(body: bytes | bytearray) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of base64 characters that covers a whole piece and is a string literal's whole text,
    found in calls of a piece each."""
    offset = 0
    while offset + PIECE <= len(body):
        if body[offset:offset + PIECE].translate(None, _BASE64):  # another character: not within a long run
            offset += PIECE
            continue
        # The piece before this one (if any) holds another character, so the run starts within it.
        before = body[max(0, offset - PIECE):offset].translate(_OTHERS)
        start = offset - len(before) + before.rfind(b"\x01") + 1
        end = offset + PIECE
        while end + PIECE <= len(body) and not body[end:end + PIECE].translate(None, _BASE64):
            end += PIECE
        after = body[end:end + PIECE].translate(_OTHERS)
        stop = after.find(b"\x01")
        end += stop if stop >= 0 else len(after)
        if _is_literal(body, start, end):
            yield start, end
        offset = end


def _is_literal(body: bytes | bytearray, start: int, end: int) -> bool:
    """Whether ``body[start:end]`` is between quotes, the opening one not after a backslash. This only spares work:
    a run that is not a whole string's text (after an escaped quote, say) leaves its placeholder inside a longer
    string, which :func:`loads` sees and answers with the plain parse."""
    return (start > 0 and end < len(body) and body[start - 1] == body[end] == _QUOTE
            and body[start - 2:start - 1] != b"\\")


def _strings(root: list[Any]) -> Iterator[tuple[dict[str, Any] | list[Any], str | int, str]]:
    """(container, key or index, value) for each string value under ``root``. Walked with a stack: ``json.loads``
    accepts nesting as deep as the recursion limit allows."""
    stack: list[dict[str, Any] | list[Any]] = [root]
    while stack:
        container = stack.pop()
        for key, value in container.items() if isinstance(container, dict) else enumerate(container):
            if isinstance(value, str):
                yield container, key, value
            elif isinstance(value, dict | list):
                stack.append(value)


def _restore(values: Any, texts: dict[str, str]) -> Any:
    """``values`` with each placeholder that is a value replaced by its text."""
    root = [values]
    for container, key, value in _strings(root):
        if value in texts:
            container[key] = texts[value]
    return root[0]


def _text(pieces: Pieces) -> str:
    return "".join(piece.decode("ascii") for piece in pieces)


def parse(values: Any, message: Message, cut: dict[str, Pieces] | None = None) -> None:
    """``json_format.ParseDict(values, message)``, with base64 strings over :data:`PIECE` and raw ``bytes`` values
    (form files) set after it, in pieces (``json_format.ParseError`` or ValueError for bad input). ``cut``: the
    pieces of the strings whose placeholders ``values`` holds (:func:`parse_body`)."""
    if not isinstance(values, dict):  # json_format raises TypeError for null or a number here
        raise ValueError(f"a JSON object is expected for {message.DESCRIPTOR.full_name}")
    cut = dict(cut or {})
    taken = list(_take(values, message.DESCRIPTOR, (), cut))
    if cut:  # long strings elsewhere (a string field, an unknown one): json_format judges them as they are
        _restore(values, {placeholder: _text(pieces) for placeholder, pieces in cut.items()})
    json_format.ParseDict(values, message)
    for path, value in taken:
        _assign(message, path, value if isinstance(value, bytes) else _decode(value))


def _field(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(key) or next((f for f in descriptor.fields if f.json_name == key), None)


def _take(values: Any, descriptor: Descriptor, path: Path,
          cut: dict[str, Pieces]) -> Iterator[tuple[Path, str | bytes | Pieces]]:
    """Yields (path, value) for the large bytes values under ``values`` (the pieces for a placeholder, taken out of
    ``cut``) and leaves an empty string in their place (which json_format parses as the field being set, oneofs
    included)."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        field = _field(descriptor, key)
        if field is None:
            continue  # json_format names the unknown field
        if field.type == FieldDescriptor.TYPE_BYTES:
            items = enumerate(value) if field.is_repeated and isinstance(value, list) else [(None, value)]
            for index, item in items:
                if isinstance(item, bytes) or (isinstance(item, str) and (len(item) > PIECE or item in cut)):
                    taken = cut.pop(item) if item in cut else item
                    if index is None:
                        values[key] = ""
                        yield (*path, field.name), taken
                    else:
                        value[index] = ""
                        yield (*path, field.name, index), taken
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.is_repeated and isinstance(value, list):
                for index, item in enumerate(value):
                    yield from _take(item, field.message_type, (*path, field.name, index), cut)
            elif not field.is_repeated:
                yield from _take(value, field.message_type, (*path, field.name), cut)


def _assign(message: Message, path: Path, data: bytes) -> None:
    *parents, last = path
    target: Any = message
    for step in parents:
        target = target[step] if isinstance(step, int) else getattr(target, step)
    if isinstance(last, int):
        target[last] = data
    else:
        setattr(target, last, data)


def _decode(text: str | Pieces) -> bytes:
    """Base64 as json_format reads it (either alphabet, padding optional), :data:`PIECE` characters per call."""
    pieces = text if isinstance(text, list) else (text[i:i + PIECE].encode("ascii") for i in range(0, len(text), PIECE))
    try:
        return b"".join(_decode_piece(piece) for piece in pieces)
    except (UnicodeEncodeError, binascii.Error):  # line breaks and the like: json_format's lenient way, in one call
        encoded = text.encode("utf-8") if isinstance(text, str) else b"".join(text)
        return base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))


def _decode_piece(piece: bytes | bytearray) -> bytes:
    piece = piece.translate(_URLSAFE)
    if len(piece) % 4:  # only the last piece can (pieces are whole groups of 4 characters)
        piece += b"=" * (-len(piece) % 4)
    return binascii.a2b_base64(piece, strict_mode=True)


def dumps(message: Message) -> bytes:
    """``json_format.MessageToJson`` (fields at their defaults printed, no indent), with bytes fields over
    :data:`PIECE` encoded in pieces and spliced into the text."""
    large = list(_large(message, ()))
    if not large:
        return _to_json(message)
    stripped = type(message)()
    stripped.CopyFrom(message)
    markers = []
    for path, _ in large:
        marker = uuid.uuid4().bytes  # stands in for the data; its base64 is found in the text and replaced
        _assign(stripped, path, marker)
        markers.append(base64.b64encode(marker))
    text = _to_json(stripped)
    parts = []
    for marker, (_, data) in zip(markers, large, strict=True):
        head, found, text = text.partition(marker)
        assert found, "the marker is in the JSON text"
        parts += [head, *_encode(data)]
    return b"".join([*parts, text])


def _to_json(message: Message) -> bytes:
    return json_format.MessageToJson(message, always_print_fields_with_no_presence=True, indent=None).encode()


def _large(message: Message, path: Path) -> Iterator[tuple[Path, bytes]]:
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_BYTES:
            items = enumerate(value) if field.is_repeated else [(None, value)]
            for index, item in items:
                if len(item) > PIECE:
                    yield ((*path, field.name) if index is None else (*path, field.name, index)), item
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.is_repeated:
                for index, item in enumerate(value):
                    yield from _large(item, (*path, field.name, index))
            else:
                yield from _large(value, (*path, field.name))


def _encode(data: bytes) -> Iterator[bytes]:
    step = PIECE // 4 * 3  # whole base64 groups, so the pieces concatenate
    for start in range(0, len(data), step):
        yield base64.b64encode(data[start:start + step])
