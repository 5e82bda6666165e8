"""The fused inference path must compute the official networks' function (exact algebra, float rounding only)."""

from __future__ import annotations

import pytest
import torch

from model.adain.fast import FastDecoder, FastEncoder, _phase_kernels, conv3x3_reflect, upsample_conv3x3_reflect
from model.errors import Cancelled
from model.network import ALL_LAYERS, RELU4_1, RELU5_1, Decoder, Encoder, InputNorm


def _randomise(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.2 - 0.1)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("norm", [InputNorm(), InputNorm.imagenet()], ids=["official", "torchvision"])
@pytest.mark.parametrize("size", [(67, 45), (64, 64)])
def test_fast_encoder_matches_every_named_layer(norm: InputNorm, size: tuple[int, int]) -> None:
    encoder = Encoder(RELU5_1, norm=norm)
    _randomise(encoder, 1)
    fast = FastEncoder(encoder)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = encoder.features(x, ALL_LAYERS)
        got = fast.features(x, ALL_LAYERS)
    for name in ALL_LAYERS:
        assert got[name].shape == ref[name].shape
        assert _rel(got[name], ref[name]) < 1e-5, name


def test_fast_encoder_channels_last_and_single_layer() -> None:
    encoder = Encoder(RELU4_1)
    _randomise(encoder, 3)
    fast = FastEncoder(encoder).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 50, 70).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert _rel(fast(x), encoder(x)) < 1e-5


def test_fast_decoder_matches() -> None:
    decoder = Decoder()
    _randomise(decoder, 4)
    fast = FastDecoder(decoder)
    feat = torch.rand(1, 512, 9, 6, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        assert _rel(fast(feat), decoder(feat)) < 1e-5


def test_reflect_conv_differs_from_zero_padding() -> None:
    """Guards the border fix: without it the outputs would be those of zero padding."""
    x = torch.rand(1, 4, 10, 12) + 1.0
    w, b = torch.randn(5, 4, 3, 3), torch.zeros(5)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), w, b)
    assert _rel(conv3x3_reflect(x, w, b), ref) < 1e-5
    assert _rel(torch.nn.functional.conv2d(x, w, b, padding=1), ref) > 1e-2


def test_upsample_conv_phase_decomposition() -> None:
    x = torch.rand(1, 6, 5, 7)
    w, b = torch.randn(4, 6, 3, 3), torch.randn(4)
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(up, (1, 1, 1, 1), mode="reflect"), w, b)
    assert _rel(upsample_conv3x3_reflect(x, _phase_kernels(w), b.repeat(4)), ref) < 1e-5


def test_stop_check_between_layers() -> None:
    encoder, decoder = Encoder(), Decoder()
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with torch.inference_mode(), pytest.raises(Cancelled):
        FastEncoder(encoder).features(torch.rand(1, 3, 32, 32), [RELU4_1], stop)
    calls.clear()
    with torch.inference_mode(), pytest.raises(Cancelled):
        FastDecoder(decoder)(torch.rand(1, 512, 4, 4), stop)
