"""proto_json.loads and parse_body: long base64 strings are cut out before json.loads, and the values (or the message)
are always those of json.loads on the whole body (errors included). PIECE is made small so tiny bodies hold strings
over it."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from google.protobuf import json_format

from server.http import proto_json
from styletransfer.v1 import style_transfer_pb2 as pb

PIECE = 8
LONG = base64.b64encode(bytes(range(256)) * 2).decode()  # 684 characters, padded: many pieces of PIECE
URLSAFE = base64.urlsafe_b64encode(bytes(range(250, 256)) * 40).decode()  # has - and _


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch) -> None:
    monkeypatch.setattr(proto_json, "PIECE", PIECE)


def plain(body: bytes) -> Any:
    """What the gateway parsed before: json.loads of the whole body, duplicate keys refused."""
    return json.loads(body.decode("utf-8").strip() or "{}", object_pairs_hook=proto_json._unique_keys)


def loads_recording(monkeypatch, body: bytes) -> tuple[Any, list[str]]:
    """proto_json.loads(body), and every text json.loads was given."""
    texts: list[str] = []
    real = json.loads

    def recording(text: str, **kwargs: Any) -> Any:
        texts.append(text)
        return real(text, **kwargs)

    monkeypatch.setattr(proto_json.json, "loads", recording)
    return proto_json.loads(body), texts


VALID = {
    "top level": f'"{LONG}"',
    "a field": f'{{"content": "{LONG}", "styles": [{{"image": "AAAA"}}]}}',
    "nested, in lists, and several": (f'{{"content":"{LONG}","styles":[{{"image":"{URLSAFE}","mask":"{LONG[:-3]}"}},'
                                      f'{{"image":"{LONG}"}}],"x":[["{URLSAFE}"]]}}'),
    "the urlsafe alphabet": f'{{"content": "{URLSAFE}"}}',
    "without padding": f'{{"content": "{LONG.rstrip("=")}"}}',
    "at the start and end of the body": f'["{LONG}"]',
    "with whitespace around": f'\n {{ "content" :\t"{LONG}" }} \r\n',
    "after a string that ends in a backslash": f'["a\\\\", "{LONG}"]',
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_long_base64_strings_are_cut_out_and_put_back(monkeypatch, text: str) -> None:
    """The values are json.loads's, and json.loads never saw the long strings (the old way gave it the whole body)."""
    body = text.encode()
    expected = plain(body)
    got, texts = loads_recording(monkeypatch, body)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # the same order of keys too
    assert texts and not any(LONG[:100] in text or URLSAFE[:100] in text for text in texts), texts


def outcome(parse: Any, body: bytes | bytearray) -> tuple[str, Any]:
    """The values, or the error's type and message (positions included: the gateway answers them 400)."""
    try:
        return "values", parse(body)
    except ValueError as exc:
        return type(exc).__name__, str(exc)


LIKE_JSON_LOADS = {  # long runs that are not whole string values, invalid bodies around long strings, short bodies
    "used as a key": f'{{"{LONG}": 1}}',
    "after an escaped quote": f'{{"content": "x\\"{LONG}"}}',
    "part of a longer string": f'{{"content": "ab/{LONG}"}}',
    "with an escape inside": f'{{"content": "{LONG[:40]}\\/{LONG[40:]}"}}',
    "both a key and a value": f'{{"{LONG}": "{URLSAFE}"}}',
    "invalid: a string after a string": f'{{"content": "x"{LONG}"}}',
    "invalid: unterminated": f'{{"content": "{LONG}", "styles": [',
    "invalid: a bare run": f'{{"content": {LONG}}}',
    "invalid: an error after the string": f'{{"content": "{LONG}", "alpha": 0.5.}}',
    "invalid: a control character after it": f'{{"content": "{LONG}", "x": "\x01"}}',
    "invalid: UTF-8 after it": f'{{"content": "{LONG}", "x": "\udcff"}}',
    "invalid: a duplicate key": f'{{"content": "{LONG}", "content": "AAAA"}}',
    "invalid: a duplicate key nested": f'{{"content": "{LONG}", "styles": [{{"image": "{LONG}", "image": 1}}]}}',
    "empty": "",
    "blank": "  \n",
    "short": '{"alpha": 0.5, "content": "AAAA"}',
}


@pytest.mark.parametrize("name", LIKE_JSON_LOADS)
def test_other_bodies_give_what_json_loads_gives(name: str) -> None:
    body = bytearray(LIKE_JSON_LOADS[name].encode("utf-8", "surrogateescape"))  # as the gateway reads bodies
    expected = outcome(plain, body)
    assert outcome(proto_json.loads, body) == expected
    assert (expected[0] != "values") == name.startswith("invalid"), expected


def message_outcome(parse_body: Any, body: bytes | bytearray) -> tuple[str, Any]:
    message = pb.StylizeRequest()
    try:
        parse_body(body, message)
        return "message", message
    except (json_format.ParseError, ValueError) as exc:
        return type(exc).__name__, str(exc)


def old_parse_body(body: bytes | bytearray, message: pb.StylizeRequest) -> None:
    proto_json.parse(plain(body), message)


REQUESTS = {
    "images": {"content": LONG, "styles": [{"image": URLSAFE, "mask": LONG[:-3]}, {"image": LONG, "weight": 2}]},
    "unpadded": {"content": LONG.rstrip("=")},
    "padding inside": {"content": f"{LONG[:99]}={LONG[100:]}"},
    "one character too many": {"content": LONG.rstrip("=") + "AA"},
    "a key": {LONG: 1},
    "elsewhere: a string field": {"content": LONG, "model": URLSAFE},
    "elsewhere: a nested string field": {"styles": [{"styleId": LONG, "image": LONG}]},
    "elsewhere: an unknown field": {"content": LONG, "extra": LONG},
    "elsewhere: a list for a bytes field": {"content": [LONG]},
}


@pytest.mark.parametrize("name", REQUESTS)
def test_parse_body_gives_the_message_that_json_loads_values_give(monkeypatch, name: str) -> None:
    """Long strings in bytes fields are decoded from the body's pieces, never joined into one str; elsewhere they
    are json_format's to judge, as they were."""
    body = json.dumps(REQUESTS[name]).encode()
    expected = message_outcome(old_parse_body, body)
    joined: list[Any] = []
    text = proto_json._text
    monkeypatch.setattr(proto_json, "_text", lambda pieces: joined.append(pieces) or text(pieces))
    assert message_outcome(proto_json.parse_body, body) == expected
    assert bool(joined) == name.startswith("elsewhere"), joined


def test_random_bodies_give_json_loads_outcome() -> None:
    """Bodies strung together from JSON's structural characters, escapes and long base64 runs, valid or not."""
    rng = random.Random(5)
    tokens = ['"', "\\", '\\"', ",", ":", "[", "]", "{", "}", "1", '"k":', LONG, f'"{LONG}"', f'"{URLSAFE}"', LONG[:9]]
    for _ in range(3000):
        body = "".join(rng.choices(tokens, k=rng.randint(1, 8))).encode()
        assert outcome(proto_json.loads, body) == outcome(plain, body), body
        assert message_outcome(proto_json.parse_body, body) == message_outcome(old_parse_body, body), body
    shapes = [LONG, [LONG, {"a": URLSAFE}], {LONG: LONG}, {"content": LONG, "styles": [{"image": LONG}, LONG]}]
    for _ in range(200):
        body = json.dumps(rng.choice(shapes)).encode()
        assert outcome(proto_json.loads, body) == outcome(plain, body), body
        assert message_outcome(proto_json.parse_body, body) == message_outcome(old_parse_body, body), body
