"""Tiled encoding/decoding must reproduce the untiled networks (the halo covers the receptive field)."""

from __future__ import annotations

import pytest
import torch

from model.adain.tiling import decode_tiled, encode_tiled, needs_tiling
from model.network import Decoder, Encoder

pytestmark = pytest.mark.slow  # tiled against untiled passes


@pytest.fixture(scope="module")
def nets() -> tuple[Encoder, Decoder]:
    gen = torch.Generator().manual_seed(7)
    encoder, decoder = Encoder(), Decoder()
    for module in [*encoder.modules(), *decoder.modules()]:
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                module.bias.zero_()
    return encoder, decoder


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _noise(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _assert_same(tiled: torch.Tensor, full: torch.Tensor) -> None:
    assert tiled.shape == full.shape
    assert _relative_error(tiled, full) < 1e-5


@pytest.mark.parametrize("size", [(131, 97), (64, 200), (40, 40)])
def test_encode_tiled_matches_untiled(nets: tuple[Encoder, Decoder], size: tuple[int, int]) -> None:
    encoder, _ = nets
    image = _noise(*size, seed=1)
    with torch.inference_mode():
        _assert_same(encode_tiled(encoder, image, tile=32), encoder(image))


def test_decode_tiled_matches_untiled(nets: tuple[Encoder, Decoder]) -> None:
    encoder, decoder = nets
    with torch.inference_mode():
        feat = encoder(_noise(120, 88, seed=2))
        _assert_same(decode_tiled(decoder, feat, tile=32), decoder(feat))


def test_without_halo_tiles_differ(nets: tuple[Encoder, Decoder]) -> None:
    """The halo is what makes tiling exact: without it, tile borders see reflection padding instead of neighbours."""
    encoder, decoder = nets
    image = _noise(96, 96, seed=3)
    with torch.inference_mode():
        feat = encoder(image)
        assert _relative_error(encode_tiled(encoder, image, tile=32, halo=0), feat) > 1e-3
        assert _relative_error(decode_tiled(decoder, feat, tile=32, halo=0), decoder(feat)) > 1e-3


def test_tile_and_halo_must_align_with_pooling() -> None:
    encoder = Encoder()
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="multiple of 8"):
        encode_tiled(encoder, image, tile=30)
    with pytest.raises(ValueError, match="halo"):
        encode_tiled(encoder, image, tile=32, halo=12)


def test_needs_tiling() -> None:
    assert needs_tiling(2000, 100, 1024)
    assert not needs_tiling(1024, 1024, 1024)
    assert not needs_tiling(5000, 5000, 0)
