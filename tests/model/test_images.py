"""Decoding, validation and conversion of images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model.errors import InvalidImageError
from model.images import (
    decode_image,
    decode_mask,
    encode_image,
    image_to_pixels,
    image_to_tensor,
    pixels_to_image,
    probe_image,
    resize_shorter,
    tensor_to_image,
)
from tests.helpers import bomb_png, encode, make_image


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    image = decode_image(encode(make_image(20, 10), fmt), field="content", max_pixels=1000)
    assert image.mode == "RGB" and image.size == (20, 10)


def test_other_formats_and_garbage_are_refused_with_the_field_name() -> None:
    with pytest.raises(InvalidImageError, match="content: format GIF"):
        decode_image(encode(make_image(8, 8), "GIF"), field="content", max_pixels=1000)
    with pytest.raises(InvalidImageError, match=r"styles\[0\]\.image: is not a PNG"):
        decode_image(b"not an image", field="styles[0].image", max_pixels=1000)
    with pytest.raises(InvalidImageError, match="is empty"):
        decode_image(b"", field="content", max_pixels=1000)


def test_decompression_bomb_refused_from_its_header_without_decoding(monkeypatch) -> None:
    from PIL import ImageFile

    def load(self):
        raise AssertionError("the pixels were decoded")  # 1.6 G pixels would take minutes and gigabytes

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(InvalidImageError, match="over the limit"):
        decode_image(bomb_png(40_000, 40_000), field="content", max_pixels=16_777_216)
    monkeypatch.undo()
    assert probe_image(bomb_png(100, 50), field="content", max_pixels=5000) == (100, 50)


def test_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    decoded = decode_image(encode(rgba), field="content", max_pixels=100)
    assert decoded.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("mode", ["L", "P", "LA", "I;16", "CMYK"])
def test_modes_become_rgb(mode: str) -> None:
    base = make_image(12, 9)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    else:
        image = base.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    decoded = decode_image(encode(image, fmt), field="content", max_pixels=1000)
    assert decoded.mode == "RGB" and decoded.size == (12, 9)
    if mode == "I;16":  # 16-bit gray keeps its levels (high byte)
        assert np.abs(np.asarray(decoded)[..., 0].astype(int) - np.asarray(base.convert("L"), dtype=int)).max() <= 1


def test_exif_orientation_is_applied() -> None:
    image = make_image(30, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes()), field="content", max_pixels=1000)
    assert decoded.size == (10, 30)


def test_mask_decodes_to_grayscale() -> None:
    mask = decode_mask(encode(make_image(8, 8)), field="styles[0].mask", max_pixels=100)
    assert mask.mode == "L"


def test_resize_shorter_matches_reference_semantics() -> None:
    image = make_image(300, 200)
    assert resize_shorter(image, 100).size == (150, 100)
    assert resize_shorter(image, 0) is image
    assert resize_shorter(make_image(201, 301), 64).size == (64, 95)  # int(64 * 301 / 201) = 95


def test_tensor_round_trip_uses_reference_rounding() -> None:
    t = torch.tensor([0.0, 0.5 / 255, 0.49 / 255, 1.2, -0.3]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    pixels = np.asarray(tensor_to_image(t))[0, :, 0]
    assert pixels.tolist() == [0, 1, 0, 255, 0]  # x*255 + 0.5, clamped, truncated: as torchvision's save_image
    image = make_image(7, 5)
    assert np.array_equal(np.asarray(tensor_to_image(image_to_tensor(image))), np.asarray(image))


def test_numpy_conversions_match_the_torch_ones() -> None:
    """The ONNX families convert in NumPy; their outputs must be those of the torch conversions, to the last level."""
    image = make_image(9, 6)
    pixels = image_to_pixels(image)
    assert pixels.dtype == np.float32
    assert np.array_equal(pixels, image_to_tensor(image)[0].permute(1, 2, 0).numpy())
    values = np.random.default_rng(0).uniform(-0.2, 1.2, (6, 9, 3)).astype(np.float32)
    values[0, :5, 0] = [0.0, 0.5 / 255, 0.49 / 255, 1.2, -0.3]
    expected = np.asarray(tensor_to_image(torch.from_numpy(values).permute(2, 0, 1)))
    assert np.array_equal(np.asarray(pixels_to_image(values)), expected)
    assert np.asarray(pixels_to_image(values))[0, :5, 0].tolist() == [0, 1, 0, 255, 0]


@pytest.mark.parametrize("fmt, mime", [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_encode_formats(fmt: str, mime: str) -> None:
    data, got = encode_image(make_image(16, 16), fmt, 80)
    assert got == mime
    assert Image.open(__import__("io").BytesIO(data)).format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]


def test_png_is_lossless_and_no_larger_than_default_level_1() -> None:
    # The reply encoder (model/png.py) was chosen for speed on the worker; it must not cost file size on photo-like
    # images.
    rng = np.random.default_rng(5)
    photo = np.clip(np.asarray(make_image(128, 128, seed=5), dtype=np.int16) + rng.normal(0, 6, (128, 128, 3)), 0, 255)
    image = Image.fromarray(photo.astype(np.uint8))
    data, _ = encode_image(image, "png")
    assert np.array_equal(np.asarray(decode_image(data, field="x", max_pixels=1 << 20)), np.asarray(image))
    default = __import__("io").BytesIO()
    image.save(default, format="PNG", compress_level=1)
    assert len(data) <= len(default.getvalue())


def test_webp_quality_100_is_lossless() -> None:
    image = make_image(16, 16)
    data, _ = encode_image(image, "webp", 100)
    assert np.array_equal(np.asarray(decode_image(data, field="x", max_pixels=1000)), np.asarray(image))
    with pytest.raises(ValueError):
        encode_image(image, "gif")


@pytest.mark.parametrize("size", [(97, 61), (61, 97), (64, 64), (300, 200)])
@pytest.mark.parametrize("target", [32, 64, 150])
def test_resize_and_to_tensor_equal_torchvisions(size: tuple[int, int], target: int) -> None:
    # The reference preprocesses with torchvision's Resize and ToTensor; ours must give the same pixels.
    import torchvision.transforms.functional as TF

    image = make_image(*size, seed=3)
    resized = resize_shorter(image, target)
    assert np.array_equal(np.asarray(resized), np.asarray(TF.resize(image, target)))
    assert torch.equal(image_to_tensor(resized), TF.to_tensor(resized).unsqueeze(0))
