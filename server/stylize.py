"""Stylize and PutStyle: validate at the edge, then decode -> model -> encode on an inference worker. A stream's
settings and frames (``server.stream``) go through the same checks and the same :func:`render`.

Only the :class:`model.family.StyleModel` protocol is used here: styles travel as opaque codes, cached and stored
per code producer, and the request rules are the model's own (``model.check``), called before the work queues."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from PIL import Image

from model.errors import Cancelled
from model.family import BatchItem, ColorMode, StyleCode, StyleModel, StyleSource, StyleSpec, StylizeOptions
from model.images import (
    attach_alpha,
    decode_image,
    decode_image_with_alpha,
    decode_mask,
    encode_image,
    probe_image,
    resize_shorter,
)
from model.masks import render_batch
from model.network import StopCheck
from server.costs import check_content, check_finite, check_style, check_style_count
from server.errors import InvalidArgument, NotFound
from server.response_cache import CachedResponse, ResponseKey, response_key
from server.runtime import Runtime
from server.style_cache import inline_style_key
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = [
    "Outcome",
    "Output",
    "PostProcess",
    "Settings",
    "check_settings",
    "check_stylize_request",
    "color_mode",
    "output_format",
    "output_of",
    "registered_size",
    "render",
    "run_stylize",
    "style_code_for_id",
    "style_sources",
]

log = logging.getLogger(__name__)
FORMATS = {pb.IMAGE_FORMAT_UNSPECIFIED: "png", pb.IMAGE_FORMAT_PNG: "png", pb.IMAGE_FORMAT_JPEG: "jpeg",
           pb.IMAGE_FORMAT_WEBP: "webp"}
ALPHA_FORMATS = {"png", "webp"}  # outputs that carry a transparent content's alpha channel (JPEG has none)


@dataclass(frozen=True)
class Outcome:
    data: bytes
    mime_type: str
    width: int
    height: int
    decode_ms: float
    compute_ms: float
    encode_ms: float


def output_format(fmt: int, quality: int) -> tuple[str, int]:
    if fmt not in FORMATS:
        raise InvalidArgument(f"output_format {fmt} is not one of PNG, JPEG, WEBP")
    if quality > 100:
        raise InvalidArgument("quality must be in 1..100 (0 means 90)")
    return FORMATS[fmt], quality or 90


def color_mode(preserve: bool, mode: int) -> ColorMode:
    if mode == pb.COLOR_PRESERVATION_CORAL:
        return ColorMode.CORAL
    if mode == pb.COLOR_PRESERVATION_LUMINANCE:
        return ColorMode.LUMINANCE
    if mode != pb.COLOR_PRESERVATION_UNSPECIFIED:
        raise InvalidArgument(f"color_preservation {mode} is not a known value")
    return ColorMode.CORAL if preserve else ColorMode.NONE


#: The messages that carry styles and options: a Stylize call, and a stream's settings (the same field names).
Settings = pb.StylizeRequest | pb.StreamSettings


@dataclass(frozen=True)
class Output:
    """How a result is encoded: format, quality, and whether a transparent content's alpha channel goes back on."""

    fmt: str
    quality: int
    keep_alpha: bool


def output_of(request: Settings) -> Output:
    fmt, quality = output_format(request.output_format, request.quality)
    return Output(fmt, quality, fmt in ALPHA_FORMATS and not request.flatten_alpha)


def check_stylize_request(request: pb.StylizeRequest, runtime: Runtime, model: StyleModel) -> StylizeOptions:
    """Every check that needs no decoding, so bad requests fail before they queue: the transport's limits here, the
    request rules by ``model.check`` (which names an option the model lacks). Returns the model options."""
    content = request.content  # read once: every read of a bytes field copies it (32 MB at the message limit)
    if not content:
        raise InvalidArgument("content: an image is required")
    options = check_settings(request, runtime, model)
    width, height = probe_image(content, field="content", max_pixels=runtime.config.max_image_pixels)
    check_content("content", width, height, options.content_size, runtime.config, model.capabilities.min_side)
    return options


