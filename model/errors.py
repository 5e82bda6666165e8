"""Precise exceptions of the model package. The server maps each to one gRPC status code."""

from __future__ import annotations

__all__ = [
    "Cancelled",
    "IncompatibleModelError",
    "InvalidImageError",
    "InvalidOptionError",
    "Unavailable",
    "WeightsError",
    "WeightsIntegrityError",
    "WeightsLayoutError",
    "WeightsNotFoundError",
]


class InvalidOptionError(ValueError):
    """An option is out of range or of the wrong kind; ``option`` names it, e.g. ``"alpha"``, ``"styles[1].weight"``."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


class InvalidImageError(ValueError):
    """Image bytes that cannot be decoded, or whose header declares more pixels than allowed. ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Cancelled(Exception):
    """The caller's stop check returned True between two layers or two optimisation steps."""


class Unavailable(Exception):
    """A model (or a whole family) cannot be served here; the message says what is missing and how to get it."""


class WeightsError(Exception):
    """Base of all problems with weight files."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weight file is missing. The message says where to get it."""


class WeightsIntegrityError(WeightsError):
    """A weight file's hash differs from the published or pinned one."""


class WeightsLayoutError(WeightsError, ValueError):
    """A state dict's keys or shapes differ from the expected layout; the message names the file and first key."""


class IncompatibleModelError(WeightsError, ValueError):
    """A decoder was trained against a different encoder than the one it is paired with."""
