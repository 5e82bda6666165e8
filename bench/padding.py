"""How much the bundled VGG19's relu4_1 changes between zero padding (how it was trained) and reflection (ours).

``python -m bench.padding`` runs skimage's astronaut and coffee through the bundled encoder twice, once as built
(reflection padding before every 3x3 conv) and once with each ``ReflectionPad2d`` swapped for zero padding, and
prints the relative L2 difference of relu4_1 over the whole map, over the map without a border of 2 feature pixels,
and of the AdaIN statistics (channel means and standard deviations) that AdaIN actually consumes.
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
from PIL import Image
from torch import nn

from bench.photos import load_photo
from model.adain import calc_mean_std
from model.encoders import BUNDLED, load_encoder
from model.images import image_to_tensor
from model.network import RELU4_1, Encoder

__all__ = ["padding_difference", "zero_padded"]


def zero_padded(encoder: Encoder) -> Encoder:
    """A copy of ``encoder`` with zero instead of reflection padding (the convention the weights were trained in)."""
    twin = copy.deepcopy(encoder)
    for index, module in enumerate(twin.layers):
        if isinstance(module, nn.ReflectionPad2d):
            twin.layers[index] = nn.ZeroPad2d(module.padding)
    return twin


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def padding_difference(image: Image.Image, border: int = 2) -> dict[str, float]:
    """Relative differences (reflection vs zero padding) of relu4_1 and of its AdaIN statistics on ``image``."""
    reflect, _ = load_encoder(BUNDLED, RELU4_1)
    zero = zero_padded(reflect)
    x = image_to_tensor(image)
    with torch.no_grad():
        a, b = reflect(x), zero(x)
    (mean_a, std_a), (mean_b, std_b) = calc_mean_std(a), calc_mean_std(b)
    inner = (slice(None), slice(None), slice(border, -border), slice(border, -border))
    return {"side": min(image.size), "relu4_1": _relative(a, b), "relu4_1_interior": _relative(a[inner], b[inner]),
            "mean": _relative(mean_a, mean_b), "std": _relative(std_a, std_b)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.padding", description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="128,256,512")
    args = parser.parse_args(argv)
    for name in ("astronaut", "coffee"):
        for side in map(int, args.sides.split(",")):
            print(json.dumps({"image": name, **padding_difference(load_photo(name, side, fit="square"))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
