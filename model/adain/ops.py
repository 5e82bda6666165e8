"""Adaptive instance normalisation with the reference implementation's exact statistics.

The reference (naoto0804/pytorch-AdaIN, ``function.py``) computes the per-channel standard deviation as
``sqrt(var + eps)`` with the *unbiased* variance and ``eps = 1e-5``. Matching these details is what makes outputs
agree to the 8-bit level with the official weights. Colour preservation (shared by every family) is in
:mod:`model.color`.
"""

from __future__ import annotations

import torch

__all__ = ["EPS", "adain", "calc_mean_std", "masked_mean_std"]

EPS = 1e-5


def calc_mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) -> per-channel mean and ``sqrt(unbiased var + eps)``, each (N, C, 1, 1)."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)
    mean = flat.mean(dim=2).view(n, c, 1, 1)
    return mean, std


def masked_mean_std(feat: torch.Tensor, mask: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Statistics of the region a soft mask (N, 1, H, W) in [0, 1] covers.

    With a 0/1 mask this is exactly :func:`calc_mean_std` of the covered pixels (unbiased variance): the weighted
    variance divides by ``sum(mask) - 1``, the soft generalisation of Bessel's correction.
    """
    weight = mask.sum(dim=(2, 3), keepdim=True)
    mean = (feat * mask).sum(dim=(2, 3), keepdim=True) / weight.clamp_min(eps)
    var = (mask * (feat - mean) ** 2).sum(dim=(2, 3), keepdim=True) / (weight - 1).clamp_min(eps)
    return mean, (var + eps).sqrt()


def adain(
    content: torch.Tensor,
    style_mean: torch.Tensor,
    style_std: torch.Tensor,
    content_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Re-normalises content features to the style's per-channel mean and std (the paper's eq. 8).

    ``content_stats`` overrides the content statistics (regional AdaIN uses the statistics of the masked region).
    """
    mean, std = content_stats if content_stats is not None else calc_mean_std(content)
    return (content - mean) / std * style_std + style_mean
