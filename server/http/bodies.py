"""Request bodies on the HTTP port: read within bounds, and parsed by code whose cost is bounded before it starts.

The gateway reads a body only after the request's headers passed its checks (token, origin, content type, declared
length), and reads it whole into memory, at most ``max_bytes`` and with at most ``timeout`` seconds between two
reads (:func:`read_body`): reading is cheap, so it stays on the event loop. Parsing costs CPU in proportion to the
body, so the gateway runs the functions below in a worker thread; each first counts what it will build and refuses a
body with more than ``limit`` form fields or JSON values, so no body can make the parser allocate millions of objects.

Forms are parsed here rather than by aiohttp's streaming reader, which runs on the event loop line by line: a body
of many tiny parts, or a long preamble of empty lines, kept the loop busy for seconds.
"""

from __future__ import annotations

import asyncio
import codecs
import email.message
import email.parser
import email.utils
import re
import urllib.parse

from aiohttp import StreamReader, web

from server.http.rules import FormFile, RequestError

__all__ = ["MAX_PART_HEADER_BYTES", "BodyTimeout", "BodyTooLarge", "check_json_values", "form_fields", "read_body"]

#: Bytes of one multipart part's header block (Content-Disposition, Content-Type): a few hundred in practice.
MAX_PART_HEADER_BYTES = 8192
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# A JSON string literal: quotes around any run of characters that are not a quote or backslash, or escapes.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PIECE = 1 << 20  # bytes scanned per call


class BodyTooLarge(Exception):
    """A body over the size limit (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body too large: the limit is {limit} bytes (--max-message-bytes, plus room "
                         "for base64 in JSON)")


class BodyTimeout(Exception):
    """The client sent nothing for ``--http-body-timeout`` seconds in the middle of a body (answered 408)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"request body: nothing received for {timeout:g} s (--http-body-timeout)")


async def read_body(content: StreamReader, declared: int | None, max_bytes: int, timeout: float) -> bytearray:
    """The whole body, refused early when its declared ``Content-Length`` is over ``max_bytes``. Collected in a
    bytearray chunk by chunk: joining 40 MB of chunks at the end would be one long copy on the event loop."""
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(max_bytes)
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await content.readany()
        except TimeoutError:
            raise BodyTimeout(timeout) from None
        except web.RequestPayloadError as exc:  # bad chunked framing, bad gzip, a body shorter than declared
            raise RequestError(f"request body cannot be read: {_reason(exc)}") from None
        if not chunk:
            return body
        if len(body) + len(chunk) > max_bytes:
            raise BodyTooLarge(max_bytes)
        body += chunk


# What went wrong while reading, by aiohttp's exception: its messages may quote the bytes received.
_PAYLOAD_ERRORS = {"ContentEncodingError": "its Content-Encoding does not match its bytes",
                   "DecompressSizeError": "it decompresses to more than the size limit",
                   "ContentLengthError": "it is shorter than its Content-Length",
                   "TransferEncodingError": "malformed chunked Transfer-Encoding"}


def _reason(exc: web.RequestPayloadError) -> str:
    return _PAYLOAD_ERRORS.get(type(exc.__cause__).__name__, "malformed body")


def _count(body: bytes | bytearray, *separators: bytes) -> int:
    """Occurrences of ``separators`` in ``body``, a megabyte per call (so the event loop's thread gets the GIL
    between calls)."""
    return sum(body.count(separator, start, start + _PIECE) for start in range(0, len(body), _PIECE)
               for separator in separators)


def check_json_values(body: bytes | bytearray, limit: int) -> None:
    """Refuses a JSON body of more than ``limit`` values (objects, arrays, their members and elements).

    Counted from the separators outside strings, in C-speed passes over the bytes, before anything is built: a
    40 MB body of ten million ``{}`` would otherwise become ten million dicts. The first count includes separators
    inside strings (base64 has none); only when it is over the limit are the strings, then few, looked at.
    """
    separators = _count(body, b",", b"[", b"{")
    if separators <= limit:
        return
    # Every member has a key and a value: a body of more than 4 * limit quotes has more than limit values.
    if _count(body, b'"') <= 4 * (limit + 1):
        inside = sum(s.count(b",") + s.count(b"[") + s.count(b"{") for s in _JSON_STRING.findall(body))
        if separators - inside <= limit:
            return
    raise RequestError(f"body: more than {limit} JSON values (--http-max-fields)")


