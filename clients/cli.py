"""``styletransfer``: the command-line client. Errors print as ``error: STATUS: details`` and exit 1, no traceback.

Options the server defaults (Gatys and training knobs) are sent only when given, so the model's own defaults apply;
their help shows those defaults, and a test checks the text against the model's option dataclasses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from clients.client import (
    FrameResult,
    Job,
    JobState,
    ModelInfo,
    StyleClient,
    StyleInfo,
    StyleRef,
    StyleTransferError,
    TLSConfig,
    format_for_path,
)
from styletransfer.v1 import style_transfer_pb2 as pb

if TYPE_CHECKING:
    from clients.video import FrameSink

__all__ = ["GATYS_DEFAULTS", "TRAIN_DEFAULTS", "build_parser", "main"]

_FORMATS = {"png": pb.IMAGE_FORMAT_PNG, "jpeg": pb.IMAGE_FORMAT_JPEG, "webp": pb.IMAGE_FORMAT_WEBP}
_INITS = {"content": pb.GATYS_INIT_CONTENT, "noise": pb.GATYS_INIT_NOISE, "style": pb.GATYS_INIT_STYLE}

# What the server uses when a flag is not given: the model's option defaults (model/gatys/optimise.py GatysOptions,
# model/adain/train.py TrainOptions; this client never imports the model) and the server's for iterations.
# tests/clients/test_cli.py checks each against the dataclass, so they cannot drift apart.
GATYS_DEFAULTS = {"num_scales": 2, "content_weight": 1.0, "style_weight": 1.0, "tv_weight": 1.0, "init": "content",
                  "optimizer": "lbfgs", "style_loss": "gram_mean_std", "seed": 0}
TRAIN_DEFAULTS = {"batch_size": 8, "image_size": 256, "lr": 1e-4, "lr_decay": 5e-5, "style_weight": 10.0,
                  "content_weight": 1.0, "warmup_steps": 0, "pixel_weight": 1.0, "checkpoint_every": 1000, "seed": 0}


def _global_flags(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--target", default=env("STYLETRANSFER_TARGET", "localhost:50051"),
                        help="server address (env STYLETRANSFER_TARGET)")
    parser.add_argument("--token", default=env("STYLETRANSFER_TOKEN"), help="bearer token (env STYLETRANSFER_TOKEN)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca-cert", help="PEM CA bundle to trust (implies --tls)")
    parser.add_argument("--client-cert", help="PEM client certificate for mTLS (implies --tls)")
    parser.add_argument("--client-key", help="PEM key of --client-cert")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per call")


def _stylize_flags(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stylize", help="stylize an image (AdaIN)")
    p.add_argument("content", help="content image path")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image path, or id:<style_id> (a registered "
                   "style, or a preset from `styles list`, which picks its model)")
    p.add_argument("-o", "--output", required=True, help="output path (.png, .jpg, .webp)")
    p.add_argument("--alpha", type=float, help="style strength in [0, 1] (default 1)")
    p.add_argument("--weights", help="comma-separated weights, one per style")
    p.add_argument("--mask", action="append", default=[], metavar="INDEX=PATH",
                   help="mask image for style INDEX (0 is the first style)")
    p.add_argument("--preserve-color", nargs="?", const="coral", choices=["coral", "luminance"])
    p.add_argument("--content-size", type=int)
    p.add_argument("--style-size", type=int)
    p.add_argument("--model", default="")
    p.add_argument("--format", choices=sorted(_FORMATS), help="must agree with the output's extension, which "
                   "chooses the format")
    p.add_argument("--quality", type=int, default=0)
    p.add_argument("--flatten-alpha", action="store_true",
                   help="return an opaque image even when the content is transparent (PNG/WebP keep alpha otherwise)")
    p.add_argument("--no-cache", action="store_true",
                   help="compute the image even when the server holds an identical request's (e.g. to time it)")


def _video_flags(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("video", help="stylize a video file or a folder of frames (one stream, styles sent once)",
                       description="Stylizes every frame of a video file (.mp4, .mov, .mkv, .webm) or of a folder of "
                       "numbered PNG/JPEG frames over one stream, whose styles are sent and encoded once, and writes "
                       "a video file (the input video's audio is kept) or a folder of PNG frames. --timeout does not "
                       "apply: the stream lasts as long as the video.")
    v.add_argument("input", help="video file, or folder of numbered PNG/JPEG frames (frame_0001.png, ...)")
    v.add_argument("styles", nargs="+", metavar="STYLE", help="style image path, or id:<style_id>")
    v.add_argument("-o", "--output", required=True,
                   help="video file (.mp4, .mov, .mkv, .webm), or a folder (a name without suffix) for PNG frames")
    v.add_argument("--temporal", action="store_true",
                   help="stabilise the frames over time: textures follow the scene instead of flickering")
    v.add_argument("--temporal-strength", type=float, metavar="S",
                   help="how strongly, in [0, 1] (default: the server's); implies --temporal")
    v.add_argument("--size", type=int, help="shorter side of the output frames in pixels (default: the input's)")
    v.add_argument("--fps", type=float, help="frames per second of the output: frames are skipped or repeated to "
                   "keep the duration (default: the input video's rate; 24 for a folder of frames)")
    v.add_argument("--alpha", type=float, help="style strength in [0, 1] (default 1)")
    v.add_argument("--weights", help="comma-separated weights, one per style")
    v.add_argument("--preserve-color", nargs="?", const="coral", choices=["coral", "luminance"])
    v.add_argument("--style-size", type=int)
    v.add_argument("--model", default="")


def _style_flags(sub: argparse._SubParsersAction) -> None:
    styles = sub.add_parser("styles", help="manage registered styles").add_subparsers(dest="action", required=True)
    put = styles.add_parser("put", help="register a style image")
    put.add_argument("image")
    put.add_argument("--name", default="")
    put.add_argument("--style-size", type=int)
    styles.add_parser("list", help="list the models' built-in presets, then registered styles")
    styles.add_parser("get", help="show one style").add_argument("style_id")
    styles.add_parser("delete", help="delete a registered style (presets are read-only)").add_argument("style_id")


def _job_flags(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="Gatys and training jobs").add_subparsers(dest="action", required=True)
    jobs.add_parser("list", help="list jobs, newest first")
    for action, text in (("get", "show one job"), ("watch", "follow a job until it ends"),
                         ("cancel", "cancel a job")):
        jobs.add_parser(action, help=text).add_argument("job_id")
    result = jobs.add_parser("result", help="save a finished job's image")
    result.add_argument("job_id")
    result.add_argument("-o", "--output", required=True, help="output path; its extension (.png, .jpg, .webp) "
                        "chooses the format")
    _gatys_flags(sub)
    _train_flags(sub)


def _gatys_flags(sub: argparse._SubParsersAction) -> None:
    d = GATYS_DEFAULTS
    g = sub.add_parser("gatys", help="optimisation-based stylization as a job (live progress)",
                       description="Gatys, Ecker & Bethge: optimises the image itself against VGG features. Runs as "
                       "a durable job on the server; the progress bar follows it.")
    g.add_argument("content", help="content image path")
    g.add_argument("styles", nargs="+", metavar="STYLE", help="style image path, or id:<style_id>")
    g.add_argument("-o", "--output", required=True, help="output path; .png, .jpg or .webp chooses the format")
    g.add_argument("--iterations", type=int, help="optimisation steps per scale (default: the server's "
                   "--gatys-default-iterations)")
    g.add_argument("--size", type=int, help="longer side of the output in pixels (default: the content's)")
    g.add_argument("--start-size", type=int, help="longer side of the first scale (default: size / 2^(scales-1))")
    g.add_argument("--num-scales", type=int, help=f"coarse-to-fine scales (default {d['num_scales']})")
    g.add_argument("--optimizer", choices=["lbfgs", "adam"],
                   help=f"lbfgs as in the paper, or adam (default {d['optimizer']})")
    g.add_argument("--learning-rate", type=float, help="step size (default: 1.0 for lbfgs, 0.02 for adam)")
    g.add_argument("--content-weight", type=float, help=f"weight of the content loss (default {d['content_weight']})")
    g.add_argument("--style-weight", type=float, help=f"weight of the style loss (default {d['style_weight']})")
    g.add_argument("--tv-weight", type=float, help=f"weight of total variation, smoothness (default {d['tv_weight']})")
    g.add_argument("--init", choices=sorted(_INITS), help=f"the image the optimisation starts from "
                   f"(default {d['init']})")
    g.add_argument("--seed", type=int, help=f"seed of the noise init (default {d['seed']})")
    g.add_argument("--preserve-color", action="store_true", help="transfer luminance only, keep the content's colours")
    g.add_argument("--style-loss", choices=["gram_mean_std", "gram", "mean_std"],
                   help=f"Gram matrices plus per-channel mean and std, Gram matrices only, or mean and std only "
                        f"(default {d['style_loss']})")


def _train_flags(sub: argparse._SubParsersAction) -> None:
    d = TRAIN_DEFAULTS
    t = sub.add_parser("train", help="train a decoder on folders under the server's datasets root",
                       description="Trains an AdaIN decoder on the server, as a job, and serves it under --name "
                       "when it succeeds.")
    t.add_argument("--content-dir", required=True, help="content images, relative to the server's datasets root")
    t.add_argument("--style-dir", required=True, help="style images, relative to the server's datasets root")
    t.add_argument("--name", required=True, help="model name to serve the result under")
    t.add_argument("--iterations", type=int, help="training steps (default: the server's)")
    t.add_argument("--batch-size", type=int, help=f"images per step (default {d['batch_size']})")
    t.add_argument("--image-size", type=int, help=f"side of the random training crops (default {d['image_size']})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate (default {d['lr']})")
    t.add_argument("--lr-decay", type=float, help=f"lr / (1 + lr_decay * step) (default {d['lr_decay']})")
    t.add_argument("--content-weight", type=float, help=f"weight of the content loss (default {d['content_weight']})")
    t.add_argument("--style-weight", type=float, help=f"weight of the style loss (default {d['style_weight']})")
    t.add_argument("--warmup-steps", type=int,
                   help="first steps in which the decoder learns to reproduce the content (a pixel loss beside the "
                   "content loss) before the style objective takes over; a decoder from scratch on a CPU then draws "
                   f"the content in hundreds of steps instead of thousands (default {d['warmup_steps']})")
    t.add_argument("--pixel-weight", type=float,
                   help=f"weight of the warm-up's pixel loss (default {d['pixel_weight']})")
    t.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints (default {d['checkpoint_every']})")
    t.add_argument("--init-from", help="fine-tune this served model's decoder instead of starting fresh")
    t.add_argument("--seed", type=int, help=f"seed of crops and initial weights (default {d['seed']})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styletransfer", description="Client for the styletransfer gRPC service.")
    _global_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    _stylize_flags(sub)
    _video_flags(sub)
    _style_flags(sub)
    sub.add_parser("models", help="list the server's models")
    sub.add_parser("delete-model", help="remove a model made by a Train job",
                   description="Removes a model made by a Train job. Built-in models (the server's weights) cannot "
                   "be deleted: the server answers FAILED_PRECONDITION, and NOT_FOUND for a name it does not "
                   "serve.").add_argument("name", help="the model's name or family/version")
    _job_flags(sub)
    return parser


def _client(args: argparse.Namespace) -> StyleClient:
    tls: bool | TLSConfig = bool(args.tls or args.ca_cert or args.client_cert)
    if tls:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        tls = TLSConfig(read(args.ca_cert), read(args.client_key), read(args.client_cert))
    return StyleClient(args.target, token=args.token, tls=tls, timeout=args.timeout)


def _style_arg(text: str) -> str | StyleRef:
    return StyleRef(text[3:]) if text.startswith("id:") else text


def _masks(items: list[str], styles: int) -> list[str | None]:
    """``--mask INDEX=PATH`` values as one entry per style; ValueError with the allowed indexes otherwise."""
    masks: list[str | None] = [None] * styles
    for item in items:
        index, sep, path = item.partition("=")
        if not sep or not index.strip().isdigit() or not path:
            raise ValueError(f"--mask {item}: expected INDEX=PATH, e.g. --mask 0=fg.png")
        if int(index) >= styles:
            raise ValueError(f"--mask {item}: style index {int(index)} does not exist; with {styles} style(s) "
                             f"use 0..{styles - 1}")
        masks[int(index)] = path
    return masks


def _output_format(output: str, requested: str | None) -> str:
    """The format the output's extension names; a --format that disagrees is refused rather than mislabelled."""
    fmt = format_for_path(output)
    if requested and requested != fmt:
        raise ValueError(f"--format {requested} disagrees with {output}; name the file .{requested}")
    return fmt


