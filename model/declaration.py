"""What a model family declares to the server: one :class:`Family` object per family folder.

The server reads nothing else about a family. From a declaration it derives the family's flags and
``STYLETRANSFER_*`` variables (:class:`Option`), builds its built-in models from a small :class:`BuildContext`
(never the whole server configuration), gives requests that leave an option unset the family's ``defaults``, and
finds, lists and loads the family's trained models in ``<data-dir>/models/<name>/`` (:class:`TrainedModels`). Limits
that depend on the network (the smallest image side and the like) are in each model's
:class:`~model.options.Capabilities`. ``model/registry.py`` lists the declarations; a family is its folder plus one
entry there.

This module and every ``model/<family>/declaration.py`` import neither torch nor the family's networks (the server
reads them before it starts torch); ``build`` and the trained-model functions import what they need when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.options import StylizeOptions

if TYPE_CHECKING:
    from model.family import ModelInfo, StyleModel

__all__ = ["BuildContext", "Family", "Option", "TrainedModel", "TrainedModels"]

OptionValue = str | int | float | bool


@dataclass(frozen=True)
class Option:
    """One setting of a family: the flag ``--<name with dashes>`` and the variable ``STYLETRANSFER_<NAME>``.

    The type is the default's. Names are shared with the server's own settings, so they must not collide with them
    or with another family's (the server refuses to start when they do).
    """

    name: str  # a Python identifier, e.g. "decoder"
    default: OptionValue
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def kind(self) -> type:
        return type(self.default)


@dataclass(frozen=True)
class BuildContext:
    """What a family's builder gets: where and how to run, and its own options' values (defaults filled in)."""

    device: str = "auto"  # "auto", "cpu" or "cuda"
    precision: str = "auto"  # "auto", "fp32", "fp16" or "bf16"
    threads: int = 0  # intra-op threads per inference worker; 0 lets the runtime choose
    random_weights: bool = False  # seeded random weights instead of files (development only)
    random_seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)  # this family's Option values by name


@dataclass(frozen=True)
class TrainedModel:
    """One trained model's folder as its validated ``meta.json`` describes it (the server reads and checks the file)."""

    name: str  # the folder's name, which requests use
    folder: Path
    weights: Mapping[str, str] = field(default_factory=dict)  # role -> SHA-256 recorded when it was installed
    metadata: Mapping[str, str] = field(default_factory=dict)  # free-form facts (dataset, steps, losses, ...)
    create_time: float = 0.0  # seconds since the epoch


@dataclass(frozen=True)
class TrainedModels:
    """How a family's trained models are stored and loaded: ``<data-dir>/models/<name>/`` holds ``meta.json`` (which
    names the family) and one file per role.

    ``info`` describes a model from its metadata alone (listing never reads weights); ``load`` builds it. Both receive
    the family's built-in models being served (a trained AdaIN decoder runs behind the served encoder) and raise
    :class:`~model.errors.Unavailable` or a :class:`~model.errors.WeightsError` when the model cannot be served.
    """

    files: Mapping[str, str]  # role -> file name in the folder, e.g. {"decoder": "decoder.safetensors"}
    info: Callable[[TrainedModel, Sequence[StyleModel]], ModelInfo]
    load: Callable[[TrainedModel, Sequence[StyleModel]], StyleModel]


@dataclass(frozen=True)
class Family:
    """Everything the server needs to know about a model family."""

    name: str  # ModelInfo.family of its models, e.g. "adain"
    # The family's built-in models; raises model.errors.Unavailable (what is missing, how to get it) when it has none
    # here, and the server starts without it.
    build: Callable[[BuildContext], Sequence[StyleModel]]
    options: tuple[Option, ...] = ()
    # What a request that leaves an option unset gets from this family's models (shown by ListModels).
    defaults: StylizeOptions = field(default_factory=StylizeOptions)
    trained: TrainedModels | None = None  # None: the family has no trained models
    # Checks option values together with the context before the server starts; ValueError naming the flags.
    validate: Callable[[BuildContext], None] | None = None

    def context(self, values: Mapping[str, Any], **settings: Any) -> BuildContext:
        """The build context with ``values`` (this family's given option values) over the declared defaults."""
        options = {option.name: values.get(option.name, option.default) for option in self.options}
        return BuildContext(options=options, **settings)
