"""How large an image the models are given by default: the bounds the server's ``--max-image-pixels`` and
``--max-style-pixels`` start from, and the ones the tools (``python -m model.export``) apply as they are.

Plain numbers, free of torch: the server's configuration reads them before it starts torch.
"""

from __future__ import annotations

__all__ = ["MAX_IMAGE_PIXELS", "MAX_STYLE_PIXELS"]

#: Largest decoded image (width x height), checked from its header before any pixel is decoded: 16 MP = 4096x4096.
MAX_IMAGE_PIXELS = 16_777_216
#: Largest style image as encoded, after resizing to the style size (width x height): styles are encoded whole, which
#: takes about 0.5 GB of memory per megapixel.
MAX_STYLE_PIXELS = 2_097_152
