"""Adaptive instance normalisation and colour transfer, with the reference implementation's exact statistics.

The reference (naoto0804/pytorch-AdaIN, ``function.py``) computes the per-channel standard deviation as
``sqrt(var + eps)`` with the *unbiased* variance and ``eps = 1e-5``; its CORAL uses the unbiased std too, adds the
identity to both covariances and takes matrix square roots by SVD. Matching these details is what makes outputs
agree to the 8-bit level with the official weights.
"""

from __future__ import annotations

import torch

__all__ = [
    "EPS",
    "adain",
    "calc_mean_std",
    "coral",
    "masked_mean_std",
    "rgb_to_yiq",
    "transfer_luminance",
    "yiq_to_rgb",
]

EPS = 1e-5

_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


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


def _mat_sqrt(x: torch.Tensor) -> torch.Tensor:
    u, d, v = torch.svd(x)
    return u @ torch.diag(d.pow(0.5)) @ v.t()


def _flat_mean_std(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    flat = image.reshape(3, -1)
    return flat, flat.mean(dim=-1, keepdim=True), flat.std(dim=-1, keepdim=True)


def coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Recolours ``source`` (3, H, W) to the colour mean and covariance of ``target`` (3, H', W') (CORAL).

    As in the reference: channels are standardised, whitened with the source covariance (+ identity) and coloured
    with the target covariance (+ identity), matrix square roots by SVD.
    """
    src, src_mean, src_std = _flat_mean_std(source.float())
    tgt, tgt_mean, tgt_std = _flat_mean_std(target.float())
    src_norm = (src - src_mean) / src_std
    tgt_norm = (tgt - tgt_mean) / tgt_std
    eye = torch.eye(3, device=source.device)
    src_cov = src_norm @ src_norm.t() + eye
    tgt_cov = tgt_norm @ tgt_norm.t() + eye
    transferred = _mat_sqrt(tgt_cov) @ (torch.inverse(_mat_sqrt(src_cov)) @ src_norm)
    return (transferred * tgt_std + tgt_mean).view(source.shape)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YIQ (Y is luminance; I and Q carry the chrominance)."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _YIQ_TO_RGB.to(image), image)


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer: the stylized image's Y with the content's I and Q (same size), in RGB."""
    styl, cont = rgb_to_yiq(stylized), rgb_to_yiq(content)
    return yiq_to_rgb(torch.cat([styl[:, :1], cont[:, 1:]], dim=1))
