"""Decoder training on tiny generated datasets: the loss falls, checkpoints resume, DDP runs on 2 gloo processes."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.adain.stylizer import AdaINModel, adain_info
from model.adain.train import DECODER_FILE, STATE_FILE, TrainOptions, TrainProgress, train_decoder
from model.errors import Cancelled, InvalidOptionError
from model.family import StyleSource
from model.files import PREVIEW_FILE
from model.network import Decoder, Encoder
from model.weights import load_decoder_checkpoint, random_decoder_state, random_vgg_state, state_sha256
from tests.helpers import make_image

pytestmark = pytest.mark.slow  # training steps

VGG = random_vgg_state(0)
ENCODER_SHA = state_sha256(VGG)
# Random VGG features are large, so Adam needs a smaller step than the reference's 1e-4 to descend steadily.
OPTIONS = TrainOptions(iterations=24, batch_size=2, image_size=48, resize=64, lr=3e-5, checkpoint_every=12,
                       num_workers=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    for kind, offset in (("content", 0), ("style", 50)):
        (root / kind / "nested").mkdir(parents=True)
        for i in range(5):
            make_image(72, 64, seed=offset + i).save(root / kind / ("nested" if i % 2 else "") / f"{i}.png")
    (root / "content" / "broken.jpg").write_bytes(b"not a jpeg")
    make_image(12, 12).save(root / "content" / "tiny.png")
    return root


def nets() -> tuple[Encoder, Decoder]:
    encoder, decoder = Encoder(), Decoder()
    encoder.load_official(VGG)
    decoder.load_official(random_decoder_state(0))
    return encoder, decoder


def train(dataset: Path, out: Path, options: TrainOptions = OPTIONS, decoder: Decoder | None = None, **kwargs):
    encoder, fresh = nets()
    progress: list[TrainProgress] = []
    result = train_decoder(encoder, decoder or fresh, dataset / "content", dataset / "style", options, out_dir=out,
                           encoder_sha256=ENCODER_SHA, on_progress=progress.append, **kwargs)
    return result, progress


def test_loss_falls_and_checkpoints_are_written(dataset: Path, tmp_path: Path) -> None:
    result, progress = train(dataset, tmp_path)
    losses = [p.loss for p in progress]
    assert statistics.mean(losses[-5:]) < 0.5 * statistics.mean(losses[:5])
    assert [p.step for p in progress] == list(range(1, 25)) and progress[-1].skipped_images == 2
    assert set(progress[-1].losses) == {"content", "style"} and progress[-1].steps_per_second > 0
    assert result.steps == 24 and (tmp_path / DECODER_FILE).is_file() and (tmp_path / STATE_FILE).is_file()
    assert (tmp_path / PREVIEW_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _state, encoder_sha, meta = load_decoder_checkpoint(tmp_path / DECODER_FILE)
    assert encoder_sha == ENCODER_SHA and meta["steps"] == "24"


@pytest.mark.slow  # bfloat16 convolutions run tens of times slower than float32 on CPUs without native bfloat16
def test_bfloat16_autocast_follows_float32_and_keeps_the_weights_float32(dataset: Path, tmp_path: Path) -> None:
    options = TrainOptions(**{**OPTIONS.__dict__, "iterations": 2, "checkpoint_every": 2, "batch_size": 1,
                              "image_size": 32})
    _, full = train(dataset, tmp_path / "fp32", options)
    _, reduced = train(dataset, tmp_path / "bf16", options, dtype=torch.bfloat16)
    # the same first batch and weights: the first losses differ only by the arithmetic (bench.train_precision compares
    # whole curves; with random VGG weights one step already moves the decoder far)
    assert reduced[0].loss == pytest.approx(full[0].loss, rel=0.01)
    assert reduced[0].loss != full[0].loss  # the convolutions did run in bfloat16
    assert all(math.isfinite(p.loss) for p in reduced)
    state, _, _ = load_decoder_checkpoint(tmp_path / "bf16" / DECODER_FILE)
    assert {v.dtype for v in state.values()} == {torch.float32}


def test_warm_up_inverts_the_encoder_then_hands_over_to_the_adain_objective(dataset: Path, tmp_path: Path) -> None:
    options = TrainOptions(**{**OPTIONS.__dict__, "iterations": 16, "warmup_steps": 10, "pixel_weight": 5.0})
    _, progress = train(dataset, tmp_path, options)
    warm, adain = progress[:10], progress[10:]
    assert all(set(p.losses) == {"content", "pixel"} and p.losses["pixel"] > 0 for p in warm)
    assert all(set(p.losses) == {"content", "style"} and p.losses["style"] > 0 for p in adain)
    assert all(p.loss == pytest.approx(sum(p.losses.values()), rel=1e-5) for p in progress)
    # the pixel term is the decoded content's squared error, weighted: it falls as the decoder learns to invert
    assert statistics.mean(p.losses["pixel"] for p in warm[-3:]) < statistics.mean(p.losses["pixel"] for p in warm[:3])
    with pytest.raises(InvalidOptionError, match="warmup_steps"):
        TrainOptions(warmup_steps=-1).validate()


def test_resume_continues_step_count_and_history(dataset: Path, tmp_path: Path) -> None:
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 14  # stops after step 14; the checkpoint is at step 12

    with pytest.raises(Cancelled):
        train(dataset, tmp_path, should_stop=stop)
    _, progress = train(dataset, tmp_path)
    assert [p.step for p in progress] == list(range(13, 25))
    saved = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert saved["step"] == 24 and len(saved["history"]) == 24


def test_trained_decoder_serves_through_the_model(dataset: Path, tmp_path: Path) -> None:
    train(dataset, tmp_path, TrainOptions(**{**OPTIONS.__dict__, "iterations": 4}))
    state, encoder_sha, _ = load_decoder_checkpoint(tmp_path / DECODER_FILE)
    base = AdaINModel.random(0, device="cpu")
    decoder = Decoder()
    decoder.load_official(state)
    info = adain_info("mine", "mine", ("", ""), ("", str(tmp_path / DECODER_FILE)))
    model = base.with_decoder(decoder, info, decoder_encoder_sha256=encoder_sha)
    assert model.stylize(make_image(40, 32, 1), [StyleSource(image=make_image(32, 32, 2))]).size == (40, 32)


def test_fine_tuning_starts_from_the_given_decoder(dataset: Path, tmp_path: Path) -> None:
    train(dataset, tmp_path / "first", TrainOptions(**{**OPTIONS.__dict__, "iterations": 4}))
    state, _, _ = load_decoder_checkpoint(tmp_path / "first" / DECODER_FILE)
    start = Decoder()
    start.load_official(state)
    snapshot = {k: v.clone() for k, v in start.layers.state_dict().items()}
    _, progress = train(dataset, tmp_path / "second", TrainOptions(**{**OPTIONS.__dict__, "iterations": 2}),
                        decoder=start)
    assert progress[0].step == 1  # a new run...
    fresh_loss = train(dataset, tmp_path / "third", TrainOptions(**{**OPTIONS.__dict__, "iterations": 1}))[1][0].loss
    assert progress[0].loss != fresh_loss  # ...that started from the fine-tuned weights, not from scratch
    assert any(not torch.equal(snapshot[k], v) for k, v in start.layers.state_dict().items())


def test_invalid_options_and_empty_folders(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="^image_size"):
        train(dataset, tmp_path, TrainOptions(image_size=1024, resize=512))
    (tmp_path / "empty").mkdir()
    encoder, decoder = nets()
    with pytest.raises(InvalidOptionError, match="^content_dir"):
        train_decoder(encoder, decoder, tmp_path / "empty", dataset / "style", OPTIONS, out_dir=tmp_path / "o",
                      encoder_sha256="x")


@pytest.mark.slow  # two training processes under torchrun
def test_two_process_ddp_run_with_gloo(dataset: Path, tmp_path: Path) -> None:
    options = json.dumps({**OPTIONS.__dict__, "iterations": 6, "checkpoint_every": 3})
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "model.adain.train",
         "--content-dir", str(dataset / "content"), "--style-dir", str(dataset / "style"), "--out",
         str(tmp_path / "ddp"), "--random-seed", "0", "--options", options, "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    steps = [line["progress"]["step"] for line in lines if "progress" in line]
    assert steps == list(range(1, 7))  # rank 0 reports once per step
    assert lines[-1]["done"]["steps"] == 6
    _, encoder_sha, meta = load_decoder_checkpoint(tmp_path / "ddp" / DECODER_FILE)
    assert encoder_sha == ENCODER_SHA and meta["steps"] == "6"
