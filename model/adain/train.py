"""Training an AdaIN decoder on folders of content and style images (the paper's section 6), optionally with DDP.

The loss is the paper's: with ``t = AdaIN(f(c), f(s))`` and ``g = decoder(t)``, the content loss is
``MSE(f(g), t)`` at relu4_1 and the style loss the sum over relu1_1..relu4_1 of ``MSE(mean)`` + ``MSE(std)`` between
``g`` and ``s``; Adam on the decoder only, with the reference's ``lr / (1 + lr_decay * step)``. Images are resized
to 512x512 and randomly cropped, as the reference's ``train.py`` does.

Checkpoints (atomic) carry everything to resume: the decoder as safetensors (recording the encoder it was trained
against), the optimiser state, the step and the loss history; each also writes a preview PNG (loss curve and sample
stylizations). Under ``torchrun`` the same loop runs with DistributedDataParallel (NCCL on GPUs, gloo on CPU); only
rank 0 writes.

Precision: with ``dtype`` bfloat16 (a CPU with native bfloat16, ``model.devices``) the encoder and decoder passes run
under autocast, so their convolutions compute in bfloat16; the weights, Adam's state, the AdaIN statistics and the
losses stay float32. bfloat16 has float32's exponent range, so no loss scaling is needed. float16 would need it, so a
float16 choice (CUDA's default) trains in float32.

``python -m model.adain.train`` is the command-line entry (the only place here that parses arguments), used by the
server to launch multi-process training; it prints progress as JSON lines.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from model.adain.declaration import DECODER_FILE
from model.adain.declaration import NAME as FAMILY
from model.adain.ops import adain, calc_mean_std
from model.errors import Cancelled, InvalidOptionError
from model.family import StyleModel
from model.files import PREVIEW_FILE, atomic_write
from model.images import image_to_tensor, to_rgb
from model.network import RELU4_1, STYLE_LAYERS, Decoder, Encoder, StopCheck
from model.weights import save_decoder_checkpoint

__all__ = ["DECODER_FILE", "FAMILY", "ImageFolder", "TrainOptions", "TrainProgress", "TrainResult", "adain_losses",
           "inversion_losses", "save_init_checkpoint", "start_decoder", "train_decoder", "training_dtype"]

log = logging.getLogger(__name__)
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
STATE_FILE = "train_state.pt"


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    iterations: int = 160_000  # the reference's max_iter
    batch_size: int = 8
    image_size: int = 256  # random crop
    resize: int = 512  # images are first resized to resize x resize, as the reference does
    lr: float = 1e-4
    lr_decay: float = 5e-5  # lr / (1 + lr_decay * step)
    style_weight: float = 10.0
    content_weight: float = 1.0
    # Warm-up (not in the paper): for the first warmup_steps the decoder learns to invert the encoder, with the
    # content as its own style and a pixel loss beside the feature loss. A decoder at its random initialisation
    # spends thousands of AdaIN steps learning to draw anything recognisable; with a pixel target that starts at once.
    warmup_steps: int = 0
    pixel_weight: float = 1.0  # weight of the warm-up's pixel loss (mean squared error of [0, 1] pixels)
    checkpoint_every: int = 1000
    seed: int = 0
    num_workers: int = 2  # data-loading processes
    min_image_side: int = 32  # smaller images are skipped

    def validate(self) -> TrainOptions:
        checks = [("iterations", self.iterations >= 1), ("batch_size", self.batch_size >= 1),
                  ("image_size", 16 <= self.image_size <= self.resize), ("lr", self.lr > 0),
                  ("lr_decay", self.lr_decay >= 0), ("style_weight", self.style_weight >= 0),
                  ("content_weight", self.content_weight >= 0), ("checkpoint_every", self.checkpoint_every >= 1),
                  ("warmup_steps", self.warmup_steps >= 0), ("pixel_weight", self.pixel_weight >= 0),
                  ("num_workers", self.num_workers >= 0)]
        for name, ok in checks:
            if not ok:
                raise InvalidOptionError(name, f"invalid value {getattr(self, name)!r}")
        return self


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int
    loss: float
    losses: dict[str, float]  # "content", "style" (weighted); "content", "pixel" during the warm-up
    steps_per_second: float
    skipped_images: int


@dataclass(frozen=True)
class TrainResult:
    decoder_path: Path
    preview_path: Path
    steps: int
    losses: dict[str, float]
    skipped_images: int
    seconds: float


# --- data ---------------------------------------------------------------------------------------------------------

class ImageFolder(Dataset):
    """Images under a folder (recursively). Unreadable or tiny files are skipped when the folder is scanned, and so
    are files that resolve outside the folder (a symlink to ``/etc/...`` or to another user's data): a dataset is
    what is inside its folder, whoever may write links into it."""

    def __init__(self, root: Path, options: TrainOptions) -> None:
        self.root = Path(root)
        self.options = options
        base = self.root.resolve()
        candidates = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        inside = [r for r in (p.resolve() for p in candidates) if r.is_relative_to(base)]
        if len(inside) < len(candidates):
            log.warning("%s: skipped %d file(s) that link outside the folder", root, len(candidates) - len(inside))
        self.paths = [p for p in inside if self._usable(p)]
        self.skipped = len(candidates) - len(self.paths)
        if self.skipped:
            log.warning("%s: skipped %d unreadable, tiny or outside image(s)", root, self.skipped)

    def _usable(self, path: Path) -> bool:
        try:
            with Image.open(path) as img:
                img.verify()
            with Image.open(path) as img:
                return min(img.size) >= self.options.min_image_side
        except Exception:
            return False

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Resize to resize x resize (the reference), then a random crop of image_size."""
        with Image.open(self.paths[index]) as img:
            image = to_rgb(img).resize((self.options.resize, self.options.resize), Image.Resampling.BILINEAR)
        size = self.options.image_size
        x = random.randint(0, self.options.resize - size)
        y = random.randint(0, self.options.resize - size)
        return image_to_tensor(image.crop((x, y, x + size, y + size)))[0]


class _Infinite(IterableDataset):
    """Endless shuffled passes over a dataset; each rank (and loader worker) reads its own share."""

    def __init__(self, dataset: ImageFolder, seed: int, rank: int, world_size: int) -> None:
        self.dataset, self.seed, self.rank, self.world_size = dataset, seed, rank, world_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        shard, shards = self.rank * workers + worker, self.world_size * workers
        random.seed(self.seed * 1000 + shard)
        epoch = 0
        while True:
            order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed + epoch))
            for index in order[shard::shards].tolist() or order[:1].tolist():
                yield self.dataset[index]
            epoch += 1


