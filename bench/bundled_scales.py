"""Recomputes the per-layer scales of the bundled VGG19 pinned in ``model/weights_pins.json`` (``relu_means``).

``python -m bench.bundled_scales`` runs the raw (Caffe-scale) network on the photos of :mod:`bench.train_data`
(13 scikit-image/scikit-learn photos, 256x256) and prints the mean activation after each of the 16 convs. Dividing
each layer by its value gives a mean activation of 1 on these photos, as ``vgg_normalised.pth`` has per filter.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from bench.photos import load_photo
from bench.train_data import content_photos
from model.bundled import load_bundled_vgg_state
from model.images import image_to_tensor
from model.network import build_vgg_sequential

__all__ = ["relu_means"]


def relu_means(side: int = 256) -> list[float]:
    """Mean activation after each conv's ReLU of the raw bundled network over the training photos."""
    state, _ = load_bundled_vgg_state(normalise=False)
    network = build_vgg_sequential()
    network.load_state_dict(state)
    x = torch.cat([image_to_tensor(load_photo(path, side, fit="square")) for _, path in content_photos()])
    means = []
    with torch.no_grad():
        for module in network:
            x = module(x)
            if isinstance(module, nn.ReLU):
                means.append(round(float(x.mean()), 4))
    return means


if __name__ == "__main__":
    print(json.dumps(relu_means()))
