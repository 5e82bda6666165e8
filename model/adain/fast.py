"""Inference-only rewrites of the encoder and decoder that compute the same function with less memory traffic.

The official networks pad every 3x3 conv with a separate ``ReflectionPad2d`` and apply ``ReLU`` out of place. At
full resolution a 64-channel activation is 64 MiB at 512 px, so each such pass costs as much as a fifth of the conv it
serves; together they took about a third of the forward time on CPU. Each rewrite here is exact algebra, checked
against the official modules in ``tests/model/test_fast.py``:

- **Reflect-padded conv** = zero-padded conv (padding done inside the conv kernel, no copy) with its one-pixel
  border recomputed from reflect-padded 2-pixel strips: only the border outputs see the padding.
- **Input affine folded**: the leading 1x1 conv (and torchvision's mean/std normalisation) is a per-pixel affine map,
  which commutes with reflection padding, so it folds into the first 3x3 conv's weights and bias.
- **ReLU in place**, and **max-pool before ReLU** where the ReLU only feeds a pool: ReLU is monotonic, so
  ``pool(relu(x)) == relu(pool(x))`` on a quarter of the data.
- **Nearest x2 upsampling + reflect pad + 3x3 conv** (the decoder) = one 2x2 conv with four output phases on the
  low-resolution input, replicate-padded by one pixel, then interleaved. Each output pixel of the upsampled conv
  sees two distinct input rows and two distinct columns, so the phase kernels sum the 3x3 taps that land on the same
  input pixel: 16 multiply-adds per 2x2 output block instead of 36, for the three convs that follow an upsampling.
  Reflection of the upsampled image at its border lands on the border pixel's own copy, i.e. replicate padding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from model.errors import Cancelled
from model.network import RELU_INDEX, Decoder, Encoder, StopCheck

__all__ = ["FastDecoder", "FastEncoder"]


def _stop(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("stopped between layers")


def conv3x3_reflect(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``conv2d(reflection_pad(x, 1), weight, bias)`` without materialising the padded input."""
    height, width = x.shape[-2:]
    if height < 2 or width < 2:
        raise ValueError(f"feature map {height}x{width} is too small for reflection padding")
    out = F.conv2d(x, weight, bias, padding=1)
    out[:, :, :1] = F.conv2d(F.pad(x[:, :, :2], (1, 1, 1, 0), mode="reflect"), weight, bias)
    out[:, :, -1:] = F.conv2d(F.pad(x[:, :, -2:], (1, 1, 0, 1), mode="reflect"), weight, bias)
    out[:, :, :, :1] = F.conv2d(F.pad(x[:, :, :, :2], (1, 0, 1, 1), mode="reflect"), weight, bias)
    out[:, :, :, -1:] = F.conv2d(F.pad(x[:, :, :, -2:], (0, 1, 1, 1), mode="reflect"), weight, bias)
    return out


def _phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """3x3 kernel (O, I, 3, 3) -> 2x2 phase kernels (4*O, I, 2, 2), phases ordered (row a, col b) = 00, 01, 10, 11.

    For output row 2i+a of the upsampled conv, taps dy = -1, 0, 1 read input rows: a=0 -> i-1, i, i; a=1 -> i, i, i+1.
    """
    rows = {0: ((0,), (1, 2)), 1: ((0, 1), (2,))}  # which 3x3 taps sum into the 2x2 kernel's first/second row
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            k = weight.new_zeros(*weight.shape[:2], 2, 2)
            for r, taps_r in enumerate(rows[a]):
                for c, taps_c in enumerate(rows[b]):
                    k[:, :, r, c] = weight[:, :, list(taps_r)][:, :, :, list(taps_c)].sum(dim=(2, 3))
            phases.append(k)
    return torch.cat(phases, dim=0)


def upsample_conv3x3_reflect(x: torch.Tensor, phase_weight: torch.Tensor, bias4: torch.Tensor) -> torch.Tensor:
    """``conv2d(reflection_pad(upsample_nearest_2x(x), 1), w, b)`` computed on the low-resolution input."""
    batch, _, height, width = x.shape
    out_channels = phase_weight.shape[0] // 4
    y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), phase_weight, bias4)  # (B, 4*O, H+1, W+1)
    out = torch.empty(
        batch, out_channels, 2 * height, 2 * width, dtype=y.dtype, device=y.device, memory_format=_format_of(x)
    )
    for phase, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[:, :, a::2, b::2] = y[:, phase * out_channels : (phase + 1) * out_channels, a : a + height, b : b + width]
    return out


