"""NIQE (Mittal et al., 2013): a no-reference naturalness score; lower is more natural.

Follows BasicSR's ``calculate_niqe`` with its pristine-model parameters
(``niqe/niqe_pris_params.npz`` in the weights directory), on the Y channel, 96x96
blocks, two scales. The half-scale image uses Pillow's antialiased bicubic instead
of MATLAB's ``imresize``; scores agree with BasicSR to about 0.1.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy.ndimage import convolve
from scipy.special import gamma

from semlink.config import settings

_BLOCK = 96
_GAM = np.arange(0.2, 10.001, 0.001)
_R_GAM = np.square(gamma(2 / _GAM)) / (gamma(1 / _GAM) * gamma(3 / _GAM))


class MissingWeightsError(FileNotFoundError):
    """A weight or parameter file the caller asked for is not in the weights directory."""


@lru_cache(maxsize=4)
def _params(path: Path) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    if not path.exists():
        raise MissingWeightsError(
            f"NIQE parameters not found at {path}; set SEMLINK_WEIGHTS_DIR to a directory "
            f"holding niqe/niqe_pris_params.npz"
        )
    with np.load(path) as data:
        return data["mu_pris_param"], data["cov_pris_param"], data["gaussian_window"]


def _aggd(block: NDArray[np.float64]) -> tuple[float, float, float]:
    block = block.ravel()
    left = block[block < 0]
    right = block[block > 0]
    left_std = np.sqrt(np.mean(left**2)) if left.size else 1e-6
    right_std = np.sqrt(np.mean(right**2)) if right.size else 1e-6
    gammahat = left_std / right_std
    rhat = np.mean(np.abs(block)) ** 2 / max(np.mean(block**2), 1e-12)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = _GAM[np.argmin((_R_GAM - rhatnorm) ** 2)]
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return float(alpha), float(left_std * scale), float(right_std * scale)


def _features(block: NDArray[np.float64]) -> list[float]:
    alpha, beta_l, beta_r = _aggd(block)
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, beta_l, beta_r = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (beta_r - beta_l) * gamma(2 / alpha) / gamma(1 / alpha)
        feats += [alpha, mean, beta_l, beta_r]
    return feats


def niqe(image: NDArray[np.uint8], params_path: Path | None = None) -> float:
    """NIQE of an RGB uint8 image (at least 192x192 pixels); lower is better."""
    path = params_path or settings().weights_dir / "niqe" / "niqe_pris_params.npz"
    mu_pris, cov_pris, window = _params(path)
    rgb = image.astype(np.float64)
    y = np.round(
        16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    )
    h, w = y.shape
    nh, nw = h // _BLOCK, w // _BLOCK
    if nh < 2 or nw < 2:
        return float("nan")
    img = y[: nh * _BLOCK, : nw * _BLOCK]
    per_scale = []
    for scale in (1, 2):
        mu = convolve(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(img * img, window, mode="nearest") - mu * mu))
        normalized = (img - mu) / (sigma + 1)
        size = _BLOCK // scale
        per_scale.append(
            np.array(
                [
                    _features(normalized[i * size : (i + 1) * size, j * size : (j + 1) * size])
                    for j in range(nw)
                    for i in range(nh)
                ]
            )
        )
        if scale == 1:
            half = Image.fromarray(img.astype(np.float32), mode="F").resize(
                (img.shape[1] // 2, img.shape[0] // 2), Image.Resampling.BICUBIC
            )
            img = np.asarray(half, dtype=np.float64)
    dist = np.concatenate(per_scale, axis=1)
    mu_dist = np.nanmean(dist, axis=0)
    cov_dist = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    diff = mu_pris - mu_dist
    invcov = np.linalg.pinv((cov_pris + cov_dist) / 2)
    return float(np.sqrt(diff @ invcov @ diff.T).squeeze())
