"""The Magenta family: the bundled arbitrary-style network of Ghiasi et al. (BMVC 2017), run by ONNX Runtime.

``declaration`` is what the server reads (defaults, how the model is built); ``graphs`` holds the bundled files'
pins and layouts; ``engine`` the two networks and the operations on style vectors (blend, alpha interpolation, colour
preservation); ``model`` the :class:`model.family.StyleModel`. Names are imported on first use, so the declaration is
read without starting torch or ONNX Runtime.
"""

from __future__ import annotations

from model.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("CAPABILITIES", "FAMILY", "MagentaModel", "magenta_info"), "model.magenta.model"),
    **dict.fromkeys(("PREDICT", "TRANSFORM", "BundledGraph"), "model.magenta.graphs"),
    "MagentaEngine": "model.magenta.engine",
    "DECLARATION": "model.magenta.declaration",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
