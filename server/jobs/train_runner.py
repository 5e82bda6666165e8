"""The Train job kind: validation at submit time (dataset paths confined to the datasets root), and the runner.

One process trains in the job worker thread; ``num_processes`` > 1 launches ``torchrun`` with that many processes
(DistributedDataParallel: NCCL on GPUs, gloo on CPU) at the lowest CPU priority and follows its JSON progress lines.
A restarted job resumes from its last checkpoint. On success the decoder is registered under ``model_name`` and
served at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import IO

import torch

from model.adain.train import (
    DECODER_FILE,
    FAMILY,
    PREVIEW_FILE,
    TrainOptions,
    TrainProgress,
    save_init_checkpoint,
    start_decoder,
    train_decoder,
    training_dtype,
)
from model.devices import choose_precision, dtype_name, select_device
from model.encoders import load_encoder, vgg_spec
from model.errors import Cancelled, InvalidOptionError
from model.network import RELU4_1
from server.config import Config
from server.costs import check_finite, check_train_batch, shown
from server.errors import InvalidArgument, NotFound, PermissionDenied
from server.jobs.manager import JobContext
from server.metrics import Metrics
from server.models import ModelRegistry
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["TrainRunner", "resolve_dataset", "run_child", "train_options", "validate_train"]

log = logging.getLogger(__name__)
CHILD_NICENESS = 19  # torchrun and its workers: the lowest CPU priority, as the in-process job threads have
STDERR_TAIL_LINES = 50  # a failed child's last stderr lines, for its error message


MAX_DATASET_PATH = 1024  # characters of content_dir/style_dir


def resolve_dataset(root: Path, relative: str, field: str) -> Path:
    """``root / relative``, refusing anything that leaves ``root`` (absolute paths, '..', symlinks pointing out)."""
    if not relative:
        raise InvalidArgument(f"{field}: a folder under the datasets root is required")
    if len(relative) > MAX_DATASET_PATH or not relative.isprintable():
        raise InvalidArgument(f"{field}: at most {MAX_DATASET_PATH} printable characters")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidArgument(f"{field}: must be a relative path without '..' (under the datasets root)")
    base = root.resolve()
    try:
        path = (base / pure).resolve()
    except OSError:  # e.g. a component longer than the file system allows
        raise NotFound(f"{field}: folder {shown(relative)} not found under the datasets root") from None
    if not path.is_relative_to(base):
        raise PermissionDenied(f"{field}: resolves outside the datasets root")
    if not _is_dir(path):
        raise NotFound(f"{field}: folder {shown(relative)} not found under the datasets root")
    return path


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def train_options(request: pb.TrainRequest, config: Config) -> TrainOptions:
    if request.iterations > config.train_max_iterations:
        raise InvalidArgument(f"iterations must be at most {config.train_max_iterations}")

    # Unset fields take TrainOptions' own defaults (stated once, in model/), except the two the server bounds.
    # Warm-up steps are counted in iterations, so the iterations cap bounds them too.
    given: dict[str, float] = {name: getattr(request, name) for name in ("batch_size", "image_size", "warmup_steps")
                               if getattr(request, name)}
    given |= {name: getattr(request, name)
              for name in ("lr", "lr_decay", "style_weight", "content_weight", "pixel_weight")
              if request.HasField(name)}
    try:
        return TrainOptions(
            iterations=request.iterations or config.train_default_iterations,
            checkpoint_every=request.checkpoint_every or config.train_checkpoint_every, seed=request.seed, **given,
        ).validate()
    except InvalidOptionError as exc:
        raise InvalidArgument(str(exc)) from None


def validate_train(request: pb.TrainRequest, config: Config, models: ModelRegistry) -> TrainOptions:
    check_finite(request)
    resolve_dataset(config.datasets_path, request.content_dir, "content_dir")
    resolve_dataset(config.datasets_path, request.style_dir, "style_dir")
    models.check_new_name(request.model_name, FAMILY)
    if request.init_from:
        if not models.exists(request.init_from):
            raise NotFound(f"init_from: model {shown(request.init_from)} not found")
        family = models.describe(request.init_from).family
        if family != FAMILY:
            raise InvalidArgument(f"init_from: model {shown(request.init_from)} is of family {family}; only {FAMILY} "
                                  "decoders can be fine-tuned")
    if request.num_processes > config.train_max_processes:
        raise InvalidArgument(f"num_processes must be at most {config.train_max_processes}")
    options = train_options(request, config)
    check_train_batch(options.batch_size, options.image_size, config)
    return options


class TrainRunner:
    def __init__(self, config: Config, models: ModelRegistry, metrics: Metrics) -> None:
        self.config = config
        self.models = models
        self.metrics = metrics

    def __call__(self, ctx: JobContext) -> dict:
        request = pb.TrainRequest.FromString(ctx.job.request)
        options = train_options(request, self.config)
        content = resolve_dataset(self.config.datasets_path, request.content_dir, "content_dir")
        style = resolve_dataset(self.config.datasets_path, request.style_dir, "style_dir")
        out = ctx.folder / "train"
        init = self._init_checkpoint(request, ctx.folder)
        processes = request.num_processes or self.config.train_processes
        started = time.monotonic()

        def progress(p: TrainProgress) -> None:
            ctx.report(p.step, p.total_steps, p.loss, dict(p.losses))
            self.metrics.train_steps_per_second.labels(ctx.job.id).set(p.steps_per_second)

        if processes > 1:
            self._torchrun(processes, content, style, out, options, init, ctx, progress)
        else:
            self._in_process(content, style, out, options, init, ctx, progress)
        history = ctx._progress.get("losses", {})
        if not all(math.isfinite(float(v)) for v in (ctx._progress.get("loss", 0.0), *history.values())):
            # a diverged decoder draws black or noise: it is not registered (and so never served)
            raise RuntimeError(f"training diverged (final losses {history}); the model was not registered")
        metadata = {"content_dir": request.content_dir, "style_dir": request.style_dir,
                    "steps": str(options.iterations), "final_content_loss": f"{history.get('content', 0):.6g}",
                    "final_style_loss": f"{history.get('style', 0):.6g}", "job_id": ctx.job.id,
                    "train_seconds": f"{time.monotonic() - started:.1f}", "processes": str(processes),
                    "init_from": request.init_from, "precision": dtype_name(self._dtype())}
        self.models.register(request.model_name, FAMILY, {"decoder": out / DECODER_FILE}, metadata)
        preview = (out / PREVIEW_FILE).read_bytes()
        from PIL import Image

        with Image.open(out / PREVIEW_FILE) as img:
            width, height = img.size
        return ctx.write_result(preview, "image/png", width, height)

    def _dtype(self) -> torch.dtype:
        """What this server's --device and --precision train in (model.adain.train.training_dtype)."""
        return training_dtype(choose_precision(select_device(self.config.device), self.config.precision).dtype)

    def _encoder_spec(self) -> str:
        """The VGG19 decoders are trained against: the server's --vgg (what the served AdaIN model encodes with)."""
        return vgg_spec(self.config.option("vgg"), random_weights=self.config.random_weights,
                        seed=self.config.random_seed)

    def _init_checkpoint(self, request: pb.TrainRequest, folder: Path) -> Path | None:
        """The decoder to start from, saved as a checkpoint (processes of a torchrun read it too)."""
        if not request.init_from:
            return None
        path = folder / "init.safetensors"
        if not path.is_file():
            save_init_checkpoint(self.models.get(request.init_from), path)  # validate_train admitted its family
        return path

    def _in_process(self, content: Path, style: Path, out: Path, options: TrainOptions, init: Path | None,
                    ctx: JobContext, progress) -> None:
        encoder, weights = load_encoder(self._encoder_spec(), RELU4_1)
        decoder = start_decoder(init, seed=options.seed)
        train_decoder(encoder, decoder, content, style, TrainOptions(**{**asdict(options), "num_workers": 0}),
                      out_dir=out, encoder_sha256=weights.sha256, device=select_device(self.config.device),
                      dtype=self._dtype(), on_progress=progress, should_stop=ctx.should_stop)

    def _torchrun(self, processes: int, content: Path, style: Path, out: Path, options: TrainOptions,
                  init: Path | None, ctx: JobContext, progress) -> None:
        args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                "-m", "model.adain.train", "--content-dir", str(content), "--style-dir", str(style), "--out", str(out),
                "--options", json.dumps(asdict(options)), "--device", self.config.device,
                "--precision", self.config.precision]
        args += ["--vgg", self._encoder_spec()]
        if init is not None:
            args += ["--init-from", str(init)]
        def on_line(line: str) -> None:
            if line.startswith('{"progress"'):
                progress(TrainProgress(**json.loads(line)["progress"]))

        run_child(args, on_line, ctx.should_stop, name="torchrun")


