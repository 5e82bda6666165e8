"""The Magenta family: the bundled arbitrary-style network of Ghiasi et al. (BMVC 2017), run by ONNX Runtime.

``graphs`` holds the bundled files' provenance, pins and layouts; ``engine`` the two networks and the operations on
style vectors (blend, alpha interpolation, colour preservation).
"""

from model.magenta.engine import MagentaEngine
from model.magenta.graphs import PREDICT, TRANSFORM, BundledGraph

__all__ = ["PREDICT", "TRANSFORM", "BundledGraph", "MagentaEngine"]