def check_settings(request: Settings, runtime: Runtime, model: StyleModel) -> StylizeOptions:
    """The checks of everything but the content (styles, options, output), from fields and image headers alone:
    a Stylize call's, and a stream's once for all its frames. Returns the model options."""
    cfg = runtime.config
    check_finite(request)
    check_style_count(len(request.styles), cfg)
    defaults = model.info.defaults  # what the model's family declares for options the request leaves unset
    style_size = request.style_size if request.HasField("style_size") else defaults.style_size
    for i, style in enumerate(request.styles):
        source = style.WhichOneof("source")
        image = style.image if source == "image" else b""  # read once, as the content
        if source is None or (source == "image" and not image) or (source == "style_id" and not style.style_id):
            raise InvalidArgument(f"styles[{i}]: set image or style_id")
        if source == "image":
            width, height = probe_image(image, field=f"styles[{i}].image", max_pixels=cfg.max_image_pixels)
            check_style(f"styles[{i}].image", width, height, style_size, cfg, model.capabilities.min_side)
        if style.HasField("mask"):
            probe_image(style.mask, field=f"styles[{i}].mask", max_pixels=cfg.max_image_pixels)
    alpha = request.alpha if request.HasField("alpha") else defaults.alpha
    content_size = request.content_size if request.HasField("content_size") else defaults.content_size
    output_of(request)
    tile_size = cfg.tile_size if model.capabilities.tiling else 0  # a server setting, not the request's option
    options = StylizeOptions(alpha=alpha, color=color_mode(request.preserve_color, request.color_preservation),
                             content_size=content_size, style_size=style_size, tile_size=tile_size)
    model.check(_specs(request, options, runtime), options)
    return options


def _specs(request: Settings, options: StylizeOptions, runtime: Runtime) -> list[StyleSpec]:
    """What the model will receive: codes, except images under CORAL (its statistics depend on the content);
    presets are always codes."""
    specs = []
    for style, weight in zip(request.styles, _weights(request), strict=True):
        preset = style.WhichOneof("source") == "style_id" and runtime.presets.get(style.style_id) is not None
        source = "image" if options.color is ColorMode.CORAL and not preset else "code"
        specs.append(StyleSpec(source, weight, style.HasField("mask"), preset))
    return specs


def _decode_style(runtime: Runtime, model: StyleModel | None, data: bytes, field: str, style_size: int
                  ) -> Image.Image:
    """A style image decoded, once its size after ``style_size`` is within the cost model and ``model``'s smallest
    side (registered styles are only checked here: their originals are on disk, not in the request)."""
    image = decode_image(data, field=field, max_pixels=runtime.config.max_image_pixels)
    min_side = model.capabilities.min_side if model is not None else 1
    check_style(field, image.width, image.height, style_size, runtime.config, min_side)
    return image


def style_code_for_id(runtime: Runtime, model: StyleModel, style_id: str, stop: StopCheck | None) -> StyleCode:
    """A registered style's code for ``model``: memory, then disk, then encode (and keep)."""
    key = (style_id, model.code_identity)
    cached = runtime.registered_codes.get(key)
    if cached is not None:
        return cached
    code = _stored_code(runtime, style_id, model.code_identity)
    if code is None:
        size = registered_size(model, runtime.styles.get(style_id).style_size)
        image = _decode_style(runtime, model, runtime.styles.image(style_id), f"style {style_id}", size)
        code = model.encode_style(image, style_size=size, should_stop=stop)
        runtime.styles.save_code(style_id, code)
    runtime.registered_codes.put(key, code)
    # A DeleteStyle may have run while this call encoded: it removes the folder, then the cache entries. Checking the
    # folder after our put means one of the two removes the entry, so no later call can use a deleted style.
    try:
        runtime.styles.get(style_id)
    except NotFound:
        runtime.registered_codes.discard(key)
        raise
    return code


def _stored_code(runtime: Runtime, style_id: str, producer: str) -> StyleCode | None:
    """A style's stored code; None when absent or unreadable (a corrupt file is re-derived from the stored image and
    overwritten, rather than failing the style forever)."""
    try:
        return runtime.styles.code(style_id, producer)
    except NotFound:
        raise
    except Exception as exc:
        log.warning("style %s: stored code unreadable (%s); re-encoding it from its image", style_id,
                    type(exc).__name__)
        return None


