"""AdaIN style transfer (Huang & Belongie, ICCV 2017) with the options users expect.

``AdaINModel.stylize`` follows the reference implementation (naoto0804/pytorch-AdaIN, ``test.py``): resize with
torchvision's ``Resize(size)``, encode to relu4_1, AdaIN, feature-level interpolation of several styles
(``sum w_i * AdaIN(c, s_i)``), alpha blend with the content features, decode. Departures, each deliberate:

- the output is cropped to exactly the content's size (the ceil-mode pools make the decoder's output up to 7 px
  larger for sizes that are not multiples of 8; the reference returns the larger image);
- styles may differ in size (each is encoded on its own; AdaIN is per image, so this equals the reference's batch);
- spatial masks (the paper's Fig. 9, from the original Lua code): AdaIN of a region uses that region's content
  statistics; soft masks weight both the statistics and the per-pixel blend; pixels no style covers keep the content;
- luminance-only colour preservation, besides the reference's CORAL;
- inference runs through :mod:`model.adain.fast` (the same function with less memory traffic) and, for large images,
  :mod:`model.adain.tiling` (bounded memory, global AdaIN statistics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from PIL import Image

from model.adain.declaration import BACKENDS, DECLARATION
from model.adain.declaration import NAME as FAMILY
from model.adain.fast import FastDecoder, FastEncoder
from model.adain.onnx_backend import OrtDecoder, OrtEncoder, ort_networks
from model.adain.ops import adain, calc_mean_std, masked_mean_std
from model.adain.tiling import decode_tiled, encode_tiled, needs_tiling
from model.color import coral, transfer_luminance
from model.devices import dtype_name, select_device, select_dtype
from model.encoders import load_encoder, load_encoder_weights, random_spec
from model.errors import IncompatibleModelError, InvalidOptionError
from model.family import (
    BatchItem,
    Capabilities,
    ColorMode,
    MaskMode,
    ModelInfo,
    StyleCode,
    StyleSource,
    StyleSpec,
    StylizeOptions,
    check_request,
    code_identity,
    require_producer,
)
from model.images import image_to_tensor, resize_shorter, tensor_to_image
from model.network import RELU4_1, Decoder, Encoder, StopCheck
from model.weights import load_decoder_checkpoint, random_decoder_state, sha256_file, state_sha256

__all__ = ["BACKENDS", "CAPABILITIES", "FAMILY", "AdaINModel", "adain_info"]

#: AdaIN takes every option: masks (regional AdaIN, inside the network), all colour modes, tiling, batched passes.
#: Images need a shorter side of 9 px: the encoder downsamples 8x to relu4_1 and the decoder reflection-pads its
#: feature maps, which needs at least 2 feature pixels a side (8 px gives 1-pixel features, which cannot be padded).
CAPABILITIES = Capabilities(masks=MaskMode.NATIVE, tiling=True, batching=True, min_side=9)


def adain_info(name: str, version: str, encoder: tuple[str, str], decoder: tuple[str, str], *,
               untrained: bool = False, metadata: Mapping[str, str] | None = None) -> ModelInfo:
    """An AdaIN model's description; ``encoder`` and ``decoder`` are (sha256, provenance) pairs."""
    return ModelInfo(name, FAMILY, version, {"encoder": encoder[0], "decoder": decoder[0]},
                     {"encoder": encoder[1], "decoder": decoder[1]}, untrained,
                     metadata={k: str(v) for k, v in (metadata or {}).items()}, defaults=DECLARATION.defaults)


