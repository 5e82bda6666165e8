"""Every model family the server knows, in one list: adding a family is its folder in ``model/`` (with a
``declaration.py`` exporting its :class:`~model.declaration.Family`) plus one entry here.

The order is the order ListModels shows them in; the first model built is the default unless ``--default-model``
names another. Importing this module imports no torch (the declarations load their networks only when built).
"""

from __future__ import annotations

from model.adain.declaration import DECLARATION as ADAIN
from model.declaration import Family
from model.magenta.declaration import DECLARATION as MAGENTA
from model.presets.declaration import DECLARATION as PRESETS

__all__ = ["FAMILIES"]

FAMILIES: tuple[Family, ...] = (ADAIN, MAGENTA, PRESETS)

