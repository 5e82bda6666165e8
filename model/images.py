"""Image decoding, validation, resizing and tensor conversion, with the reference implementation's semantics.

Decoding checks the pixel count from the header before any pixel is decoded, so a small file that declares a huge
image (a decompression bomb) is refused in milliseconds. Inputs of every common mode are brought to RGB: alpha is
composited on white (a transparent background becomes white, not black), palettes and 16-bit gray are expanded,
and EXIF orientation is applied so phone photos are upright. Models see RGB only; a caller that wants the content's
transparency back splits it off with :func:`decode_image_with_alpha` and puts it on the result with
:func:`attach_alpha`, whatever the model family.
"""

from __future__ import annotations

import io
import warnings
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps

from model.errors import InvalidImageError
from model.png import COLOR_TYPES, encode_png

__all__ = [
    "ACCEPTED_FORMATS",
    "OUTPUT_FORMATS",
    "attach_alpha",
    "decode_image",
    "decode_image_with_alpha",
    "decode_mask",
    "encode_image",
    "image_to_tensor",
    "pad_bottom_right",
    "probe_image",
    "resize_shorter",
    "resized_size",
    "set_pixel_limit",
    "tensor_to_image",
    "to_rgb",
]

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "MPO")  # MPO: camera JPEGs with extra frames; the first is the photo
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


