"""FLOP counts of the AdaIN networks from their layer shapes (no execution), 2 FLOPs per multiply-add."""

from __future__ import annotations

from torch import nn

from model.network import ENCODER_MODULES, build_decoder_sequential, build_vgg_sequential

__all__ = ["adain_flops", "decoder_flops", "encoder_flops"]


def _walk(layers: nn.Sequential, channels: int, height: int, width: int) -> tuple[int, int, int]:
    """Returns (flops, height, width) after running ``layers`` symbolically on a (channels, height, width) input."""
    flops = 0
    for module in layers:
        if isinstance(module, nn.ReflectionPad2d):
            left, right, top, bottom = module.padding
            height, width = height + top + bottom, width + left + right
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            height, width = height - kh + 1, width - kw + 1
            flops += 2 * module.in_channels * module.out_channels * kh * kw * height * width
        elif isinstance(module, nn.MaxPool2d):
            height, width = -(-height // 2), -(-width // 2)  # ceil_mode=True
        elif isinstance(module, nn.Upsample):
            height, width = height * 2, width * 2
    return flops, height, width


def encoder_flops(height: int, width: int) -> int:
    """FLOPs of the AdaIN encoder (VGG19 to relu4_1) on a height x width image."""
    return _walk(build_vgg_sequential()[:ENCODER_MODULES], 3, height, width)[0]


def decoder_flops(height: int, width: int) -> int:
    """FLOPs of the decoder producing (about) a height x width image from ceil(h/8) x ceil(w/8) features."""
    return _walk(build_decoder_sequential(), 512, -(-height // 8), -(-width // 8))[0]


def adain_flops(height: int, width: int, style: tuple[int, int] | None) -> int:
    """One stylization: encode content, encode the style unless cached (``style`` None), decode."""
    total = encoder_flops(height, width) + decoder_flops(height, width)
    if style is not None:
        total += encoder_flops(*style)
    return total