def _style_source(
    runtime: Runtime, model: StyleModel, style: pb.StyleInput, index: int, options: StylizeOptions,
    weight: float, stop: StopCheck,
) -> StyleSource:
    max_pixels = runtime.config.max_image_pixels
    mask = None
    if style.HasField("mask"):
        mask = decode_mask(style.mask, field=f"styles[{index}].mask", max_pixels=max_pixels)
    if style.WhichOneof("source") == "style_id":
        preset = runtime.presets.get(style.style_id)
        if preset is not None:
            return StyleSource(code=preset.preset.code, weight=weight, mask=mask, preset=True)
        if options.color is ColorMode.CORAL:
            # CORAL statistics depend on the content, so the stored original is re-encoded at the request's
            # style_size (as an inline image would be).
            image = _decode_style(runtime, model, runtime.styles.image(style.style_id), f"styles[{index}]",
                                  options.style_size)
            return StyleSource(image=image, weight=weight, mask=mask)
        return StyleSource(code=style_code_for_id(runtime, model, style.style_id, stop), weight=weight, mask=mask)
    image = _decode_style(runtime, model, style.image, f"styles[{index}].image", options.style_size)
    if options.color is ColorMode.CORAL:
        return StyleSource(image=image, weight=weight, mask=mask)
    key = inline_style_key(style.image, options.style_size, model.code_identity)
    code = runtime.inline_codes.get_or_compute(
        key, lambda: model.encode_style(image, style_size=options.style_size, should_stop=stop))
    return StyleSource(code=code, weight=weight, mask=mask)


def _weights(request: Settings) -> list[float]:
    if len(request.styles) == 1:
        return [request.styles[0].weight or 1.0]  # 0 (unset) is read as 1 for a single style
    return [s.weight for s in request.styles]


def _run_model(runtime: Runtime, model: StyleModel, content: Image.Image, sources: list[StyleSource],
               options: StylizeOptions, stop: StopCheck) -> Image.Image:
    """Directly on this worker, or through the dynamic batcher (GPUs), which runs same-size requests together."""
    if runtime.batcher is None or not model.capabilities.batching:
        runtime.metrics.batch_size.observe(1)
        return render_batch(model, [BatchItem(content, tuple(sources), options)], should_stop=stop)[0]
    resized = resize_shorter(content, options.content_size)
    item = BatchItem(resized, tuple(sources), replace(options, content_size=0))
    return runtime.batcher.submit((model, item, stop)).result()


def run_batch(payloads: Sequence[tuple[StyleModel, BatchItem, StopCheck]]) -> list[Image.Image | BaseException]:
    """The batcher's work: one model pass for the requests still wanted (cancelled ones are skipped)."""
    results: list[Image.Image | BaseException] = [Cancelled("stopped before its batch ran")] * len(payloads)
    live = [(i, p) for i, p in enumerate(payloads) if not p[2]()]
    if live:
        model = live[0][1][0]
        images = render_batch(model, [p[1] for _, p in live], should_stop=lambda: all(p[2]() for _, p in live))
        for (i, _), image in zip(live, images, strict=True):
            results[i] = image
    return results


def batch_key(payload: tuple[StyleModel, BatchItem, StopCheck]) -> tuple:
    model, item, _ = payload
    return id(model), item.content.size, item.options.tile_size


def style_sources(runtime: Runtime, model: StyleModel, request: Settings, options: StylizeOptions,
                  stop: StopCheck) -> list[StyleSource]:
    """The request's styles as ``model`` takes them: codes from the caches (or encoded now and kept), images under
    CORAL. To run on an inference worker: encoding a style is a forward pass."""
    weights = _weights(request)
    return [_style_source(runtime, model, s, i, options, weights[i], stop) for i, s in enumerate(request.styles)]


#: A step between the model and the encoder, given the decoded content and the stylized image (a stream's
#: temporal stabilisation).
PostProcess = Callable[[Image.Image, Image.Image], Image.Image]


