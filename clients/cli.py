"""``styletransfer``: the command-line client. Errors print as ``error: STATUS: details`` and exit 1, no traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc

from clients.client import StyleClient, StyleRef, StyleTransferError, TLSConfig
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["build_parser", "main"]

_EXTENSIONS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
_TERMINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}


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
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image path, or id:<style_id>")
    p.add_argument("-o", "--output", required=True, help="output path (.png, .jpg, .webp)")
    p.add_argument("--alpha", type=float, help="style strength in [0, 1] (default 1)")
    p.add_argument("--weights", help="comma-separated weights, one per style")
    p.add_argument("--mask", action="append", default=[], metavar="INDEX=PATH", help="mask image for style INDEX")
    p.add_argument("--preserve-color", nargs="?", const="coral", choices=["coral", "luminance"])
    p.add_argument("--content-size", type=int)
    p.add_argument("--style-size", type=int)
    p.add_argument("--model", default="")
    p.add_argument("--format", choices=["png", "jpeg", "webp"], help="default: from the output extension")
    p.add_argument("--quality", type=int, default=0)


def _style_flags(sub: argparse._SubParsersAction) -> None:
    styles = sub.add_parser("styles", help="manage registered styles").add_subparsers(dest="action", required=True)
    put = styles.add_parser("put", help="register a style image")
    put.add_argument("image")
    put.add_argument("--name", default="")
    put.add_argument("--style-size", type=int)
    styles.add_parser("list", help="list registered styles")
    for action in ("get", "delete"):
        styles.add_parser(action).add_argument("style_id")


def _job_flags(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="Gatys and training jobs").add_subparsers(dest="action", required=True)
    jobs.add_parser("list")
    for action in ("get", "watch", "cancel"):
        jobs.add_parser(action).add_argument("job_id")
    result = jobs.add_parser("result")
    result.add_argument("job_id")
    result.add_argument("-o", "--output", required=True)
    gatys = sub.add_parser("gatys", help="optimisation-based stylization as a job (live progress)")
    gatys.add_argument("content")
    gatys.add_argument("styles", nargs="+", metavar="STYLE")
    gatys.add_argument("-o", "--output", required=True)
    gatys.add_argument("--iterations", type=int, default=0)
    gatys.add_argument("--size", type=int)
    gatys.add_argument("--num-scales", type=int, default=0)
    gatys.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    gatys.add_argument("--seed", type=int, default=0)
    gatys.add_argument("--preserve-color", action="store_true")
    gatys.add_argument("--style-loss", choices=["gram", "mean_std"], default="")
    train = sub.add_parser("train", help="train a decoder on folders under the server's datasets root")
    train.add_argument("--content-dir", required=True)
    train.add_argument("--style-dir", required=True)
    train.add_argument("--name", required=True, help="model name to serve the result under")
    train.add_argument("--iterations", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=0)
    train.add_argument("--image-size", type=int, default=0)
    train.add_argument("--init-from", default="")
    train.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styletransfer", description="Client for the styletransfer gRPC service.")
    _global_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    _stylize_flags(sub)
    _style_flags(sub)
    sub.add_parser("models", help="list the server's models")
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


def _cmd_stylize(client: StyleClient, args: argparse.Namespace) -> None:
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    masks: list[str | None] = [None] * len(args.styles)
    for item in args.mask:
        index, _, path = item.partition("=")
        masks[int(index)] = path
    fmt = args.format or _EXTENSIONS.get(Path(args.output).suffix.lower(), "png")
    result = client.stylize(args.content, [_style_arg(s) for s in args.styles], alpha=args.alpha, weights=weights,
                            masks=masks, preserve_color=args.preserve_color or False, content_size=args.content_size,
                            style_size=args.style_size, model=args.model, output_format=fmt, quality=args.quality)
    result.save(args.output)
    note = " (UNTRAINED random weights)" if result.untrained else ""
    print(f"{args.output}: {result.width}x{result.height} {result.mime_type}, model {result.model}{note}, "
          f"{result.timing['total_ms']:.0f} ms")


def _cmd_styles(client: StyleClient, args: argparse.Namespace) -> None:
    if args.action == "put":
        style = client.put_style(args.image, style_size=args.style_size, display_name=args.name)
        print(style.style_id)
    elif args.action == "list":
        for style in client.list_styles():
            print(f"{style.style_id}  {style.width}x{style.height}  {style.display_name}")
    elif args.action == "get":
        style = client.get_style(args.style_id)
        print(f"{style.style_id}  {style.width}x{style.height}  size {style.style_size}  {style.display_name}")
    else:
        client.delete_style(args.style_id)
        print(f"deleted {args.style_id}")


def _cmd_models(client: StyleClient, args: argparse.Namespace) -> None:
    for m in client.models():
        flags = " (default)" if m.is_default else ""
        flags += " UNTRAINED" if m.untrained else ""
        print(f"{m.name}{flags}  {m.device}/{m.dtype}  encoder {m.encoder_sha256[:12]}  "
              f"decoder {m.decoder_sha256[:12]}")


def _describe(job: pb.Job) -> str:
    state = pb.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
    p = job.progress
    text = f"{job.id}  {pb.JobKind.Name(job.kind).removeprefix('JOB_KIND_').lower()}  {state}  {p.step}/{p.total_steps}"
    if p.loss:
        text += f"  loss {p.loss:.4g}"
    return text + (f"  error: {job.error}" if job.error else "")


def _watch(client: StyleClient, job_id: str) -> pb.Job:
    """Follows a job with a progress bar on stderr; returns its final state."""
    from tqdm import tqdm

    last = None
    with tqdm(total=None, unit="step", file=sys.stderr, dynamic_ncols=True) as bar:
        for job in client.watch_job(job_id):
            last = job
            bar.total = job.progress.total_steps or None
            bar.n = job.progress.step
            bar.set_postfix(loss=f"{job.progress.loss:.4g}", eta=f"{job.progress.eta_seconds:.0f}s", refresh=False)
            bar.refresh()
    assert last is not None
    return last


def _finish(client: StyleClient, job: pb.Job, output: str | None) -> None:
    if job.state != pb.JOB_STATE_SUCCEEDED:
        raise SystemExit(f"error: job {job.id} ended {pb.JobState.Name(job.state)}: {job.error}")
    if output:
        Path(output).write_bytes(client.job_result(job.id).image)
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
        print(_describe(client.cancel_job(args.job_id)))
    else:
        Path(args.output).write_bytes(client.job_result(args.job_id).image)
        print(f"{args.output}: written")


def _cmd_gatys(client: StyleClient, args: argparse.Namespace) -> None:
    options = {"iterations": args.iterations, "num_scales": args.num_scales, "seed": args.seed,
               "optimizer": pb.OPTIMIZER_ADAM if args.optimizer == "adam" else pb.OPTIMIZER_LBFGS,
               "preserve_color": args.preserve_color, "style_loss": args.style_loss,
               "output_format": {"jpeg": pb.IMAGE_FORMAT_JPEG, "webp": pb.IMAGE_FORMAT_WEBP}.get(
                   _EXTENSIONS.get(Path(args.output).suffix.lower(), "png"), pb.IMAGE_FORMAT_PNG)}
    if args.size:
        options["size"] = args.size
    job = client.submit_gatys(args.content, [_style_arg(s) for s in args.styles], **options)
    print(f"job {job.id}", file=sys.stderr)
    _finish(client, _watch(client, job.id), args.output)


def _cmd_train(client: StyleClient, args: argparse.Namespace) -> None:
    job = client.train(content_dir=args.content_dir, style_dir=args.style_dir, model_name=args.name,
                       iterations=args.iterations, batch_size=args.batch_size, image_size=args.image_size,
                       init_from=args.init_from, seed=args.seed)
    print(f"job {job.id}", file=sys.stderr)
    _finish(client, _watch(client, job.id), None)
    print(f"model {args.name} is ready")


_COMMANDS = {"stylize": _cmd_stylize, "styles": _cmd_styles, "models": _cmd_models, "jobs": _cmd_jobs,
             "gatys": _cmd_gatys, "train": _cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _client(args) as client:
            _COMMANDS[args.command](client, args)
    except StyleTransferError as exc:
        hint = f" (is the server running at {args.target}?)" if exc.code == grpc.StatusCode.UNAVAILABLE else ""
        print(f"error: {exc.code.name}: {exc.details}{hint}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
