"""Stylize keeps a transparent content's alpha channel in PNG and WebP (resized with the image); flatten_alpha and
JPEG return opaque images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import make_image, png_bytes

WIDTH, HEIGHT = 48, 40


def _avatar() -> tuple[bytes, np.ndarray]:
    """A 48x40 RGBA image: transparent left half, opaque right half."""
    image = make_image(WIDTH, HEIGHT, seed=5).convert("RGBA")
    alpha = np.zeros((HEIGHT, WIDTH), np.uint8)
    alpha[:, WIDTH // 2:] = 255
    image.putalpha(Image.fromarray(alpha))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), alpha


def _stylize(server, **fields) -> Image.Image:
    content, _ = _avatar()
    reply = server.stub().Stylize(pb.StylizeRequest(content=content, styles=[pb.StyleInput(image=png_bytes(32, 32, 2))],
                                                    style_size=32, **fields), timeout=60)
    return Image.open(io.BytesIO(reply.image))


@pytest.mark.parametrize("fmt", [pb.IMAGE_FORMAT_PNG, pb.IMAGE_FORMAT_WEBP])
def test_png_and_webp_keep_the_contents_alpha(server, fmt: int) -> None:
    out = _stylize(server, output_format=fmt)
    assert out.mode == "RGBA" and out.size == (WIDTH, HEIGHT)
    assert np.array_equal(np.asarray(out.getchannel("A")), _avatar()[1])


def test_the_alpha_is_resized_with_the_image(server) -> None:
    out = _stylize(server, content_size=80)  # shorter side 40 -> 80: twice the size
    assert out.mode == "RGBA" and out.size == (96, 80)
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[:, :40].max() == 0 and alpha[:, 56:].min() == 255


@pytest.mark.parametrize("fields", [{"flatten_alpha": True}, {"output_format": pb.IMAGE_FORMAT_JPEG}])
def test_flatten_alpha_and_jpeg_return_opaque_images(server, fields: dict) -> None:
    assert _stylize(server, **fields).mode == "RGB"
