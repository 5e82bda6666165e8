"""Tiled encoding and decoding, so that a 16 MP image stylizes in bounded memory.

The early VGG and late decoder layers hold 64 channels at full resolution: at 4096x4096 one such activation is 4 GiB
in float32, and a forward pass keeps two or three alive. Running both networks on overlapping tiles bounds that to the
tile size, while the relu4_1 feature map (512 channels at 1/8 resolution, 512 MiB at 16 MP) is stitched whole, so the
AdaIN statistics stay global and the result matches the untiled one.

Exactness: a feature depends only on inputs within its receptive field. Each tile is computed on a window extended
by a halo on every side that is not the image border, and only the tile's own part of the output is kept. With the
halo at least the receptive-field radius (37 px for VGG19 to relu4_1; under 4 feature pixels, i.e. 32 px, for the
decoder), the kept part sees exactly the inputs the untiled pass sees; reflection padding then only ever touches the
real image border, as in the untiled pass. Tiles and halos are multiples of 8 px, so the three ceil-mode 2x2
max-pools see the same windows as in the untiled pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from model.network import Decoder, Encoder, StopCheck

__all__ = ["DEFAULT_HALO", "FEATURE_STRIDE", "decode_tiled", "encode_tiled", "needs_tiling"]

#: Downsampling factor between the image and the relu4_1 feature map (three 2x2 pools).
FEATURE_STRIDE = 8
#: Halo in image pixels: above both networks' receptive-field radius, and a multiple of FEATURE_STRIDE.
DEFAULT_HALO = 64


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def needs_tiling(height: int, width: int, tile: int) -> bool:
    """True when an image of this size should be processed in tiles of ``tile`` px (0 disables tiling)."""
    return tile > 0 and max(height, width) > tile


def _check_sizes(tile: int, halo: int) -> None:
    if tile <= 0 or tile % FEATURE_STRIDE:
        raise ValueError(f"tile must be a positive multiple of {FEATURE_STRIDE}, got {tile}")
    if halo < 0 or halo % FEATURE_STRIDE:
        raise ValueError(f"halo must be a non-negative multiple of {FEATURE_STRIDE}, got {halo}")


def _spans(length: int, tile: int, halo: int, align: int) -> Iterator[tuple[int, int, int, int]]:
    """Yields (start, end, window_start, window_end) along one axis: the tile and its halo-extended window.

    Tiles are of near-equal size (at most ``tile`` plus ``align``) rather than full tiles and a sliver: a sliver
    narrower than the padding would make reflection padding impossible, and equal tiles waste no compute.
    """
    count = _ceil_div(length, tile)
    starts = sorted({align * round(i * length / (count * align)) for i in range(count)})
    for start, end in zip(starts, [*starts[1:], length], strict=True):
        yield start, end, max(0, start - halo), min(length, end + halo)


def encode_tiled(
    encoder: Encoder,
    image: torch.Tensor,
    *,
    tile: int,
    halo: int = DEFAULT_HALO,
    should_stop: StopCheck | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) -> the encoder's output (B, C, ceil(H/8), ceil(W/8)), computed tile by tile."""
    _check_sizes(tile, halo)
    _, _, height, width = image.shape
    out: torch.Tensor | None = None
    for y0, y1, wy0, wy1 in _spans(height, tile, halo, FEATURE_STRIDE):
        for x0, x1, wx0, wx1 in _spans(width, tile, halo, FEATURE_STRIDE):
            feat = encoder.features(image[:, :, wy0:wy1, wx0:wx1], (encoder.depth,), should_stop)[encoder.depth]
            if out is None:
                fh, fw = _ceil_div(height, FEATURE_STRIDE), _ceil_div(width, FEATURE_STRIDE)
                out = feat.new_empty(feat.shape[0], feat.shape[1], fh, fw)
            # Window starts are multiples of 8, so feature offsets are exact; ends use ceil like the pools do.
            rows = slice(y0 // FEATURE_STRIDE, _ceil_div(y1, FEATURE_STRIDE))
            cols = slice(x0 // FEATURE_STRIDE, _ceil_div(x1, FEATURE_STRIDE))
            fy0, fx0 = (y0 - wy0) // FEATURE_STRIDE, (x0 - wx0) // FEATURE_STRIDE
            out[:, :, rows, cols] = feat[:, :, fy0 : fy0 + rows.stop - rows.start, fx0 : fx0 + cols.stop - cols.start]
    assert out is not None
    return out


def decode_tiled(
    decoder: Decoder,
    feat: torch.Tensor,
    *,
    tile: int,
    halo: int = DEFAULT_HALO,
    should_stop: StopCheck | None = None,
) -> torch.Tensor:
    """(B, 512, h, w) -> the decoder's output (B, 3, 8h, 8w), computed in tiles of ``tile`` output pixels."""
    _check_sizes(tile, halo)
    ftile, fhalo = tile // FEATURE_STRIDE, halo // FEATURE_STRIDE
    batch, _, fh, fw = feat.shape
    out = feat.new_empty(batch, 3, fh * FEATURE_STRIDE, fw * FEATURE_STRIDE)
    for y0, y1, wy0, wy1 in _spans(fh, ftile, fhalo, 1):
        for x0, x1, wx0, wx1 in _spans(fw, ftile, fhalo, 1):
            img = decoder(feat[:, :, wy0:wy1, wx0:wx1], should_stop)
            s = FEATURE_STRIDE
            oy, ox = (y0 - wy0) * s, (x0 - wx0) * s
            h, w = (y1 - y0) * s, (x1 - x0) * s
            out[:, :, y0 * s : y0 * s + h, x0 * s : x0 * s + w] = img[:, :, oy : oy + h, ox : ox + w]
    return out
