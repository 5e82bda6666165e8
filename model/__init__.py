"""Style transfer in pure PyTorch: the families (``adain``, ``gatys``, ``magenta``) behind one seam
(:mod:`model.family`), their networks, weights and options. Knows nothing of gRPC."""

from model.adain.stylizer import AdaINModel
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
from model.family import (
    BatchItem,
    Capabilities,
    ColorMode,
    ModelInfo,
    StyleCode,
    StyleModel,
    StyleSource,
    StyleSpec,
    StylizeOptions,
)

__all__ = [
    "AdaINModel",
    "BatchItem",
    "Cancelled",
    "Capabilities",
    "ColorMode",
    "IncompatibleModelError",
    "InvalidImageError",
    "InvalidOptionError",
    "ModelInfo",
    "StyleCode",
    "StyleModel",
    "StyleSource",
    "StyleSpec",
    "StylizeOptions",
    "WeightsError",
    "WeightsIntegrityError",
    "WeightsLayoutError",
    "WeightsNotFoundError",
]
