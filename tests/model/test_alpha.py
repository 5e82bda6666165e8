"""A transparent content's alpha channel split off before the model and put back after (any model family)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from model.images import attach_alpha, decode_image_with_alpha
from tests.helpers import make_image


def _rgba(width: int = 40, height: int = 32) -> Image.Image:
    image = make_image(width, height, seed=3).convert("RGBA")
    alpha = np.zeros((height, width), np.uint8)
    alpha[:, width // 2:] = 255
    alpha[: height // 4, :] = 128  # a translucent band
    image.putalpha(Image.fromarray(alpha))
    return image


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_the_alpha_channel_is_split_off_and_the_model_sees_white_underneath() -> None:
    source = _rgba()
    rgb, alpha = decode_image_with_alpha(_png(source), field="content", max_pixels=1 << 20)
    assert rgb.mode == "RGB" and alpha is not None and alpha.mode == "L"
    assert np.array_equal(np.asarray(alpha), np.asarray(source.getchannel("A")))
    assert np.asarray(rgb)[20, 0].tolist() == [255, 255, 255]  # fully transparent: white, not black


def test_opaque_and_rgb_images_have_no_alpha_to_carry() -> None:
    opaque = make_image(16, 16, seed=1).convert("RGBA")
    assert decode_image_with_alpha(_png(opaque), field="c", max_pixels=1 << 20)[1] is None
    assert decode_image_with_alpha(_png(make_image(16, 16, seed=1)), field="c", max_pixels=1 << 20)[1] is None


def test_a_palette_image_with_a_transparent_index_carries_it() -> None:
    palette = _rgba().convert("RGB").quantize(8)
    palette.info["transparency"] = 0
    _, alpha = decode_image_with_alpha(_png(palette), field="c", max_pixels=1 << 20)
    assert alpha is not None and alpha.getextrema()[0] == 0


def test_attach_alpha_resizes_it_with_the_image() -> None:
    alpha = _rgba().getchannel("A")
    result = attach_alpha(make_image(80, 64, seed=2), alpha)  # the model doubled the size
    assert result.mode == "RGBA" and result.size == (80, 64)
    a = np.asarray(result.getchannel("A"))
    assert a[40, 5] == 0 and a[40, 75] == 255 and abs(int(a[5, 40]) - 128) <= 2
    assert attach_alpha(make_image(8, 8), None).mode == "RGB"
