"""The response cache: hits are the misses' bytes, every field that changes the output misses, the cache stays in its
byte budget, deleted styles and models are never served from it, and each family is deterministic (or the cache
would be wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model.adain import AdaINModel
from server.response_cache import ENTRY_OVERHEAD, CachedResponse, tagged
from server.style_cache import LRUCache
from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import RunningServer, code_of, encode, install_decoder, make_image

CONTENT = encode(make_image(48, 40, seed=1))
STYLE = encode(make_image(32, 32, seed=2))


def request(**fields) -> pb.StylizeRequest:
    fields.setdefault("styles", [pb.StyleInput(image=STYLE)])
    fields.setdefault("style_size", 32)  # the styles as they are (the models' defaults would upscale them)
    return pb.StylizeRequest(content=fields.pop("content", CONTENT), **fields)


def call(server: RunningServer, req: pb.StylizeRequest) -> pb.StylizeResponse:
    return server.stub().Stylize(req, timeout=60)


def counts(server: RunningServer) -> tuple[float, float]:
    return (server.metric("styletransfer_response_cache_hits_total"),
            server.metric("styletransfer_response_cache_misses_total"))


def test_a_repeated_request_is_answered_from_the_cache_with_the_same_bytes(server: RunningServer) -> None:
    first = call(server, request(alpha=0.7))
    again = call(server, request(alpha=0.7))
    assert (first.cached, again.cached) == (False, True)
    assert again.image == first.image and (again.width, again.height, again.model) == (48, 40, first.model)
    assert again.timing.compute_ms == 0 and again.request_id != first.request_id
    assert counts(server) == (1, 1)
    assert server.metric("styletransfer_response_cache_entries") == 1
    assert server.metric("styletransfer_response_cache_bytes") == len(first.image) + ENTRY_OVERHEAD


@pytest.mark.parametrize("change", [
    {"alpha": 0.5}, {"content": encode(make_image(48, 40, seed=9))}, {"styles": [pb.StyleInput(image=CONTENT)]},
    {"styles": [pb.StyleInput(image=STYLE, mask=encode(Image.new("L", (8, 8), 128)))]},
    {"styles": [pb.StyleInput(image=STYLE, weight=1), pb.StyleInput(image=CONTENT, weight=2)]},
    {"preserve_color": True}, {"content_size": 32}, {"style_size": 48},
    {"output_format": pb.IMAGE_FORMAT_JPEG}, {"flatten_alpha": True},
])
def test_every_field_that_changes_the_output_misses(server: RunningServer, change: dict) -> None:
    call(server, request(alpha=0.7))
    assert not call(server, request(**{"alpha": 0.7, **change})).cached


def test_a_request_may_opt_out_and_0_turns_the_cache_off(start_server) -> None:
    server = start_server()
    call(server, request())
    skipped = call(server, request(skip_response_cache=True))
    assert not skipped.cached and counts(server) == (0, 1)  # neither read nor counted
    assert call(server, request()).cached
    off = start_server(response_cache_mb=0)
    assert not any(call(off, request()).cached for _ in range(2))
    assert counts(off) == (0, 0)


@pytest.mark.slow  # eight 320 px stylizations
def test_the_cache_keeps_to_its_byte_budget_least_recently_used_out(start_server) -> None:
    budget = 1024 * 1024
    server = start_server(response_cache_mb=1)
    noisy = [encode(Image.fromarray(np.random.default_rng(i).integers(0, 256, (320, 320, 3), np.uint8)))
             for i in range(8)]
    sizes = [len(call(server, request(content=content)).image) + ENTRY_OVERHEAD for content in noisy]
    assert sum(sizes) > budget  # noise outputs compress badly: they cannot all fit
    kept = next(n for n in range(len(sizes), 0, -1) if sum(sizes[-n:]) <= budget)  # the newest that fit
    assert server.metric("styletransfer_response_cache_bytes") == sum(sizes[-kept:]) <= budget
    assert server.metric("styletransfer_response_cache_entries") == kept
    assert call(server, request(content=noisy[-1])).cached
    assert not call(server, request(content=noisy[0])).cached  # the oldest went first


def test_the_budget_counts_bytes_and_discards_by_tag() -> None:
    sizes = []
    cache: LRUCache[CachedResponse] = LRUCache(3 * (100 + ENTRY_OVERHEAD), weigh=lambda e: e.nbytes,
                                               on_size=lambda nbytes, entries: sizes.append((nbytes, entries)))
    entry = CachedResponse(b"x" * 100, "image/png", 1, 1, "m", False)

    def key(name: str) -> tuple[bytes, frozenset[str]]:
        return name.encode(), frozenset({name, "model"})

    for name in ("a", "b", "c"):
        cache.put(key(name), entry)
    cache.get(key("a"))  # now the most recently used
    cache.put(key("d"), entry)
    assert cache.get(key("b")) is None and cache.get(key("a")) is not None and len(cache) == 3
    cache.discard_where(tagged(["a", "zzz"]))
    assert cache.get(key("a")) is None and sizes[-1] == (2 * (100 + ENTRY_OVERHEAD), 2)
    cache.put(key("huge"), CachedResponse(b"x" * 10_000, "image/png", 1, 1, "m", False))
    assert cache.get(key("huge")) is None  # larger than the whole budget: not kept, nothing evicted for it
    assert len(cache) == 2
    cache.discard_where(tagged(["model"]))  # a deleted model: all of its entries
    assert len(cache) == 0 and cache.weight == 0


def test_a_deleted_style_is_not_served_from_the_cache(server: RunningServer) -> None:
    stub = server.stub()
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    by_id = request(styles=[pb.StyleInput(style_id=style.style_id)])
    first = call(server, by_id)
    assert call(server, by_id).cached
    stub.DeleteStyle(pb.DeleteStyleRequest(style_id=style.style_id), timeout=30)
    assert server.metric("styletransfer_response_cache_entries") == 0
    assert code_of(lambda: call(server, by_id)).name == "NOT_FOUND"
    stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)  # registered again: computed again
    again = call(server, by_id)
    assert not again.cached and again.image == first.image


@pytest.mark.slow  # installs two decoders
def test_a_deleted_or_replaced_trained_model_is_not_served_from_the_cache(server: RunningServer, tmp_path,
                                                                          random_model: AdaINModel) -> None:
    registry = server.server.runtime.models
    install_decoder(registry, "mine", random_model.encoder_sha256, tmp_path, seed=1)
    first = call(server, request(model="mine"))
    assert call(server, request(model="mine")).cached
    server.stub().DeleteModel(pb.DeleteModelRequest(name="adain/mine"), timeout=30)
    assert code_of(lambda: call(server, request(model="mine"))).name == "NOT_FOUND"
    install_decoder(registry, "mine", random_model.encoder_sha256, tmp_path, seed=2)  # another decoder, same name
    replaced = call(server, request(model="mine"))
    assert not replaced.cached and replaced.image != first.image


@pytest.mark.parametrize("family", ["adain", "magenta", "presets"])
def test_each_family_computes_the_same_bytes_for_the_same_request(start_server, random_model: AdaINModel,
                                                                  magenta_model, presets_model, family: str) -> None:
    """With the cache off for the test, the same request computed three times, between others of other sizes."""
    server = start_server(models=[random_model, magenta_model, presets_model], response_cache_mb=0)
    styles = ([pb.StyleInput(style_id="presets.ember", weight=1), pb.StyleInput(style_id="presets.teal-wash",
                                                                                weight=2)]
              if family == "presets" else [pb.StyleInput(image=STYLE, weight=1), pb.StyleInput(image=CONTENT,
                                                                                               weight=2)])
    model = "" if family == "presets" else {"adain": random_model.info.name, "magenta": "magenta"}[family]
    same = request(styles=styles, model=model, alpha=0.8)
    other = request(styles=styles, model=model, content=encode(make_image(64, 24, seed=5)))
    outputs = []
    for _ in range(3):
        outputs.append(call(server, same).image)
        call(server, other)
    assert outputs[0] == outputs[1] == outputs[2]