class AdaINModel:
    """An encoder + decoder pair ready for inference on one device; implements :class:`model.family.StyleModel`.

    The decoder is only meaningful with the encoder it was trained against; ``decoder_encoder_sha256`` (recorded
    in our checkpoints) is checked against the encoder's hash and a mismatch is refused.
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: Decoder,
        info: ModelInfo,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        decoder_encoder_sha256: str | None = None,
        backend: str = "torch",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "onnxruntime" and dtype != torch.float32:
            raise ValueError(f"the onnxruntime backend runs float32 graphs, not {dtype_name(dtype)}; use fp32")
        encoder_sha256 = info.weights["encoder"]
        if decoder_encoder_sha256 is not None and decoder_encoder_sha256 != encoder_sha256:
            raise IncompatibleModelError(
                f"decoder {info.provenance.get('decoder')} was trained against encoder {decoder_encoder_sha256[:12]}, "
                f"not the loaded encoder {encoder_sha256[:12]} ({info.provenance.get('encoder')})"
            )
        self.encoder_sha256 = encoder_sha256
        self.code_identity = code_identity(FAMILY, encoder_sha256)  # codes are relu4_1 statistics: the encoder's
        self.capabilities = CAPABILITIES
        self.presets = ()  # arbitrary styles only
        self.device = torch.device(device)
        self.dtype = dtype
        self.encoder = encoder.eval()
        self.decoder = decoder.eval()
        self.info = replace(info, device=str(self.device), dtype=dtype_name(dtype))
        self._memory_format = torch.channels_last  # measured faster for these convs on CPU (oneDNN) and CUDA
        self.backend = backend
        self._encoder_net, self._decoder_net = self._networks()

    def _networks(self) -> tuple[FastEncoder | OrtEncoder, FastDecoder | OrtDecoder]:
        """The encoder and decoder as they run: :mod:`model.adain.fast`'s rewrites in torch, or ONNX Runtime
        sessions of the exported graphs (:mod:`model.adain.onnx_backend`). Everything around them is shared."""
        if self.backend == "onnxruntime":
            return ort_networks(self.encoder, self.decoder, self.device)
        return self._prepare(FastEncoder(self.encoder)), self._prepare(FastDecoder(self.decoder))

    def _prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.to(self.device, self.dtype).to(memory_format=self._memory_format).eval()

    # --- construction ---------------------------------------------------------------------------------------------

    @classmethod
    def from_files(
        cls, vgg_path: str, decoder_path: str, *, name: str = "default", version: str = "official",
        device: str = "auto", precision: str = "auto", decoder_source: str | None = None,
    ) -> AdaINModel:
        """Loads an encoder (a file, or any spec of :func:`model.encoders.load_encoder`, e.g. ``"bundled"``) and a
        decoder file (the official one or our checkpoints); never downloads. ``decoder_source`` describes the decoder
        on every surface (default: its path)."""
        encoder, weights = load_encoder(vgg_path, RELU4_1)
        dec_state, trained_against, metadata = load_decoder_checkpoint(decoder_path)
        decoder = Decoder()
        decoder.load_official(dec_state)
        dev = select_device(device)
        info = adain_info(name, version, (weights.sha256, weights.source),
                          (sha256_file(decoder_path), decoder_source or str(decoder_path)),
                          untrained=weights.untrained, metadata=metadata)
        return cls(encoder, decoder, info, device=dev, dtype=select_dtype(dev, precision),
                   decoder_encoder_sha256=trained_against)

    @classmethod
    def random(
        cls, seed: int = 0, *, name: str = "default", device: str = "auto", precision: str = "auto",
        encoder: str | None = None,
    ) -> AdaINModel:
        """Seeded random weights in the official layouts: for development and tests only (``info.untrained``).

        ``encoder`` (a spec of :func:`model.encoders.load_encoder`, e.g. ``"bundled"``) puts the random decoder behind
        real encoder weights, for measures that need real features (bfloat16 against float32)."""
        state, norm, weights = load_encoder_weights(random_spec(seed) if encoder is None else encoder)
        vgg = Encoder(RELU4_1, norm=norm)
        vgg.load_official(state)
        dec_state = random_decoder_state(seed, vgg_state=state)
        decoder = Decoder()
        decoder.load_official(dec_state)
        dev = select_device(device)
        info = adain_info(name, "random", (weights.sha256, weights.source),
                          (state_sha256(dec_state), f"random(seed={seed})"), untrained=True)
        return cls(vgg, decoder, info, device=dev, dtype=select_dtype(dev, precision))

    def with_decoder(
        self, decoder: Decoder, info: ModelInfo, *, decoder_encoder_sha256: str | None = None
    ) -> AdaINModel:
        """Another model sharing this one's encoder (trained decoders reuse the encoder they were trained with)."""
        info = replace(info, weights={**info.weights, "encoder": self.encoder_sha256},
                       provenance={**info.provenance, "encoder": self.info.provenance["encoder"]},
                       untrained=info.untrained or self.info.untrained)
        return AdaINModel(self.encoder, decoder, info, device=self.device, dtype=self.dtype,
                          decoder_encoder_sha256=decoder_encoder_sha256, backend=self.backend)

    def with_backend(self, backend: str) -> AdaINModel:
        """This model's weights run by ``backend`` (one of :data:`BACKENDS`); results agree within one 8-bit level.

        The ONNX graphs are float32, so ``onnxruntime`` runs in float32 whatever the model's precision was.
        """
        if backend == self.backend:
            return self
        dtype = torch.float32 if backend == "onnxruntime" else self.dtype
        return AdaINModel(self.encoder, self.decoder, self.info, device=self.device, dtype=dtype, backend=backend)

    # --- inference ------------------------------------------------------------------------------------------------

    def _to_input(self, image: Image.Image) -> torch.Tensor:
        x = image_to_tensor(image).to(self.device, self.dtype)
        return x.contiguous(memory_format=self._memory_format)

    def _encode(self, x: torch.Tensor, tile: int, should_stop: StopCheck | None) -> torch.Tensor:
        """(1, 3, H, W) -> relu4_1 features (1, 512, ceil(H/8), ceil(W/8)), in tiles when the image is large."""
        if needs_tiling(x.shape[2], x.shape[3], tile):
            return encode_tiled(self._encoder_net, x, tile=tile, should_stop=should_stop)
        return self._encoder_net.features(x, (RELU4_1,), should_stop)[RELU4_1]

    def _decode(self, feat: torch.Tensor, tile: int, should_stop: StopCheck | None) -> torch.Tensor:
        feat = feat.contiguous(memory_format=self._memory_format)
        if needs_tiling(feat.shape[2] * 8, feat.shape[3] * 8, tile):
            return decode_tiled(self._decoder_net, feat, tile=tile, should_stop=should_stop)
        return self._decoder_net(feat, should_stop)

    def _stats_of(self, x: torch.Tensor, should_stop: StopCheck | None) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = calc_mean_std(self._encode(x, 0, should_stop).float())
        return mean, std

    def check(self, styles: Sequence[StyleSpec], options: StylizeOptions) -> None:
        """The shared request rules (:func:`model.family.check_request`); AdaIN supports every option."""
        check_request(self.info, self.capabilities, styles, options)

    def encode_style(self, image: Image.Image, *, style_size: int | None = None, should_stop: StopCheck | None = None
                     ) -> StyleCode:
        """A style image's relu4_1 statistics, to keep and reuse (the avatar workload: few styles, many calls);
        ``style_size`` None is the model's default."""
        style_size = self.info.defaults.style_size if style_size is None else style_size
        if style_size < 0:
            raise InvalidOptionError("style_size", "must not be negative")
        resized = resize_shorter(image, style_size)
        with torch.inference_mode():
            mean, std = self._stats_of(self._to_input(resized), should_stop)
        return StyleCode(self.code_identity, {"mean": mean.cpu().float(), "std": std.cpu().float()},
                         resized.width, resized.height)

    def _style_stats(
        self, style: StyleSource, content: torch.Tensor, options: StylizeOptions, should_stop: StopCheck | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if options.color is ColorMode.CORAL:  # statistics depend on the content: always from the image
            assert style.image is not None
            s = image_to_tensor(resize_shorter(style.image, options.style_size))[0]
            s = coral(s, content[0].float().cpu()).unsqueeze(0).to(self.device, self.dtype)
            return self._stats_of(s.contiguous(memory_format=self._memory_format), should_stop)
        if style.code is not None:
            require_producer(style.code, self.code_identity, self.info.name)
            return style.code.tensors["mean"].to(self.device), style.code.tensors["std"].to(self.device)
        assert style.image is not None
        return self._stats_of(self._to_input(resize_shorter(style.image, options.style_size)), should_stop)

    def stylize(
        self,
        content: Image.Image,
        styles: Sequence[StyleSource],
        options: StylizeOptions | None = None,
        *,
        should_stop: StopCheck | None = None,
    ) -> Image.Image:
        """Stylizes ``content``; the result has exactly the (resized) content's size. ``options`` default to the
        model's own (``info.defaults``)."""
        item = BatchItem(content, tuple(styles), options or self.info.defaults)
        return self.stylize_batch([item], should_stop=should_stop)[0]

    def stylize_batch(self, items: Sequence[BatchItem], *, should_stop: StopCheck | None = None
                      ) -> list[Image.Image]:
        """Stylizes several requests in one encoder and one decoder pass (GPUs: one batch costs little more than one
        image). Every item's content must have the same size after its ``content_size``, and the same tile size."""
        weights = [check_request(self.info, self.capabilities, [s.spec for s in item.styles], item.options)
                   for item in items]
        contents = [resize_shorter(item.content, item.options.content_size) for item in items]
        if len({c.size for c in contents}) != 1 or len({i.options.tile_size for i in items}) != 1:
            raise ValueError("a batch needs contents of one size and one tile size")
        tile = items[0].options.tile_size
        width, height = contents[0].size
        with torch.inference_mode():
            x = torch.cat([self._to_input(c) for c in contents]).contiguous(memory_format=self._memory_format)
            feat = self._encode(x, tile, should_stop).float()  # (B, 512, h, w)
            targets = [self._target(feat[i : i + 1], x[i : i + 1], item, w, should_stop)
                       for i, (item, w) in enumerate(zip(items, weights, strict=True))]
            out = self._decode(torch.cat(targets).to(self.dtype), tile, should_stop)
            out = out[:, :, :height, :width].float()  # ceil-mode pools: the decoder's output is >= the content
            images = []
            for i, item in enumerate(items):
                o = transfer_luminance(out[i : i + 1], x[i : i + 1].float()) \
                    if item.options.color is ColorMode.LUMINANCE else out[i : i + 1]
                images.append(tensor_to_image(o.cpu()))
            return images

    def _target(self, feat: torch.Tensor, x: torch.Tensor, item: BatchItem, weights: list[float],
                should_stop: StopCheck | None) -> torch.Tensor:
        """One item's decoder input: its styles' AdaIN targets blended (weights, masks), then alpha-blended."""
        options = item.options
        stats = [self._style_stats(style, x, options, should_stop) for style in item.styles]
        size = (x.shape[3], x.shape[2])
        masks = [self._feature_mask(style.mask, size, feat.shape[2:]) for style in item.styles]
        t = _combine(feat, stats, weights, masks)
        return t * options.alpha + feat * (1 - options.alpha)

    def _feature_mask(
        self, mask: Image.Image | None, content_size: tuple[int, int], feature_size: torch.Size
    ) -> torch.Tensor | None:
        """A grayscale mask -> (1, 1, h, w) in [0, 1] at feature resolution (area-averaged, so edges are soft)."""
        if mask is None:
            return None
        resized = mask.convert("L").resize(content_size, Image.Resampling.BILINEAR)
        m = image_to_tensor(resized.convert("RGB"))[:, :1].to(self.device)
        return F.adaptive_avg_pool2d(m, tuple(feature_size))


def _combine(
    feat: torch.Tensor,
    targets: Sequence[tuple[torch.Tensor, torch.Tensor]],
    weights: Sequence[float],
    masks: Sequence[torch.Tensor | None],
) -> torch.Tensor:
    """Blends per-style AdaIN targets: by weight alone (the reference), or per pixel by weight x mask."""
    if all(m is None for m in masks):
        stats = calc_mean_std(feat)
        return sum(w * adain(feat, mean, std, stats) for w, (mean, std) in zip(weights, targets, strict=True))
    blended = torch.zeros_like(feat)
    coverage = torch.zeros_like(feat[:, :1])
    global_stats = calc_mean_std(feat)
    for w, (mean, std), m in zip(weights, targets, masks, strict=True):
        if m is None:
            blended += w * adain(feat, mean, std, global_stats)
            coverage += w
            continue
        region = masked_mean_std(feat, m) if float(m.sum()) > 1 else global_stats
        blended += w * m * adain(feat, mean, std, region)
        coverage += w * m
    covered = coverage > 1e-6
    return torch.where(covered, blended / coverage.clamp_min(1e-6), feat)
