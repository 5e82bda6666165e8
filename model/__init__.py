"""Style transfer in pure PyTorch: the families (``adain``, ``gatys``, ``magenta``) behind one seam
(:mod:`model.family`), their networks, weights and options. Knows nothing of gRPC.

Names are imported on first use, so that the torch-free modules (the families' declarations, :mod:`model.registry`,
:mod:`model.options`, :mod:`model.errors`) can be read without starting torch.
"""

from __future__ import annotations

from model.lazy import lazy_exports

_EXPORTS = {
    "AdaINModel": "model.adain.stylizer",
    **dict.fromkeys(("Cancelled", "IncompatibleModelError", "InvalidImageError", "InvalidOptionError", "Unavailable",
                     "WeightsError", "WeightsIntegrityError", "WeightsLayoutError", "WeightsNotFoundError"),
                    "model.errors"),
    **dict.fromkeys(("BatchItem", "ModelInfo", "StyleCode", "StyleModel", "StyleSource", "StyleSpec"), "model.family"),
    **dict.fromkeys(("Capabilities", "ColorMode", "StylizeOptions"), "model.options"),
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
