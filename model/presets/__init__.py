"""The presets family: the 26 styles trained into the bundled ``multistyle26.onnx`` (Dumoulin et al., ICLR 2017).

``declaration`` is what the server reads; ``catalogue`` names the styles (ids and display names, in the network's
order); ``engine`` runs the network in ONNX Runtime and says what the graph is; ``model`` is the
:class:`model.family.StyleModel`, whose ``presets`` the server lists beside registered styles. Names are imported on
first use, so the declaration is read without starting torch or ONNX Runtime.
"""

from __future__ import annotations

from model.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("CAPABILITIES", "FAMILY", "VERSION", "PresetsModel", "presets_info"), "model.presets.model"),
    **dict.fromkeys(("CATALOGUE", "ID_PREFIX"), "model.presets.catalogue"),
    **dict.fromkeys(("MULTISTYLE26", "NUM_STYLES", "PresetsEngine"), "model.presets.engine"),
    "DECLARATION": "model.presets.declaration",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