def _cmd_stylize(client: StyleClient, args: argparse.Namespace) -> None:
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    masks = _masks(args.mask, len(args.styles))
    fmt = _output_format(args.output, args.format)
    result = client.stylize(args.content, [_style_arg(s) for s in args.styles], alpha=args.alpha, weights=weights,
                            masks=masks, preserve_color=args.preserve_color or False, content_size=args.content_size,
                            style_size=args.style_size, model=args.model, output_format=fmt, quality=args.quality,
                            flatten_alpha=args.flatten_alpha, skip_response_cache=args.no_cache)
    result.save(args.output)
    note = " (UNTRAINED random weights)" if result.untrained else ""
    note += " (from the server's response cache)" if result.cached else ""
    print(f"{args.output}: {result.width}x{result.height} {result.mime_type}, model {result.model}{note}, "
          f"{result.timing['total_ms']:.0f} ms")


def _cmd_video(client: StyleClient, args: argparse.Namespace) -> None:
    from clients import video  # PyAV loads for this command only

    source = video.open_source(args.input, fps=args.fps, size=args.size)
    sink = video.open_sink(args.output, source)
    to_video = video.is_video(args.output)
    temporal = args.temporal_strength if args.temporal_strength is not None else args.temporal
    results = client.stylize_stream(
        source.frames(), [_style_arg(s) for s in args.styles], timeout=None, alpha=args.alpha,
        weights=[float(w) for w in args.weights.split(",")] if args.weights else None,
        preserve_color=args.preserve_color or False, content_size=args.size, style_size=args.style_size,
        model=args.model, output_format="jpeg" if to_video else "png", quality=video.JPEG_QUALITY,
        temporal=temporal)
    completed = False
    try:
        last = _write_frames(results, sink, source.count, source.names)
        completed = True
    finally:
        sink.close(completed)
    if last is None:
        raise ValueError(f"{args.input}: no frames")
    note = " (UNTRAINED random weights)" if last.untrained else ""
    print(f"{args.output}: {last.sequence + 1} frames of {last.width}x{last.height} at {float(source.rate):g} fps, "
          f"model {last.model}{note}")


