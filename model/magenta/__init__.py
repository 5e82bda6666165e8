"""The Magenta family: the bundled arbitrary-style network of Ghiasi et al. (BMVC 2017), run by ONNX Runtime.

``graphs`` holds the bundled files' provenance, pins and layouts; ``engine`` the two networks and the operations on
style vectors (blend, alpha interpolation, colour preservation); ``model`` the :class:`model.family.StyleModel`.
"""

from model.magenta.engine import MagentaEngine
from model.magenta.graphs import PREDICT, TRANSFORM, BundledGraph
from model.magenta.model import CAPABILITIES, FAMILY, MagentaModel, magenta_info

__all__ = ["CAPABILITIES", "FAMILY", "PREDICT", "TRANSFORM", "BundledGraph", "MagentaEngine", "MagentaModel",
           "magenta_info"]
