"""The AdaIN family (Huang & Belongie, ICCV 2017): VGG19 encoder to relu4_1, AdaIN, a trained decoder.

``ops`` holds the statistics, ``fast`` and ``tiling`` the inference rewrites, ``stylizer`` the model (a
:class:`model.family.StyleModel` whose style code is the relu4_1 mean/std), ``train`` the decoder's training loop
(``python -m model.adain.train``).
"""

from model.adain.stylizer import CAPABILITIES, FAMILY, AdaINModel, adain_info

__all__ = ["CAPABILITIES", "FAMILY", "AdaINModel", "adain_info"]