def _write_frames(results: Iterator[FrameResult], sink: FrameSink, total: int | None,
                  names: list[str] | None) -> FrameResult | None:
    """Writes each stylized frame with a progress bar (frames per second) on stderr; a frame the server could not
    stylize stops the command with its error. Returns the last result."""
    from tqdm import tqdm

    last = None
    with tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True) as bar:
        for last in results:
            if last.error is not None:
                name = f" ({names[last.sequence]})" if names else ""
                raise StyleTransferError(last.error.code, f"frame {last.sequence}{name}: {last.error.details}",
                                         last.error.request_id)
            sink.write(last.image)
            bar.update()
    return last


def _describe_style(style: StyleInfo) -> str:
    """A style as ``styles list`` and ``get`` print it: id, the stored image's size, the shorter side models encode
    it at (0: its own size; registered without one: each model's own default), name; a preset instead says which
    model it belongs to."""
    if style.builtin:
        return f"{style.style_id}  preset of {style.model}, read-only  {style.display_name}"
    size = "each model's default" if style.style_size is None else style.style_size
    return f"{style.style_id}  {style.width}x{style.height}  style size {size}  {style.display_name}"


def _cmd_styles(client: StyleClient, args: argparse.Namespace) -> None:
    if args.action == "put":
        style = client.put_style(args.image, style_size=args.style_size, display_name=args.name)
        print(style.style_id)
    elif args.action == "list":
        for style in client.list_styles():
            print(_describe_style(style))
    elif args.action == "get":
        print(_describe_style(client.get_style(args.style_id)))
    else:
        client.delete_style(args.style_id)
        print(f"deleted {args.style_id}")


