"""Shared fixtures: one random-weight model per session."""

from __future__ import annotations

import pytest

from model.adain.stylizer import AdaINModel


@pytest.fixture(scope="session")
def random_model() -> AdaINModel:
    return AdaINModel.random(seed=0, device="cpu")
