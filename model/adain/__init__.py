"""The AdaIN family (Huang & Belongie, ICCV 2017): VGG19 encoder to relu4_1, AdaIN, a trained decoder.

``ops`` holds the statistics and colour functions, ``fast`` and ``tiling`` the inference rewrites, ``stylizer`` the
model, ``train`` the decoder's training loop (``python -m model.adain.train``).
"""

from model.adain.stylizer import AdaINModel, StyleStats

__all__ = ["AdaINModel", "StyleStats"]