def form_fields(body: bytes | bytearray, content_type: str, limit: int) -> list[tuple[str, str | FormFile]]:
    """A multipart or urlencoded form's fields in order (files as :class:`FormFile`), at most ``limit`` of them."""
    header = _header("Content-Type", content_type)
    kind = header.get_content_type()
    if kind == "multipart/form-data":
        return _multipart(body, _boundary(header), limit)
    if kind == "application/x-www-form-urlencoded":
        return _urlencoded(body, _charset(header.get_param("charset") or "utf-8"), limit)
    raise RequestError(f"form: Content-Type must be {' or '.join(_FORM_TYPES)}")


def _header(name: str, value: str) -> email.message.Message:
    """A parsed header (type and parameters, RFC 2231 included) by the standard library's MIME parser."""
    return email.parser.HeaderParser().parsestr(f"{name}: {value}\n\n")


def _charset(name: object) -> str:
    if not isinstance(name, str):
        raise RequestError("form: malformed charset parameter")
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise RequestError(f"form: unknown charset {name[:40]!r}") from None


def _boundary(header: email.message.Message) -> bytes:
    boundary = header.get_boundary()
    # RFC 2046: 1 to 70 characters; the parser compares bytes, so they must be ASCII.
    if not boundary or len(boundary) > 70 or not boundary.isascii():
        raise RequestError("form: multipart/form-data needs a boundary parameter of 1 to 70 ASCII characters")
    return boundary.encode("ascii")


def _urlencoded(body: bytes | bytearray, charset: str, limit: int) -> list[tuple[str, str | FormFile]]:
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise RequestError("form: a urlencoded body is ASCII; other bytes must be percent-encoded") from None
    if text.count("&") >= limit:  # what parse_qsl's own max_num_fields counts, with a message of ours
        raise RequestError(f"form: more than {limit} fields (--http-max-fields)")
    try:
        return list(urllib.parse.parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict"))
    except UnicodeDecodeError:
        raise RequestError(f"form: a percent-encoded value is not {charset}") from None


def _multipart(body: bytes | bytearray, boundary: bytes, limit: int) -> list[tuple[str, str | FormFile]]:
    """RFC 7578 multipart/form-data from the whole body: parts between ``--boundary`` lines, found with
    ``bytes.find`` (C speed, whatever the parts hold)."""
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        position = len(delimiter)
    elif (preamble_end := body.find(b"\r\n" + delimiter)) >= 0:  # a preamble before the first part is ignored
        position = preamble_end + 2 + len(delimiter)
    else:
        raise RequestError("form: the body does not contain its multipart boundary")
    fields: list[tuple[str, str | FormFile]] = []
    while not body.startswith(b"--", position):  # "--boundary--" closes the form; an epilogue is ignored
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise RequestError("form: malformed multipart boundary line (or the body is truncated)")
        end = body.find(b"\r\n" + delimiter, line_end + 2)
        if end < 0:
            raise RequestError("form: the body ends before its closing multipart boundary (truncated?)")
        if len(fields) == limit:
            raise RequestError(f"form: more than {limit} parts (--http-max-fields)")
        fields.append(_part(body, line_end + 2, end))
        position = end + 2 + len(delimiter)
    return fields


def _part(body: bytes | bytearray, start: int, end: int) -> tuple[str, str | FormFile]:
    blank = body.find(b"\r\n\r\n", start, end)
    if blank < 0 or blank - start > MAX_PART_HEADER_BYTES:
        raise RequestError(f"form: a part needs headers of at most {MAX_PART_HEADER_BYTES} bytes and a blank line")
    headers = email.parser.BytesHeaderParser().parsebytes(bytes(body[start:blank]) + b"\r\n\r\n")
    name = headers.get_param("name", header="content-disposition")
    if headers.get_content_disposition() != "form-data" or not name:
        raise RequestError("form: every part needs 'Content-Disposition: form-data; name=...'")
    name = email.utils.collapse_rfc2231_value(name)
    data = bytes(memoryview(body)[blank + 4:end])  # one copy, of the part alone
    if headers.get_param("filename", header="content-disposition") is not None:
        content_type = headers.get_content_type() if headers.get("Content-Type") else ""
        return name, FormFile(data, content_type)
    charset = _charset(headers.get_content_charset("utf-8"))
    try:
        return name, data.decode(charset)
    except UnicodeDecodeError:
        raise RequestError(f"form field {name[:64]!r}: not text in {charset}") from None