def render(
    runtime: Runtime, model: StyleModel, content: bytes, field: str, sources: Callable[[], Sequence[StyleSource]],
    options: StylizeOptions, output: Output, stop: StopCheck, *, max_pixels: int, post: PostProcess | None = None,
) -> Outcome:
    """Decodes ``content``, stylizes it under ``sources()`` (called after the decode, so its time counts as compute),
    applies ``post``, puts a transparent content's alpha back and encodes, each stage timed. On an inference worker."""
    t0 = time.perf_counter()
    image, alpha = decode_image_with_alpha(content, field=field, max_pixels=max_pixels)
    t1 = time.perf_counter()
    stylized = _run_model(runtime, model, image, list(sources()), options, stop)
    if post is not None:
        stylized = post(image, stylized)
    if output.keep_alpha:
        stylized = attach_alpha(stylized, alpha)  # the model saw it on white; its transparency goes back on
    t2 = time.perf_counter()
    data, mime = encode_image(stylized, output.fmt, output.quality)
    t3 = time.perf_counter()
    return Outcome(data, mime, stylized.width, stylized.height, (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)


def run_stylize(
    runtime: Runtime, model: StyleModel, request: pb.StylizeRequest, options: StylizeOptions
) -> Callable[[StopCheck], Outcome]:
    """The work of one Stylize call, to run on an inference worker: decode, stylize, encode, each timed."""
    output = output_of(request)

    def work(stop: StopCheck) -> Outcome:
        return render(runtime, model, request.content, "content",
                      lambda: style_sources(runtime, model, request, options, stop), options, output, stop,
                      max_pixels=runtime.config.max_image_pixels)

    return work


def registered_size(model: StyleModel | None, style_size: int | None) -> int:
    """The style size a registered style is encoded at for ``model``: the one it was registered with, else (None)
    the model's own default, so every model encodes a style registered without a size at its best size."""
    if style_size is not None:
        return style_size
    return (model.info.defaults if model is not None else StylizeOptions()).style_size


def cached_response(runtime: Runtime, request: pb.StylizeRequest, model: StyleModel, options: StylizeOptions
                    ) -> tuple[ResponseKey | None, CachedResponse | None]:
    """The request's response-cache key (None: the cache is off or the request opts out) and the response kept for
    it, if any. Its registered styles must still exist (NOT_FOUND otherwise, as computing it would answer), so an
    entry of a deleted style is never served. Blocking (hashes the content, reads the styles' records)."""
    if not runtime.responses.capacity or request.skip_response_cache:
        return None, None
    registered = [s.style_id for s in request.styles
                  if s.WhichOneof("source") == "style_id" and runtime.presets.get(s.style_id) is None]
    for style_id in registered:
        runtime.styles.get(style_id)
    key = response_key(request, model, options, registered)
    return key, runtime.responses.get(key)


def keep_response(runtime: Runtime, key: ResponseKey, model: StyleModel, out: Outcome) -> None:
    runtime.responses.put(key, CachedResponse(out.data, out.mime_type, out.width, out.height, model.info.name,
                                              model.info.untrained))


def run_put_style(
    runtime: Runtime, model: StyleModel | None, image_bytes: bytes, style_size: int | None
) -> Callable[[StopCheck], tuple[StyleCode | None, tuple[int, int], bytes]]:
    """Decodes a style and encodes it with ``model`` (None: no model is served; codes are made on first use).
    Returns the code, the size of the image stored (each model resizes it to the registered ``style_size``, or to
    its own default when None, as it encodes it) and the bytes to store (see :func:`stored_image`)."""
    def work(stop: StopCheck) -> tuple[StyleCode | None, tuple[int, int], bytes]:
        size = registered_size(model, style_size)
        image = _decode_style(runtime, model, image_bytes, "image", size)
        code = model.encode_style(image, style_size=size, should_stop=stop) if model is not None else None
        return code, image.size, stored_image(image_bytes, image)

    return work


def stored_image(original: bytes, decoded: Image.Image) -> bytes:
    """What a registered style keeps of its image: the upload, or its pixels re-encoded as PNG when that is smaller.

    Either decodes to the same pixels (PNG is lossless; EXIF orientation was applied on decoding), but the stored
    size is then bounded by the image's pixel count, whatever trailing bytes the upload carried."""
    png, _ = encode_image(decoded, "png")
    return png if len(png) < len(original) else original


