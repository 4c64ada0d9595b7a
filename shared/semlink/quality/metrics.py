"""Full-reference image quality metrics that need no downloaded weights."""

from __future__ import annotations

import numpy as np
import piq
import torch
from numpy.typing import NDArray

from semlink.imaging import psnr
from semlink.quality.niqe import MissingWeightsError, niqe

_MS_SSIM_MIN_SIDE = 161  # five scales of an 11-pixel window


def _tensor(image: NDArray[np.uint8]) -> torch.Tensor:
    return (
        torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float()
        / 255.0
    )


def all_metrics(
    reference: NDArray[np.uint8],
    image: NDArray[np.uint8],
    *,
    with_niqe: bool = True,
    with_perceptual: bool = True,
) -> dict[str, float]:
    """PSNR, MS-SSIM, HaarPSI, GMSD (lower is better), NIQE (lower is better) and LPIPS
    (AlexNet, v0.1) and DISTS (both lower is better; NaN where their weights were not
    fetched, :mod:`semlink.quality.perceptual_weights`)."""
    if reference.shape != image.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {image.shape}")
    x, y = _tensor(image), _tensor(reference)
    out = {"psnr": psnr(reference, image)}
    with torch.no_grad():
        out["ms_ssim"] = (
            float(piq.multi_scale_ssim(x, y, data_range=1.0))
            if min(reference.shape[:2]) >= _MS_SSIM_MIN_SIDE
            else float("nan")
        )
        out["haarpsi"] = float(piq.haarpsi(x, y, data_range=1.0))
        out["gmsd"] = float(piq.gmsd(x, y, data_range=1.0))
    if with_niqe:
        try:
            out["niqe"] = niqe(image)
        except MissingWeightsError:
            out["niqe"] = float("nan")
    if with_perceptual:
        out.update(perceptual_metrics(reference, image))
    return out


def perceptual_metrics(reference: NDArray[np.uint8], image: NDArray[np.uint8]) -> dict[str, float]:
    """LPIPS-AlexNet and DISTS, NaN where the weights are missing."""
    from semlink.quality.perceptual import dists, lpips

    try:
        return {"lpips": lpips(reference, image), "dists": dists(reference, image)}
    except MissingWeightsError:
        return {"lpips": float("nan"), "dists": float("nan")}
