"""AdaIN style transfer in pure PyTorch: networks, weights, options and the stylizer. Knows nothing of gRPC."""

from model.adain.stylizer import AdaINModel, ColorMode, ModelInfo, StyleSource, StyleStats, StylizeOptions
from model.errors import (
    Cancelled,
    IncompatibleModelError,
    InvalidImageError,
    InvalidOptionError,
    WeightsError,
    WeightsIntegrityError,
    WeightsLayoutError,
    WeightsNotFoundError,
)

__all__ = [
    "AdaINModel",
    "Cancelled",
    "ColorMode",
    "IncompatibleModelError",
    "InvalidImageError",
    "InvalidOptionError",
    "ModelInfo",
    "StyleSource",
    "StyleStats",
    "StylizeOptions",
    "WeightsError",
    "WeightsIntegrityError",
    "WeightsLayoutError",
    "WeightsNotFoundError",
]
