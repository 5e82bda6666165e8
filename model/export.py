"""ONNX export of AdaIN: the encoder (to relu4_1), the decoder, and a single-file "baked style" model.

``python -m model.export --out exports --style style.jpg`` writes ``encoder.onnx``, ``decoder.onnx`` and
``baked-<style>.onnx``. Every graph takes and returns float32 NCHW with symbolic batch, height and width:

- ``encoder.onnx``: ``image`` (B, 3, H, W) RGB in [0, 1] -> ``features`` (B, 512, ceil(H/8), ceil(W/8)) at relu4_1;
- ``decoder.onnx``: ``features`` (B, 512, h, w) -> ``image`` (B, 3, 8h, 8w), unclamped;
- ``baked-<style>.onnx``: ``content`` (B, 3, H, W) in [0, 1] -> ``stylized`` (B, 3, H, W) in [0, 1], with one
  style's relu4_1 mean and std and the alpha folded in as constants: what an app needs on a device, one file.

Each graph is checked before it is written: ONNX Runtime runs it on a 256 px image and its result, in 8-bit levels,
must be within :data:`MAX_LEVEL_DIFF` of the PyTorch path (the encoder's and the decoder's outputs are compared
after decoding, i.e. as the images they lead to). A graph that fails is not written.

The graphs are traced by :mod:`model.adain.onnx_backend`, which also runs them as the ``onnxruntime`` backend of
:class:`~model.adain.stylizer.AdaINModel`. ``model/README.md`` says how to take them to Core ML and TFLite.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from model.adain.onnx_backend import OrtDecoder, OrtEncoder, cpu_copy, decoder_onnx, encoder_onnx, to_onnx
from model.adain.ops import adain
from model.adain.stylizer import AdaINModel
from model.errors import InvalidImageError, InvalidOptionError, WeightsError
from model.family import StyleCode, StyleSource, StyleSpec, StylizeOptions, require_producer
from model.images import decode_image, image_to_tensor, probe_image, resize_shorter, resized_size
from model.limits import MAX_IMAGE_PIXELS, MAX_STYLE_PIXELS
from model.network import Decoder, Encoder
from model.ort import make_session

__all__ = [
    "CHECK_SIZE",
    "MAX_LEVEL_DIFF",
    "BakedStyle",
    "ExportCheckError",
    "Exported",
    "baked_onnx",
    "check_baked",
    "check_decoder",
    "check_encoder",
    "export_all",
    "level_difference",
]

#: Largest allowed difference between the ONNX Runtime and the PyTorch results, in 8-bit levels per pixel.
MAX_LEVEL_DIFF = 1
#: Side of the square test image the checks run at.
CHECK_SIZE = 256
CONTENT = "content"
STYLIZED = "stylized"
#: Most bytes the CLI reads of an image file: no accepted format needs more than 8 bytes a pixel (16-bit RGBA PNG,
#: stored uncompressed) for an image of MAX_IMAGE_PIXELS, plus room for metadata.
_MAX_FILE_BYTES = 8 * MAX_IMAGE_PIXELS + 1024 * 1024


class ExportCheckError(RuntimeError):
    """An exported graph's ONNX Runtime result differs from the PyTorch path by more than :data:`MAX_LEVEL_DIFF`."""