def _format_of(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _fold_affine(weight: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor):
    """Folds a preceding per-pixel affine map ``x -> scale @ x + shift`` into a conv: returns (weight', bias')."""
    folded_w = torch.einsum("oikl,ic->ockl", weight, scale)
    folded_b = bias + torch.einsum("oikl,i->o", weight, shift)
    return folded_w, folded_b


class FastEncoder(nn.Module):
    """The :class:`~model.network.Encoder`'s function, for inference only (no autograd through the rewrites)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.depth = encoder.depth
        self._names = {idx: name for name, idx in RELU_INDEX.items() if idx < len(encoder.layers)}
        layers = list(encoder.layers)
        scale, shift = self._input_affine(encoder)
        self.steps: list[tuple[str, int]] = []  # (kind, official index of the step's last module)
        self.params = nn.ParameterList()
        first_conv = True
        for idx, module in enumerate(layers):
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                w, b = module.weight.detach(), module.bias.detach()
                if first_conv:
                    w, b = _fold_affine(w, b, scale, shift)
                    first_conv = False
                self.params.append(nn.Parameter(w.clone(), requires_grad=False))
                self.params.append(nn.Parameter(b.clone(), requires_grad=False))
                self.steps.append(("conv", idx + 1))  # the ReLU follows at idx + 1
            elif isinstance(module, nn.MaxPool2d):
                self.steps.append(("pool", idx))

    @staticmethod
    def _input_affine(encoder: Encoder) -> tuple[torch.Tensor, torch.Tensor]:
        """The composition of InputNorm and the leading 1x1 conv, as (3x3 matrix, shift)."""
        conv0 = encoder.layers[0]
        a = conv0.weight.detach()[:, :, 0, 0]  # (3, 3)
        c = conv0.bias.detach()
        mean = encoder.norm.mean.view(3)
        std = encoder.norm.std.view(3)
        # y = a @ ((x - mean) / std) + c
        return a / std.view(1, 3), c - a @ (mean / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, (self.depth,))[self.depth]

    def features(
        self, x: torch.Tensor, names: Iterable[str], should_stop: StopCheck | None = None
    ) -> dict[str, torch.Tensor]:
        wanted = {RELU_INDEX[name] for name in names}
        last = max(wanted)
        out: dict[str, torch.Tensor] = {}
        h = x
        param = 0
        pending_relu = False
        for kind, idx in self.steps:
            if idx > last and not (kind == "pool" and pending_relu):
                break
            if kind == "pool":
                h = F.max_pool2d(h, 2, 2, 0, ceil_mode=True)
                if pending_relu:
                    h = h.relu_()
                    pending_relu = False
                continue
            h = conv3x3_reflect(h, self.params[param], self.params[param + 1])
            param += 2
            if idx in wanted:
                h = h.relu_()
                out[self._names[idx]] = h  # safe to keep: later steps write only to new tensors
            elif self._next_is_pool(idx):
                pending_relu = True
            else:
                h = h.relu_()
            if idx >= last:
                break
            _stop(should_stop)
        return out

    def _next_is_pool(self, relu_idx: int) -> bool:
        return any(kind == "pool" and idx == relu_idx + 1 for kind, idx in self.steps)


class FastDecoder(nn.Module):
    """The :class:`~model.network.Decoder`'s function, for inference only."""

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.steps: list[tuple[str, bool]] = []  # (kind, relu after)
        self.params = nn.ParameterList()
        layers = list(decoder.layers)
        upsample_before = False
        for idx, module in enumerate(layers):
            if isinstance(module, nn.Upsample):
                upsample_before = True
            elif isinstance(module, nn.Conv2d):
                relu = idx + 1 < len(layers) and isinstance(layers[idx + 1], nn.ReLU)
                w, b = module.weight.detach(), module.bias.detach()
                if upsample_before:
                    w, b = _phase_kernels(w), b.repeat(4)
                self.params.append(nn.Parameter(w.clone(), requires_grad=False))
                self.params.append(nn.Parameter(b.clone(), requires_grad=False))
                self.steps.append(("upconv" if upsample_before else "conv", relu))
                upsample_before = False

    def forward(self, feat: torch.Tensor, should_stop: StopCheck | None = None) -> torch.Tensor:
        h = feat
        for i, (kind, relu) in enumerate(self.steps):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            h = upsample_conv3x3_reflect(h, w, b) if kind == "upconv" else conv3x3_reflect(h, w, b)
            if relu:
                h = h.relu_()
                _stop(should_stop)
        return h