# Trained models' metadata (server/jobs/train_runner.py), in the order `models` prints it.
_TRAINING_FACTS = (("content_dir", "content"), ("style_dir", "styles"), ("steps", "steps"),
                   ("final_content_loss", "final content loss"), ("final_style_loss", "final style loss"))


def _describe_model(m: ModelInfo) -> list[str]:
    """A model as `models` prints it: a line with its address, flags, device and weights' hashes by role, then
    indented lines for where the weights came from, what a trained model was trained on, and any problem."""
    flags = "".join(text for on, text in ((m.is_default, " (default)"), (m.untrained, " UNTRAINED"),
                                          (m.trained, " trained")) if on)
    address = f" ({m.family}/{m.version})" if m.family else ""  # an older server says no family
    hashes = "".join(f"  {role} {digest[:12]}" for role, digest in sorted(m.weights_sha256.items()))
    lines = [f"{m.name}{address}{flags}  {m.device}/{m.dtype}{hashes}"]
    if m.masks:  # an older server says nothing of masks or presets
        kind = "its built-in presets only (styles list)" if not m.style_images else "style images"
        lines.append(f"    takes {kind}; masks {m.masks}")
    if m.provenance:
        lines.append("    " + ", ".join(f"{role}: {source}" for role, source in sorted(m.provenance.items())))
    if m.defaults is not None:
        d = m.defaults
        content = d.content_size or "kept"
        lines.append(f"    defaults: style size {d.style_size}, alpha {d.alpha:g}, content size {content}")
    facts = [f"{label} {m.metadata[key]}" for key, label in _TRAINING_FACTS if m.metadata.get(key)]
    if facts:
        lines.append("    trained on " + ", ".join(facts))
    if m.problem:
        lines.append(f"    problem: {m.problem}")
    return lines