def _open_checked(data: bytes, field: str, max_pixels: int) -> Image.Image:
    """Opens ``data`` lazily (header only) and checks its format and declared size."""
    if not data:
        raise InvalidImageError(field, "is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise InvalidImageError(field, f"declares a size over the limit of {max_pixels} pixels") from None
    except Exception:
        raise InvalidImageError(field, "is not a PNG, JPEG or WebP image") from None
    if img.format not in ACCEPTED_FORMATS:
        raise InvalidImageError(field, f"format {img.format} is not accepted; use PNG, JPEG or WebP")
    width, height = img.size
    if width < 1 or height < 1:
        raise InvalidImageError(field, "has no pixels")
    if width * height > max_pixels:
        raise InvalidImageError(field, f"is {width}x{height} = {width * height} pixels, over the limit {max_pixels}")
    return img


def set_pixel_limit(max_pixels: int) -> None:
    """Sets Pillow's process-wide decompression-bomb limit once, at start-up, to the caller's own limit.

    Pillow refuses images over twice ``Image.MAX_IMAGE_PIXELS`` when they are opened; our header check
    (``max_pixels`` of each call) is the tighter one for requests, and this makes Pillow's the same order for every
    other reader in the process (e.g. the training data loader). It is a global, so it is set once and never
    toggled around a decode (two concurrent decodes would race on it).
    """
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    Image.MAX_IMAGE_PIXELS = max_pixels


def _load(img: Image.Image, field: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
        if img.format == "MPO":
            img = img.copy()  # the first frame (the photo) as a plain image
        return ImageOps.exif_transpose(img)
    except Exception as exc:
        raise InvalidImageError(field, f"could not be decoded ({type(exc).__name__})") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited on white."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode.startswith("I;16") or img.mode == "I":
        wide = np.asarray(img, dtype=np.uint32 if img.mode == "I" else np.uint16)
        img = Image.fromarray((wide >> 8).clip(0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def probe_image(data: bytes, *, field: str, max_pixels: int) -> tuple[int, int]:
    """Checks format and declared size from the header alone (microseconds); returns (width, height)."""
    return _open_checked(data, field, max_pixels).size


def decode_image(data: bytes, *, field: str, max_pixels: int) -> Image.Image:
    """Encoded PNG/JPEG/WebP bytes -> an upright RGB image, or :class:`InvalidImageError` naming ``field``."""
    return to_rgb(_load(_open_checked(data, field, max_pixels), field))


def decode_image_with_alpha(data: bytes, *, field: str, max_pixels: int) -> tuple[Image.Image, Image.Image | None]:
    """Like :func:`decode_image`, plus the alpha channel (mode ``L``) when the image has a transparent pixel.

    The RGB image is the one the model should see (transparency composited on white); an alpha channel that is
    opaque everywhere is None, so an RGBA file without transparency costs nothing more.
    """
    img = _load(_open_checked(data, field, max_pixels), field)
    return to_rgb(img), alpha_channel(img)


def alpha_channel(img: Image.Image) -> Image.Image | None:
    """The alpha channel of ``img`` as mode ``L``, or None when it has none or every pixel is opaque."""
    if img.mode == "P" and "transparency" not in img.info:
        return None
    if img.mode not in ("RGBA", "LA", "PA", "RGBa", "La", "P"):
        return None
    alpha = img.convert("RGBA").getchannel("A")
    return None if alpha.getextrema() == (255, 255) else alpha


def attach_alpha(image: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """``image`` (RGB) with ``alpha`` as its alpha channel, resized to the image's size (the model may have resized
    the content); ``image`` itself when ``alpha`` is None."""
    if alpha is None:
        return image
    if alpha.size != image.size:
        alpha = alpha.resize(image.size, Image.Resampling.LANCZOS)
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


def decode_mask(data: bytes, *, field: str, max_pixels: int) -> Image.Image:
    """Encoded mask image -> mode ``L`` (alpha, if any, is ignored: masks are read from luminance)."""
    img = _load(_open_checked(data, field, max_pixels), field)
    return to_rgb(img).convert("L") if img.mode not in ("L", "1") else img.convert("L")


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resizes the shorter side to ``size`` (0 keeps the image): torchvision ``Resize(size)`` as the reference uses,
    i.e. PIL's bilinear (antialiased) resize to the size torchvision computes."""
    new_size = resized_size(img.width, img.height, size)
    if new_size == img.size:
        return img
    return img.resize(new_size, Image.Resampling.BILINEAR)


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The (width, height) :func:`resize_shorter` produces, computed without touching pixels (so callers can bound
    the cost of a resize before doing it: a 2000x1 image at size 512 would be 512 x 1,024,000)."""
    if size < 0:
        raise ValueError("size must not be negative")
    if size == 0 or min(width, height) == size:
        return width, height
    short, long = min(width, height), max(width, height)
    new_short, new_long = size, int(size * long / short)  # torchvision's rounding (truncation) of the long side
    return (new_short, new_long) if width <= height else (new_long, new_short)


def pad_bottom_right(pixels: np.ndarray, multiple: int, minimum: int, *, axes: tuple[int, int]) -> np.ndarray:
    """Mirror-pads the (height, width) ``axes`` at the bottom and right to multiples of ``multiple``, at least
    ``minimum``: what fully convolutional networks with strided convolutions need to return the input's size after
    cropping (the caller crops the output back).

    ``symmetric`` (edge pixel repeated) is defined for any pad, even wider than a 1-px image; ``reflect`` is not."""
    pads = [(0, 0)] * pixels.ndim
    for axis in axes:
        side = pixels.shape[axis]
        pads[axis] = (0, max(minimum, -(-side // multiple) * multiple) - side)
    if all(after == 0 for _, after in pads):
        return pixels
    return np.pad(pixels, pads, mode="symmetric")


def image_to_pixels(img: Image.Image) -> np.ndarray:
    """RGB image -> (H, W, 3) float32 in [0, 1], in NumPy, for the ONNX families, whose graphs take arrays. NumPy runs
    on the calling thread alone; torch's ops would wake its OpenMP workers, which then spin for a while on the cores
    that the graph and the next step need (at 320x256 on 2 cores a preset took 36 ms a frame with torch's
    conversions and 31 ms without, and a stream's stabiliser after it 19 ms of CPU time against 15)."""
    return np.asarray(img.convert("RGB"), dtype=np.float32) / np.float32(255)


def pixels_to_image(pixels: np.ndarray) -> Image.Image:
    """(H, W, 3) float in [0, 1] -> RGB image, rounding as :func:`tensor_to_image` does, in NumPy (see
    :func:`image_to_pixels`)."""
    return Image.fromarray((pixels * np.float32(255) + np.float32(0.5)).clip(0, 255).astype(np.uint8), mode="RGB")


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) float32 in [0, 1], contiguous: torchvision's ``to_tensor``, without importing
    torchvision (a second of server start-up)."""
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W, 3), a copy: PIL's buffer is read-only
    return pixels.permute(2, 0, 1).unsqueeze(0).float().div_(255).contiguous()


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) -> RGB image, rounding as torchvision's ``save_image`` (the reference's output)."""
    t = tensor.detach()
    if t.dim() == 4:
        t = t[0]
    array = t.float().mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    return Image.fromarray(array, mode="RGB")


def encode_image(img: Image.Image, fmt: str = "png", quality: int = 90) -> tuple[bytes, str]:
    """Encodes ``img`` as png, jpeg or webp; returns (bytes, MIME type). WebP at quality 100 is lossless."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if not 1 <= quality <= 100:
        raise ValueError("quality must be in 1..100")
    pil_format, mime = OUTPUT_FORMATS[fmt]
    if pil_format == "PNG" and img.mode in COLOR_TYPES:
        return encode_png(img), mime  # Paeth + run-length deflate: faster than Pillow, same size (model/png.py)
    buf = io.BytesIO()
    if pil_format == "PNG":  # modes model/png.py does not write (palette, 16-bit, ...)
        # zlib's run-length strategy at level 1: PNG's filtered rows have few long matches to find, so this is both
        # faster and smaller than level 1's default strategy (measured at 512 px on photo-like images: ~16 vs 24 ms,
        # files 5-10% smaller, about the size of level 6, which takes 30-40 ms).
        img.save(buf, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    elif pil_format == "JPEG":
        img.save(buf, format="JPEG", quality=quality)
    else:
        img.save(buf, format="WEBP", quality=quality, lossless=quality == 100)
    return buf.getvalue(), mime
