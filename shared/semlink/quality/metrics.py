"""Full-reference image quality metrics that need no downloaded weights."""

from __future__ import annotations

import math

import numpy as np
import piq
import torch
from numpy.typing import NDArray

from semlink.quality.niqe import MissingWeightsError, niqe

_MS_SSIM_MIN_SIDE = 161  # five scales of an 11-pixel window


def _tensor(image: NDArray[np.uint8]) -> torch.Tensor:
    return (
        torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float()
        / 255.0
    )


def psnr(reference: NDArray[np.uint8], image: NDArray[np.uint8]) -> float:
    """PSNR in dB over RGB (8-bit peak)."""
    mse = float(np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def all_metrics(
    reference: NDArray[np.uint8], image: NDArray[np.uint8], *, with_niqe: bool = True
) -> dict[str, float]:
    """PSNR, MS-SSIM, HaarPSI, GMSD (lower is better) and NIQE (lower is better)."""
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
    return out