def _loader(dataset: ImageFolder, options: TrainOptions, salt: int, rank: int, world_size: int) -> Iterator:
    stream = _Infinite(dataset, options.seed + salt, rank, world_size)
    loader = DataLoader(stream, batch_size=options.batch_size, num_workers=options.num_workers,
                        persistent_workers=options.num_workers > 0)
    return iter(loader)


# --- loss ---------------------------------------------------------------------------------------------------------

def _features(encoder: Encoder, image: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The encoder's features in float32 whatever the convolutions computed in (statistics and losses are sums)."""
    return {name: feat.float() for name, feat in encoder.features(image, names).items()}


def adain_losses(encoder: Encoder, decoder: nn.Module, content: torch.Tensor, style: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss, style loss) of the AdaIN paper for one batch; gradients flow only into the decoder."""
    with torch.no_grad():
        style_feats = _features(encoder, style, STYLE_LAYERS)
        content_feat = _features(encoder, content, (RELU4_1,))[RELU4_1]
        mean, std = calc_mean_std(style_feats[RELU4_1])
        target = adain(content_feat, mean, std)
    generated = decoder(target)
    gen_feats = _features(encoder, generated, STYLE_LAYERS)
    content_loss = F.mse_loss(gen_feats[RELU4_1], target)
    style_loss = generated.new_zeros(())
    for name in STYLE_LAYERS:
        g_mean, g_std = calc_mean_std(gen_feats[name])
        s_mean, s_std = calc_mean_std(style_feats[name])
        style_loss = style_loss + F.mse_loss(g_mean, s_mean) + F.mse_loss(g_std, s_std)
    return content_loss, style_loss


def inversion_losses(encoder: Encoder, decoder: nn.Module, content: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature loss, pixel loss) of decoding the content's own relu4_1: the warm-up's objective.

    The feature loss is the AdaIN content loss with the content as its own style (AdaIN is then the identity);
    the pixel loss compares the decoded image with the content itself.
    """
    with torch.no_grad():
        target = _features(encoder, content, (RELU4_1,))[RELU4_1]
    generated = decoder(target)
    feature_loss = F.mse_loss(_features(encoder, generated, (RELU4_1,))[RELU4_1], target)
    return feature_loss, F.mse_loss(generated.float(), content)


# --- checkpoints and previews -------------------------------------------------------------------------------------

@dataclass
class _State:
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per step: loss, content, style


def _save_state(path: Path, state: _State, optimizer: torch.optim.Optimizer, options: TrainOptions) -> None:
    buf = io.BytesIO()
    torch.save({"step": state.step, "history": state.history, "optimizer": optimizer.state_dict(),
                "options": asdict(options)}, buf)
    atomic_write(path, buf.getvalue())


def _load_state(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def _preview(path: Path, history: Sequence[dict[str, float]], samples: Image.Image | None) -> None:
    """A PNG with the loss curves and a row of sample stylizations (content, style, output triples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 6 if samples is not None else 3.5))
    ax = fig.add_subplot(2 if samples is not None else 1, 1, 1)
    steps = range(1, len(history) + 1)
    # terms that are zero (style during the warm-up, pixel after it) stay off the log axis
    for key in ("loss", "content", "style", "pixel"):
        values = [h.get(key, 0.0) for h in history]
        if any(v > 0 for v in values):
            ax.plot(steps, [v if v > 0 else float("nan") for v in values], label=key, linewidth=1)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=f"AdaIN decoder training, step {len(history)}")
    ax.legend()
    if samples is not None:
        bottom = fig.add_subplot(2, 1, 2)
        bottom.imshow(samples)
        bottom.set_axis_off()
        bottom.set_title("content / style / output")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def _samples(encoder: Encoder, decoder: nn.Module, content: torch.Tensor, style: torch.Tensor) -> Image.Image:
    with torch.no_grad():
        c_feat = encoder(content)
        mean, std = calc_mean_std(encoder(style))
        out = decoder(adain(c_feat, mean, std)).clamp(0, 1)
    rows = torch.cat([torch.cat([c, s, o], dim=2) for c, s, o in zip(content, style, out, strict=True)], dim=1)
    array = rows.mul(255).add(0.5).clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


# --- the loop -----------------------------------------------------------------------------------------------------

@dataclass
class _Setup:
    encoder: Encoder
    decoder: nn.Module  # DDP-wrapped when distributed
    raw_decoder: Decoder
    optimizer: torch.optim.Optimizer
    contents: Iterator
    styles: Iterator
    skipped: int
    device: torch.device
    dtype: torch.dtype  # what the convolutions compute in: float32, or bfloat16 under autocast


def training_dtype(dtype: torch.dtype) -> torch.dtype:
    """What a run computes in for a chosen precision: bfloat16 stays, anything else trains in float32."""
    return torch.bfloat16 if dtype == torch.bfloat16 else torch.float32


def _setup(encoder: Encoder, decoder: Decoder, content_dir: Path, style_dir: Path, options: TrainOptions,
           device: torch.device, dtype: torch.dtype, rank: int, world_size: int) -> _Setup:
    torch.manual_seed(options.seed + rank)
    content_set, style_set = ImageFolder(content_dir, options), ImageFolder(style_dir, options)
    for name, dataset in (("content_dir", content_set), ("style_dir", style_set)):
        if len(dataset) == 0:
            raise InvalidOptionError(name, f"{dataset.root} has no usable images")
    encoder = encoder.to(device).eval().requires_grad_(False)
    decoder = decoder.to(device).train()
    wrapped: nn.Module = decoder
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(decoder, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=options.lr)
    return _Setup(encoder, wrapped, decoder, optimizer, _loader(content_set, options, 0, rank, world_size),
                  _loader(style_set, options, 7919, rank, world_size), content_set.skipped + style_set.skipped,
                  device, training_dtype(dtype))


def train_decoder(
    encoder: Encoder,
    decoder: Decoder,
    content_dir: Path,
    style_dir: Path,
    options: TrainOptions,
    *,
    out_dir: Path,
    encoder_sha256: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: StopCheck | None = None,
    metadata: dict[str, str] | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> TrainResult:
    """Trains ``decoder`` (in place); resumes from ``out_dir`` when it holds a checkpoint. Rank 0 writes.

    ``dtype`` is the chosen precision (:func:`training_dtype` says what that trains in)."""
    options.validate()
    out_dir.mkdir(parents=True, exist_ok=True)
    s = _setup(encoder, decoder, Path(content_dir), Path(style_dir), options, torch.device(device), dtype, rank,
               world_size)
    state = _resume(out_dir, s)
    fixed = (next(s.contents)[:2].to(s.device), next(s.styles)[:2].to(s.device))  # the preview's samples
    started, first_step = time.monotonic(), state.step
    while state.step < options.iterations:
        if should_stop is not None and should_stop():
            raise Cancelled("training stopped")
        losses = _step(s, options, state.step)
        state.step += 1
        state.history.append(losses)
        rate = (state.step - first_step) / max(1e-9, time.monotonic() - started)
        if on_progress is not None and rank == 0:
            on_progress(TrainProgress(state.step, options.iterations, losses["loss"],
                                      _reported(losses, state.step <= options.warmup_steps), rate, s.skipped))
        if rank == 0 and (state.step % options.checkpoint_every == 0 or state.step == options.iterations):
            _checkpoint(out_dir, s, state, options, fixed, encoder_sha256, metadata or {})
    final = state.history[-1] if state.history else {"loss": math.nan, "content": math.nan, "style": math.nan}
    return TrainResult(out_dir / DECODER_FILE, out_dir / PREVIEW_FILE, state.step, final, s.skipped,
                       time.monotonic() - started)


def _reported(losses: dict[str, float], warming_up: bool) -> dict[str, float]:
    return {name: losses[name] for name in (("content", "pixel") if warming_up else ("content", "style"))}


def _resume(out_dir: Path, s: _Setup) -> _State:
    saved = _load_state(out_dir / STATE_FILE)
    if saved is None or not (out_dir / DECODER_FILE).is_file():
        return _State()
    from model.weights import load_decoder_checkpoint

    weights, _, _ = load_decoder_checkpoint(out_dir / DECODER_FILE)
    s.raw_decoder.layers.load_state_dict(weights)
    s.optimizer.load_state_dict(saved["optimizer"])
    log.info("resuming training at step %d", saved["step"])
    return _State(step=int(saved["step"]), history=list(saved["history"]))


def _step(s: _Setup, options: TrainOptions, step: int) -> dict[str, float]:
    for group in s.optimizer.param_groups:  # the reference's adjust_learning_rate
        group["lr"] = options.lr / (1.0 + options.lr_decay * step)
    content = next(s.contents).to(s.device)
    zero = content.new_zeros(())
    with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.dtype == torch.bfloat16):
        if step < options.warmup_steps:  # no style batch: the content is its own style
            content_loss, pixel_loss = inversion_losses(s.encoder, s.decoder, content)
            terms = {"content": options.content_weight * content_loss, "style": zero,
                     "pixel": options.pixel_weight * pixel_loss}
        else:
            content_loss, style_loss = adain_losses(s.encoder, s.decoder, content, next(s.styles).to(s.device))
            terms = {"content": options.content_weight * content_loss, "style": options.style_weight * style_loss,
                     "pixel": zero}
    loss = sum(terms.values())
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    s.optimizer.step()
    return {"loss": float(loss.detach()), **{name: float(term.detach()) for name, term in terms.items()}}


def _checkpoint(out_dir: Path, s: _Setup, state: _State, options: TrainOptions, fixed, encoder_sha256: str,
                metadata: dict[str, str]) -> None:
    meta = {**metadata, "steps": str(state.step), "loss": f"{state.history[-1]['loss']:.6g}"}
    save_decoder_checkpoint(out_dir / DECODER_FILE, s.raw_decoder.layers.state_dict(),
                            encoder_sha256=encoder_sha256, metadata=meta)
    _save_state(out_dir / STATE_FILE, state, s.optimizer, options)
    s.raw_decoder.eval()
    _preview(out_dir / PREVIEW_FILE, state.history, _samples(s.encoder, s.raw_decoder, *fixed))
    s.raw_decoder.train()


# --- command line (torchrun) --------------------------------------------------------------------------------------

def start_decoder(init_from: Path | None = None, *, seed: int | None = None) -> Decoder:
    """The decoder a run starts from: a checkpoint to fine-tune, else PyTorch's default initialisation (as the
    reference trains from scratch), drawn from ``seed`` when given without touching the global generator."""
    from model.weights import load_decoder_checkpoint

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        decoder = Decoder()
    if init_from is not None:
        decoder.load_official(load_decoder_checkpoint(init_from)[0])
    return decoder


def save_init_checkpoint(model: StyleModel, path: Path) -> None:
    """Saves a served AdaIN model's decoder (with its encoder's hash) as the checkpoint a fine-tuning run starts from;
    InvalidOptionError when ``model`` is not an AdaIN model."""
    from model.adain.stylizer import AdaINModel

    if not isinstance(model, AdaINModel):
        raise InvalidOptionError("init_from", f"only {FAMILY} decoders can be fine-tuned")
    save_decoder_checkpoint(path, model.decoder.layers.state_dict(), encoder_sha256=model.encoder_sha256, metadata={})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m model.adain.train``: one process of a (possibly distributed) run; progress as JSON lines."""
    import argparse

    from model.devices import choose_precision
    from model.encoders import load_encoder, random_spec

    parser = argparse.ArgumentParser(prog="python -m model.adain.train", description=__doc__.splitlines()[0])
    parser.add_argument("--content-dir", required=True, type=Path)
    parser.add_argument("--style-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--vgg", help='encoder: a weights file or "bundled" (model.encoders); omit with --random-seed')
    parser.add_argument("--random-seed", type=int, help="use random encoder weights with this seed (tests)")
    parser.add_argument("--init-from", type=Path, help="decoder checkpoint to fine-tune")
    parser.add_argument("--options", default="{}", help="TrainOptions as JSON")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                        help="as the server's --precision (model.devices); float16 trains in float32")
    args = parser.parse_args(argv)

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = _device(args.device, int(os.environ.get("LOCAL_RANK", 0)))
    dtype = choose_precision(device, args.precision).dtype
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if (args.vgg is None) == (args.random_seed is None):
        parser.error("give exactly one of --vgg and --random-seed")
    encoder, weights = load_encoder(random_spec(args.random_seed) if args.vgg is None else args.vgg, RELU4_1)
    decoder = start_decoder(args.init_from)
    options = TrainOptions(**json.loads(args.options))

    def emit(p: TrainProgress) -> None:
        print(json.dumps({"progress": asdict(p)}), flush=True)

    try:
        result = train_decoder(encoder, decoder, args.content_dir, args.style_dir, options, out_dir=args.out,
                               encoder_sha256=weights.sha256, device=device, dtype=dtype, on_progress=emit, rank=rank,
                               metadata={"encoder_source": weights.source},
                               world_size=world)
        if rank == 0:
            print(json.dumps({"done": {"steps": result.steps, "losses": result.losses,
                                       "skipped_images": result.skipped_images}}), flush=True)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()
    return 0


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(f"cuda:{local_rank}") if name == "cuda" else torch.device(name)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    raise SystemExit(main())
