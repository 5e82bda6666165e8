"""Builds the served models from the model families' declarations (``model/registry.py``); names no family.

Each family gets a small build context (device, precision, threads, random weights and its own options) and returns
its built-in models, or raises :class:`model.errors.Unavailable` saying what is missing and how to get it; the
server then starts with the families it has (``make run`` works on an offline machine without the official AdaIN
weights) and logs what it lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from model.declaration import Family
from model.errors import Unavailable
from model.family import StyleModel
from model.registry import FAMILIES
from server.config import Config, ConfigError

__all__ = ["build_models"]

log = logging.getLogger(__name__)


def build_models(config: Config, families: Sequence[Family] = FAMILIES) -> list[StyleModel]:
    """Every family's models that can be built here; logs each one served and each family lacking."""
    if config.random_weights:
        log.warning("RANDOM WEIGHTS (--random-weights): outputs are NOT real stylizations; development use only")
    _log_precision(config)
    models: list[StyleModel] = []
    for family in families:
        try:
            built = list(family.build(config.build_context(family)))
        except Unavailable as exc:
            log.warning("not serving %s: %s", family.name, exc)
            continue
        for model in built:
            log.info("serving %s (%s)%s", model.info.name, model.info.address,
                     " with UNTRAINED weights" if model.info.untrained else "")
            log.debug("%s weights: %s", model.info.name,
                      ", ".join(f"{role}: {source}" for role, source in model.info.provenance.items()))
        models.extend(built)
    return models


def _log_precision(config: Config) -> None:
    """Says in one line what torch models and Train jobs compute in, and why (``model.devices``); ConfigError for a
    --device/--precision pair that cannot run here."""
    from model.devices import choose_precision, select_device

    try:
        device = select_device(config.device)
        precision = choose_precision(device, config.precision)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    level = logging.WARNING if precision.slower_than_float32 else logging.INFO
    log.log(level, "torch precision %s on %s: %s", precision.name, device, precision.reason)
