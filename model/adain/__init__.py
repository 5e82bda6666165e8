"""The AdaIN family (Huang & Belongie, ICCV 2017): VGG19 encoder to relu4_1, AdaIN, a trained decoder.

``declaration`` is what the server reads (options, defaults, trained models); ``ops`` holds the statistics, ``fast``
and ``tiling`` the inference rewrites, ``stylizer`` the model (a :class:`model.family.StyleModel` whose style code is
the relu4_1 mean/std), ``train`` the decoder's training loop (``python -m model.adain.train``). Names are imported on
first use, so the declaration is read without starting torch.
"""

from __future__ import annotations

from model.lazy import lazy_exports

_EXPORTS = {"CAPABILITIES": "model.adain.stylizer", "FAMILY": "model.adain.stylizer",
            "AdaINModel": "model.adain.stylizer", "adain_info": "model.adain.stylizer",
            "calc_mean_std": "model.adain.ops", "DECLARATION": "model.adain.declaration"}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