def run_child(args: list[str], on_line: Callable[[str], None], should_stop: Callable[[], bool], *,
              name: str) -> None:
    """Runs ``args`` at the lowest CPU priority in its own process group, passing each stdout line to ``on_line``.

    stderr is drained by a thread as it comes (a chatty child would otherwise fill the pipe and block); its last
    lines go into the error when the child fails. The priority comes from ``nice`` in the argv, not a
    ``preexec_fn``, which is unsafe in a threaded process (the server is one).
    """
    nice = shutil.which("nice")
    argv = [nice, "-n", str(CHILD_NICENESS), *args] if nice else args
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    if not nice:  # no nice(1): lower the group after the start (its first children may keep normal priority)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PGRP, proc.pid, CHILD_NICENESS)
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    drain = threading.Thread(target=_drain, args=(proc.stderr, tail, name), name=f"{name}-stderr", daemon=True)
    drain.start()
    try:
        for line in proc.stdout:
            if should_stop():
                raise Cancelled(f"{name} stopped")
            on_line(line)
        if proc.wait() != 0:
            drain.join(10)
            raise RuntimeError(f"{name} exited with {proc.returncode}: {''.join(tail)[-1000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(30)
        drain.join(10)


def _drain(stream: IO[str], tail: deque[str], name: str) -> None:
    for line in stream:
        tail.append(line)
        log.debug("%s: %s", name, line.rstrip())
