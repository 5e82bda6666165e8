"""The PNG encoder: lossless for every mode it takes, across strip boundaries, and compact on flat and photo images."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from model.images import encode_image
from model.png import encode_png


def decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


def chunk_tags(data: bytes) -> list[bytes]:
    tags, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        tags.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return tags


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("RGBA", 4)])
@pytest.mark.parametrize("width, height", [(1, 1), (1, 9), (9, 1), (37, 23)])
def test_round_trip_is_exact(mode: str, channels: int, width: int, height: int) -> None:
    rng = np.random.default_rng(width * 100 + height)
    # Values from {0, 1, 2, 255} make the Paeth predictor tie often, so its tie order is exercised; noise elsewhere.
    ties = rng.choice(np.array([0, 1, 2, 255], np.uint8), (height, width, channels))
    noise = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    for array in (ties, noise):
        image = Image.fromarray(array.squeeze(2) if channels == 1 else array, mode)
        assert np.array_equal(decoded(encode_png(image)), np.asarray(image))


def test_strips_carry_the_row_above_across_boundaries() -> None:
    rng = np.random.default_rng(3)
    array = np.cumsum(rng.integers(-3, 4, (50, 20, 3)), axis=0).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(array)
    small_strips = encode_png(image, strip_bytes=200)  # three rows (61 bytes each) per strip: 17 strips
    assert np.array_equal(decoded(small_strips), array)
    # Strips change nothing but memory: the filtered stream, and so the file, is the same as in one strip.
    assert small_strips == encode_png(image)


def test_large_images_are_written_as_several_idat_chunks() -> None:
    rng = np.random.default_rng(4)
    array = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    data = encode_png(Image.fromarray(array), strip_bytes=40_000)
    tags = chunk_tags(data)
    assert tags[0] == b"IHDR" and tags[-1] == b"IEND" and set(tags[1:-1]) == {b"IDAT"} and len(tags) > 4
    assert np.array_equal(decoded(data), array)


def test_flat_images_stay_tiny() -> None:
    # Run-length coding of the zero residuals is what keeps this small; Huffman-only coding made it 80 times larger.
    array = np.zeros((256, 256, 3), np.uint8)
    array[40:200, 30:220] = (200, 30, 90)
    data = encode_png(Image.fromarray(array))
    assert len(data) < array.nbytes // 200
    assert np.array_equal(decoded(data), array)


def test_photo_like_images_are_no_larger_than_pillows_level_1() -> None:
    rng = np.random.default_rng(7)
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((128, 128),
                                                                                            Image.BICUBIC))
    array = np.clip(base.astype(np.int16) + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    pillow = io.BytesIO()
    Image.fromarray(array).save(pillow, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    assert len(encode_png(Image.fromarray(array))) <= len(pillow.getvalue()) * 1.02


def test_other_modes_fall_back_to_pillow() -> None:
    with pytest.raises(ValueError, match="mode P"):
        encode_png(Image.new("P", (4, 4)))
    palette = Image.new("P", (4, 4), color=3)
    data, mime = encode_image(palette, "png")
    assert mime == "image/png" and Image.open(io.BytesIO(data)).mode == "P"