def _cmd_models(client: StyleClient, args: argparse.Namespace) -> None:
    for model in client.models():
        print("\n".join(_describe_model(model)))


def _cmd_delete_model(client: StyleClient, args: argparse.Namespace) -> None:
    client.delete_model(args.name)
    print(f"deleted {args.name}")


def _describe(job: Job) -> str:
    p = job.progress
    steps = f"{p.step}/{p.total_steps}" if p.total_steps else "-"  # a queued job has no step count yet
    text = f"{job.id}  {job.kind.name.lower()}  {job.state.name.lower()}  {steps}"
    if p.loss:
        text += f"  loss {p.loss:.4g}"
    return text + (f"  error: {job.error}" if job.error else "")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes:02d}:{secs:02d}"


class _Progress:
    """A job's progress bar on stderr: created when the job has steps (queued jobs print one line instead), the
    rate counted from the steps this command has watched (a resumed job's earlier steps were not timed by it), and the
    ETA the server's, so the line never shows two estimates."""

    def __init__(self) -> None:
        self._bar = None
        self._first: tuple[int, float] | None = None
        self._queued_said = False

    def update(self, job: Job) -> None:
        p = job.progress
        if not p.total_steps:
            if job.state == JobState.QUEUED and not self._queued_said:
                print(f"job {job.id} queued", file=sys.stderr)
                self._queued_said = True
            return
        now = time.monotonic()
        if self._bar is None:
            from tqdm import tqdm

            # tqdm puts ", " before a postfix: "| 13/400, 1.19 step/s, eta 05:20, loss 0.5"
            self._bar = tqdm(total=p.total_steps, initial=p.step, file=sys.stderr, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n}/{total}{postfix}")
            self._first = (p.step, now)
        first_step, first_time = self._first
        rate = (p.step - first_step) / (now - first_time) if p.step > first_step and now > first_time else None
        parts = [f"{rate:.2f} step/s" if rate else "- step/s"]
        if not job.state.finished:
            parts.append(f"eta {_duration(p.eta_seconds)}")
        parts.append(f"loss {p.loss:.4g}")
        self._bar.total = p.total_steps
        self._bar.n = p.step
        self._bar.set_postfix_str(", ".join(parts), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _watch(client: StyleClient, job_id: str) -> Job:
    """Follows a job with a progress bar on stderr; returns its final state."""
    progress = _Progress()
    last = None
    try:
        for job in client.watch_job(job_id):
            last = job
            progress.update(job)
    finally:
        progress.close()
    assert last is not None
    return last


def _finish(client: StyleClient, job: Job, output: str | None) -> None:
    if job.state != JobState.SUCCEEDED:
        raise SystemExit(f"error: job {job.id} ended {job.state.name}: {job.error}")
    if output:
        client.job_result(job.id).save(output)
        print(f"{output}: written")


def _cmd_jobs(client: StyleClient, args: argparse.Namespace) -> None:
    if args.action == "list":
        for job in client.list_jobs():
            print(_describe(job))
    elif args.action == "get":
        print(_describe(client.get_job(args.job_id)))
    elif args.action == "watch":
        print(_describe(_watch(client, args.job_id)))
    elif args.action == "cancel":
        _cancel(client, args.job_id)
    else:
        format_for_path(args.output)  # refused before the download
        client.job_result(args.job_id).save(args.output)
        print(f"{args.output}: written")


def _cancel(client: StyleClient, job_id: str) -> None:
    """Cancels a job and prints the state it ends in: a running job stops at its next step, so that is waited for.
    A job that ended otherwise (it had finished, or finished before it could stop) is an error."""
    job = client.cancel_job(job_id)
    if not job.state.finished:
        *_, job = client.watch_job(job_id)  # its last update is the state it ended in
    print(_describe(job))
    if job.state != JobState.CANCELLED:
        raise SystemExit(f"error: job {job.id} {job.state.name.lower()}: there was nothing to cancel")


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict:
    """The optional fields the user set (None means "not given": the server's default applies)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _cmd_gatys(client: StyleClient, args: argparse.Namespace) -> None:
    options = _given(args, ("iterations", "size", "start_size", "num_scales", "learning_rate", "content_weight",
                            "style_weight", "tv_weight", "seed", "style_loss"))
    if args.optimizer:
        options["optimizer"] = pb.OPTIMIZER_ADAM if args.optimizer == "adam" else pb.OPTIMIZER_LBFGS
    if args.init:
        options["init"] = _INITS[args.init]
    options["output_format"] = _FORMATS[format_for_path(args.output)]
    job = client.submit_gatys(args.content, [_style_arg(s) for s in args.styles],
                              preserve_color=args.preserve_color, **options)
    print(f"job {job.id}", file=sys.stderr)
    _finish(client, _watch(client, job.id), args.output)


def _cmd_train(client: StyleClient, args: argparse.Namespace) -> None:
    fields = _given(args, ("iterations", "batch_size", "image_size", "lr", "lr_decay", "content_weight",
                           "style_weight", "warmup_steps", "pixel_weight", "checkpoint_every", "init_from", "seed"))
    job = client.train(content_dir=args.content_dir, style_dir=args.style_dir, model_name=args.name, **fields)
    print(f"job {job.id}", file=sys.stderr)
    _finish(client, _watch(client, job.id), None)
    print(f"model {args.name} is ready")


_COMMANDS = {"stylize": _cmd_stylize, "video": _cmd_video, "styles": _cmd_styles, "models": _cmd_models,
             "delete-model": _cmd_delete_model, "jobs": _cmd_jobs,
             "gatys": _cmd_gatys, "train": _cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _client(args) as client:
            _COMMANDS[args.command](client, args)
        sys.stdout.flush()  # here, so a closed pipe is reported inside the try and not by the interpreter at exit
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 1
    except StyleTransferError as exc:
        hint = f" (is the server running at {args.target}?)" if exc.code == grpc.StatusCode.UNAVAILABLE else ""
        print(f"error: {exc.code.name}: {exc.details}{hint}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _quiet_broken_pipe() -> None:
    """The reader went away (``styletransfer jobs list | head -3``): stop without a message. Python would flush
    stdout again at exit and fail once more, so stdout is pointed at /dev/null first."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
