"""The response cache: identical Stylize requests answered with the bytes an earlier one computed.

Avatar and game backends send the same picture with the same style again and again. A request's output is decided
by its content bytes, its styles (each image's bytes, registered style id or preset id, weight and mask bytes), the
options the model runs with (after the model's defaults), the output encoding and the model with the hashes of its
weights: :func:`response_key` hashes exactly these, so two requests share an entry only if the model would compute
the same image for both (the models are deterministic on a device; tests/server/test_response_cache.py checks each
family). A registered style's id is derived from its image and style size, so it stands for its content.

The entries live in the server's :class:`~server.style_cache.LRUCache`, weighed in bytes
(:attr:`CachedResponse.nbytes`) against ``--response-cache-mb`` (0 turns the cache off), least recently used out.
Each key carries its tags, the registered styles and the model the entry was computed from, so deleting a style or a
trained model drops its entries at once (``discard_where(tagged(...))``). A model replaced under the same name has
other weight hashes, so its old entries are never hit again. A request that sets ``skip_response_cache`` neither
reads nor fills the cache.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from model.family import StyleModel, StylizeOptions
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["ENTRY_OVERHEAD", "CachedResponse", "ResponseKey", "response_key", "tagged"]

ENTRY_OVERHEAD = 512  # bytes an entry costs besides its image: key, tags, object headers (counted, so tiny images
# cannot grow the cache past its budget by their number)


@dataclass(frozen=True)
class CachedResponse:
    """What a Stylize response carries besides its timing and request id."""

    image: bytes
    mime_type: str
    width: int
    height: int
    model: str
    untrained: bool

    @property
    def nbytes(self) -> int:
        return len(self.image) + ENTRY_OVERHEAD


#: A response's cache key: the digest of everything that decides the image, and the tags deleting which drops it.
ResponseKey = tuple[bytes, frozenset[str]]


def _parts(*parts: bytes | str | float | int | bool) -> bytes:
    """Parts, each length-prefixed, so that no two different sequences of parts hash alike."""
    out = bytearray()
    for part in parts:
        data = part if isinstance(part, bytes) else repr(part).encode()
        out += struct.pack("<Q", len(data)) + data
    return bytes(out)


def response_key(request: pb.StylizeRequest, model: StyleModel, options: StylizeOptions,
                 registered: Iterable[str]) -> ResponseKey:
    """The SHA-256 of everything that decides a Stylize response's image (see the module docstring), tagged with
    the ``registered`` style ids the request names and the model's name."""
    info = model.info
    digest = hashlib.sha256(_parts(info.name, info.address, model.code_identity,
                                   *sorted(f"{role}={sha}" for role, sha in info.weights.items())))
    digest.update(_parts(options.alpha, options.color.value, options.content_size, options.style_size,
                         options.tile_size, request.output_format, request.quality, request.flatten_alpha))
    digest.update(_parts(hashlib.sha256(request.content).digest(), len(request.styles)))
    for style in request.styles:
        source = style.WhichOneof("source") or ""
        value = hashlib.sha256(style.image).digest() if source == "image" else style.style_id
        mask = hashlib.sha256(style.mask).digest() if style.HasField("mask") else b"-"
        digest.update(_parts(source, value, style.weight, mask))
    return digest.digest(), frozenset({*registered, info.name})



def tagged(tags: Iterable[str]):  # -> Callable[[ResponseKey], bool], for LRUCache.discard_where
    """Matches the keys of responses computed from any of ``tags`` (a deleted style's id, a deleted model's name)."""
    gone = frozenset(tags)
    return lambda key: bool(key[1] & gone)
