"""Colour preservation shared by every family: CORAL recolouring and luminance-only transfer (YIQ).

CORAL follows the AdaIN reference (naoto0804/pytorch-AdaIN, ``function.py``): the unbiased std, the identity added to
both covariances, matrix square roots by SVD.
"""

from __future__ import annotations

import torch

__all__ = ["coral", "rgb_to_yiq", "transfer_luminance", "yiq_to_rgb"]

_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _mat_sqrt(x: torch.Tensor) -> torch.Tensor:
    u, d, v = torch.svd(x)
    return u @ torch.diag(d.pow(0.5)) @ v.t()


def _flat_mean_std(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    flat = image.reshape(3, -1)
    # A uniform channel has std 0 (a single pixel: NaN); standardising it must give zeros, not NaN, so the std is
    # floored (departure from the reference, which divides by zero for flat images).
    std = flat.std(dim=-1, keepdim=True).nan_to_num(0.0).clamp_min(1e-5)
    return flat, flat.mean(dim=-1, keepdim=True), std


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