class BakedStyle(nn.Module):
    """Content image -> stylized image with one style's statistics and alpha as constants (the stylizer's math for a
    single registered style without masks or colour preservation), cropped to the content's size and clamped."""

    def __init__(self, encoder: Encoder, decoder: Decoder, stats: StyleCode, alpha: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("style_mean", stats.tensors["mean"].float().clone())  # (1, 512, 1, 1)
        self.register_buffer("style_std", stats.tensors["std"].float().clone())
        self.alpha = float(alpha)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        feat = self.encoder(content)  # (B, 512, h, w)
        target = adain(feat, self.style_mean, self.style_std)
        if self.alpha < 1.0:  # as the stylizer blends; alpha 1 leaves the blend out of the graph
            target = target * self.alpha + feat * (1 - self.alpha)
        out = self.decoder(target)  # (B, 3, 8h, 8w): the ceil-mode pools make it >= the content
        return out[:, :, : content.shape[2], : content.shape[3]].clamp(0.0, 1.0)


def baked_onnx(model: AdaINModel, stats: StyleCode, alpha: float = 1.0) -> bytes:
    """One file that stylizes with ``stats`` at ``alpha``: ``content`` -> ``stylized``. A code another encoder made
    is refused, as ``stylize`` refuses it: its statistics would be silently meaningless inside the file."""
    require_producer(stats, model.code_identity, model.info.name)
    baked = BakedStyle(cpu_copy(model.encoder), cpu_copy(model.decoder), stats, alpha).eval()
    return to_onnx(baked, torch.rand(1, 3, 64, 64), CONTENT, STYLIZED)


def level_difference(a: torch.Tensor, b: torch.Tensor) -> int:
    """Largest per-pixel difference of two images in [0, 1] after the stylizer's 8-bit rounding."""
    def levels(t: torch.Tensor) -> torch.Tensor:
        return t.detach().float().cpu().mul(255).add(0.5).clamp(0, 255).floor()

    return int((levels(a) - levels(b)).abs().max())


def _check(name: str, got: torch.Tensor, want: torch.Tensor) -> int:
    diff = level_difference(got, want)
    if diff > MAX_LEVEL_DIFF:
        raise ExportCheckError(f"{name}: ONNX Runtime differs from PyTorch by {diff} levels (at most "
                               f"{MAX_LEVEL_DIFF} allowed); not written")
    return diff


def _check_inputs(model: AdaINModel, content: Image.Image, stats: StyleCode) -> tuple[torch.Tensor, torch.Tensor]:
    """The content as a tensor and the AdaIN target the decoder sees for it with ``stats`` (plain modules, CPU)."""
    x = image_to_tensor(content)
    encoder = cpu_copy(model.encoder)
    with torch.inference_mode():
        return x, adain(encoder(x), stats.tensors["mean"].float(), stats.tensors["std"].float())


def check_encoder(onnx_model: bytes, model: AdaINModel, content: Image.Image, stats: StyleCode) -> int:
    """The image decoded (by PyTorch) from the ONNX encoder's features vs. from PyTorch's features; returns levels."""
    x, _ = _check_inputs(model, content, stats)
    encoder, decoder = cpu_copy(model.encoder), cpu_copy(model.decoder)
    runner = OrtEncoder(make_session(onnx_model, device="cpu"))
    with torch.inference_mode():
        got = runner.features(x, (runner.depth,))[runner.depth]
        mean, std = stats.tensors["mean"].float(), stats.tensors["std"].float()
        images = [decoder(adain(f, mean, std)) for f in (got, encoder(x))]
    return _check("encoder", *images)


def check_decoder(onnx_model: bytes, model: AdaINModel, content: Image.Image, stats: StyleCode) -> int:
    """The ONNX decoder vs. PyTorch's on the AdaIN target of ``content`` with ``stats``; returns levels."""
    _, target = _check_inputs(model, content, stats)
    runner = OrtDecoder(make_session(onnx_model, device="cpu"))
    with torch.inference_mode():
        return _check("decoder", runner(target), cpu_copy(model.decoder)(target))


def check_baked(onnx_model: bytes, model: AdaINModel, content: Image.Image, stats: StyleCode, alpha: float) -> int:
    """The baked graph vs. :meth:`AdaINModel.stylize` with the same statistics and alpha; returns levels."""
    session = make_session(onnx_model, device="cpu")
    (got,) = session.run(None, {CONTENT: image_to_tensor(content).numpy()})
    want = model.stylize(content, [StyleSource(code=stats)], StylizeOptions(alpha=alpha))
    return _check("baked style", torch.from_numpy(got), image_to_tensor(want))


@dataclass(frozen=True)
class Exported:
    """One graph that passed its check: the file name to write, the ONNX bytes and the measured difference."""

    filename: str
    onnx_model: bytes
    level_difference: int


def export_all(model: AdaINModel, content: Image.Image, style: tuple[str, StyleCode] | None = None,
               alpha: float = 1.0) -> list[Exported]:
    """Exports and checks the encoder, the decoder and, given a (name, statistics) style, its baked model.

    Raises :class:`ExportCheckError` at the first graph that fails, so nothing unchecked is ever returned. ``model``
    must be float32, like the graphs: its own results are what they are checked against.
    """
    if model.dtype != torch.float32:
        raise ValueError(f"the graphs are float32 and are checked against the model's results; export a float32 "
                         f"model, not {model.info.dtype}")
    check_stats = style[1] if style is not None else model.encode_style(content, style_size=0)
    encoder, decoder = encoder_onnx(model.encoder), decoder_onnx(model.decoder)
    out = [Exported("encoder.onnx", encoder, check_encoder(encoder, model, content, check_stats)),
           Exported("decoder.onnx", decoder, check_decoder(decoder, model, content, check_stats))]
    if style is not None:
        name, stats = style
        baked = baked_onnx(model, stats, alpha)
        out.append(Exported(f"baked-{name}.onnx", baked, check_baked(baked, model, content, stats, alpha)))
    return out


class _ArgumentError(ValueError):
    """A command-line argument the export cannot use (printed as one line, exit status 2)."""


def _check_image(path: str | None) -> Image.Image:
    """A 256 px content for the checks: the given photo, or a smooth synthetic image (deterministic)."""
    if path:
        return resize_shorter(_read_image(path, "check_image"), CHECK_SIZE).crop((0, 0, CHECK_SIZE, CHECK_SIZE))
    gen = torch.Generator().manual_seed(0)
    small = torch.rand(1, 3, 8, 8, generator=gen)
    big = torch.nn.functional.interpolate(small, size=(CHECK_SIZE, CHECK_SIZE), mode="bicubic", align_corners=False)
    return Image.fromarray((big[0].clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy())


def _read_file(path: str, field: str) -> bytes:
    """An image file's bytes, at most :data:`_MAX_FILE_BYTES` of them (``/dev/zero`` is not read for ever)."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _ArgumentError(f"{field}: {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise _ArgumentError(f"{field}: {path} is larger than {_MAX_FILE_BYTES} bytes, more than any image of at most "
                             f"{MAX_IMAGE_PIXELS} pixels needs")
    return data


def _read_image(path: str, field: str, style_size: int | None = None) -> Image.Image:
    """The image at ``path``, decoded within the server's bounds: its header declares at most MAX_IMAGE_PIXELS,
    and a style resized to ``style_size`` is at most MAX_STYLE_PIXELS (checked before decoding)."""
    data = _read_file(path, field)
    if style_size is not None:
        width, height = probe_image(data, field=field, max_pixels=MAX_IMAGE_PIXELS)
        new_width, new_height = resized_size(width, height, style_size)
        if new_width * new_height > MAX_STYLE_PIXELS:
            raise _ArgumentError(f"{field}: a {width}x{height} image at --style-size {style_size} would be encoded at "
                                 f"{new_width}x{new_height} = {new_width * new_height} pixels, over the limit of "
                                 f"{MAX_STYLE_PIXELS} (about 0.5 GB of memory per megapixel); use a smaller "
                                 "--style-size")
    return decode_image(data, field=field, max_pixels=MAX_IMAGE_PIXELS)


def _style_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem) or "style"


def _parser() -> argparse.ArgumentParser:
    defaults = StylizeOptions()
    parser = argparse.ArgumentParser(prog="python -m model.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vgg", default="weights/vgg_normalised.pth", help="encoder weights")
    parser.add_argument("--decoder", default="weights/decoder.pth", help="decoder weights or a trained checkpoint")
    parser.add_argument("--random-weights", action="store_true", help="seeded random weights (development only)")
    parser.add_argument("--out", default="exports", help="directory to write the .onnx files to")
    parser.add_argument("--style", help="style image to bake into baked-<name>.onnx; without it no baked model")
    parser.add_argument("--style-size", type=int, default=defaults.style_size,
                        help="shorter side the style image is resized to before encoding (0 keeps it)")
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="content/style trade-off baked in")
    parser.add_argument("--check-image", help="content photo for the checks (default: a synthetic image)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        exported = _export(args)
    except (InvalidImageError, InvalidOptionError, WeightsError, _ArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ExportCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for item in exported:
        (out / item.filename).write_bytes(item.onnx_model)
        print(f"{out / item.filename}: {len(item.onnx_model) / 1e6:.1f} MB, within {item.level_difference} level(s) "
              f"of PyTorch at {CHECK_SIZE} px")
    return 0


def _export(args: argparse.Namespace) -> list[Exported]:
    """The checked graphs the arguments ask for: the images are read within their bounds and the options checked by
    the model's own rules before anything is encoded."""
    # float32 whatever the CPU: on one that computes bfloat16 natively the model would otherwise stylize in bfloat16,
    # a few levels from the float32 graphs it checks (3 at 256 px on random weights), and refuse good graphs
    model = (AdaINModel.random(device="cpu", precision="fp32") if args.random_weights
             else AdaINModel.from_files(args.vgg, args.decoder, device="cpu", precision="fp32"))
    model.check([StyleSpec("image")], StylizeOptions(alpha=args.alpha, style_size=args.style_size))
    style_image = _read_image(args.style, "style", args.style_size) if args.style else None
    check_image = _check_image(args.check_image)
    style = None
    if style_image is not None:
        style = (_style_name(args.style), model.encode_style(style_image, style_size=args.style_size))
    return export_all(model, check_image, style, args.alpha)


if __name__ == "__main__":
    sys.exit(main())
