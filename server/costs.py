"""The cost model: what one request may cost in pixels, steps and bytes, derived from the configuration.

Every input that scales memory or time is bounded here, once, and checked from the request's fields and the images'
headers before any work is queued (a decoded pixel or a queued job costs memory; a header costs microseconds):

- images: decoded size (``max_image_pixels``, checked from the header by ``model.images``) and the size *after*
  resizing, which is what the networks see: Stylize content (``max_output_pixels``, tiled above ``tile_size``),
  stream frames (``stream_max_frame_pixels``, as sent and as stylized), style images (``max_style_pixels``: styles
  are encoded whole, ~0.5 GB per megapixel), every Gatys scale (``gatys_max_pixels``); and at least the shorter side
  the network needs (a model's ``capabilities.min_side``, Gatys's ``model.gatys.MIN_SIDE``);
- counts: styles per request (``max_styles``, Stylize, streams and Gatys alike), frames per stream
  (``stream_max_frames``, enforced by ``server.stream``), steps (``gatys_max_iterations`` per scale,
  ``train_max_iterations``), Train pixels per step (``train_max_batch_pixels`` = batch_size x image_size^2);
- strings and stored bytes: display names (:data:`MAX_DISPLAY_NAME`), ids and names (fixed formats), request
  messages (``max_message_bytes``), jobs waiting (``max_queued_jobs``).

The README's "Limits" table lists each bound with its flag and default.
"""

from __future__ import annotations

import math

from google.protobuf.message import Message

from model.gatys import MIN_SIDE as GATYS_MIN_SIDE
from model.images import resized_size
from server.config import Config
from server.errors import InvalidArgument

__all__ = [
    "MAX_DISPLAY_NAME",
    "check_content",
    "check_display_name",
    "check_finite",
    "check_frame",
    "check_gatys_scale",
    "check_style",
    "check_style_count",
    "check_train_batch",
    "gatys_scale",
    "shown",
]

MAX_DISPLAY_NAME = 256  # characters of a style's display name (stored and listed: ListStyles pages stay small)
_SHOWN = 64  # characters of a user-supplied string echoed in a message or log line


def shown(text: str) -> str:
    """A user string as it may appear in messages and logs: truncated and ``repr``-escaped (no newlines, no
    control characters, bounded length), so an id of 1 MB or with a newline cannot forge or bloat a log line."""
    return repr(text[:_SHOWN] + ("..." if len(text) > _SHOWN else ""))


def _check_resized(field: str, width: int, height: int, size: int, max_pixels: int, min_side: int,
                   what: str) -> tuple[int, int]:
    new_width, new_height = resized_size(width, height, size)
    pixels = new_width * new_height
    if pixels > max_pixels:
        raise InvalidArgument(f"{field}: a {width}x{height} image at {what} {size or 'unchanged'} would be "
                              f"{new_width}x{new_height} = {pixels} pixels, over the limit of {max_pixels}")
    if min(new_width, new_height) < min_side:
        raise InvalidArgument(f"{field}: a {width}x{height} image at {what} {size or 'unchanged'} would be "
                              f"{new_width}x{new_height}; the shorter side must be at least {min_side} px")
    return new_width, new_height


def check_content(field: str, width: int, height: int, content_size: int, config: Config,
                  min_side: int) -> tuple[int, int]:
    """The size of a Stylize output (content after ``content_size``); refused over ``max_output_pixels`` or under
    ``min_side`` (the model's ``capabilities.min_side``)."""
    return _check_resized(field, width, height, content_size, config.max_output_pixels, min_side, "content_size")


def check_frame(field: str, width: int, height: int, content_size: int, config: Config,
                min_side: int) -> tuple[int, int]:
    """The size of a stream's stylized frame: as :func:`check_content`, and within ``stream_max_frame_pixels``, which
    bounds what one frame may cost (the frame as sent is bounded from its header by the caller)."""
    max_pixels = min(config.stream_max_frame_pixels, config.max_output_pixels)
    return _check_resized(field, width, height, content_size, max_pixels, min_side, "content_size")


def check_style(field: str, width: int, height: int, style_size: int, config: Config,
                min_side: int) -> tuple[int, int]:
    """The size a style image is encoded at (after ``style_size``); refused over ``max_style_pixels`` or under
    ``min_side``."""
    return _check_resized(field, width, height, style_size, config.max_style_pixels, min_side, "style_size")


def check_style_count(count: int, config: Config) -> None:
    if count < 1:
        raise InvalidArgument("styles: at least one style is required")
    if count > config.max_styles:
        raise InvalidArgument(f"styles: at most {config.max_styles} styles per request, got {count}")


def check_gatys_scale(field: str, width: int, height: int, long_side: int, config: Config) -> tuple[int, int]:
    """One Gatys scale: the content resized to ``long_side`` on its longer side (as ``model.gatys`` does)."""
    new_width, new_height = gatys_scale(width, height, long_side)
    pixels = new_width * new_height
    if pixels > config.gatys_max_pixels:
        raise InvalidArgument(f"{field}: a {long_side} px scale is {new_width}x{new_height} = {pixels} pixels, over "
                              f"the limit of {config.gatys_max_pixels}")
    if min(new_width, new_height) < GATYS_MIN_SIDE:
        raise InvalidArgument(f"{field}: a {long_side} px scale of a {width}x{height} content is "
                              f"{new_width}x{new_height}; the shorter side must be at least {GATYS_MIN_SIDE} px")
    return new_width, new_height


def gatys_scale(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The size of a ``width`` x ``height`` content at a Gatys scale of ``long_side`` (model.gatys's rounding)."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_train_batch(batch_size: int, image_size: int, config: Config) -> None:
    """A Train step's pixels (batch_size x image_size^2), which its activation memory is proportional to."""
    pixels = batch_size * image_size * image_size
    if pixels > config.train_max_batch_pixels:
        raise InvalidArgument(f"batch_size x image_size^2 = {batch_size} x {image_size}^2 = {pixels} pixels per step, "
                              f"over the limit of {config.train_max_batch_pixels}")


def check_display_name(name: str) -> None:
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidArgument(f"display_name: at most {MAX_DISPLAY_NAME} characters, got {len(name)}")


def check_finite(message: Message, path: str = "") -> None:
    """Refuses NaN and infinities in any float or double field of ``message`` (nested messages included): a weight
    or learning rate of inf is accepted by every ``>= 0`` check and ends in NaN losses and black images.

    Only those fields are read: ``ListFields`` would hand over every bytes field too, each read a copy (32 MB of
    content at the message limit, tens of milliseconds with the GIL held)."""
    for descriptor in message.DESCRIPTOR.fields:
        name = f"{path}{descriptor.name}"
        if descriptor.type == descriptor.TYPE_MESSAGE:
            if descriptor.message_type.GetOptions().map_entry:
                continue
            if descriptor.is_repeated:
                for i, item in enumerate(getattr(message, descriptor.name)):
                    check_finite(item, f"{name}[{i}].")
            elif message.HasField(descriptor.name):
                check_finite(getattr(message, descriptor.name), f"{name}.")
        elif descriptor.type in (descriptor.TYPE_FLOAT, descriptor.TYPE_DOUBLE):
            value = getattr(message, descriptor.name)
            if not all(math.isfinite(v) for v in (value if descriptor.is_repeated else [value])):
                raise InvalidArgument(f"{name} must be a finite number")
