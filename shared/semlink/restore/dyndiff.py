"""DynDiff (SGGIC/MISC): how many diffusion steps an image needs, from cheap features.

A reference that is detailed (many edges), blurry (the codec threw detail away) or sent
at a low rate leaves more for the generative decoder to restore: it gets more steps.
Features are computed on the decoded reference, so both ends agree without side info.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


@dataclass(frozen=True)
class StepFeatures:
    edge_density: float
    """Fraction of pixels with Sobel gradient magnitude above 0.1 (of full scale)."""
    sharpness: float
    """Variance of the Laplacian of the grey image in [0, 1] units (low = blurry)."""
    bpp: float


def step_features(reference: NDArray[np.uint8], bpp: float) -> StepFeatures:
    grey = reference.astype(np.float32).mean(axis=2) / 255.0
    magnitude = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1)) / 4.0
    return StepFeatures(
        edge_density=float((magnitude > 0.1).mean()),
        sharpness=float(ndimage.laplace(grey).var()),
        bpp=bpp,
    )


MIN_STEPS, MAX_STEPS = 10, 50


def step_range(max_steps: int | None = None) -> tuple[int, int]:
    """DynDiff's (min, max) steps: (10, 50), or scaled down to at most ``max_steps``
    (``SEMLINK_SEDIC_MAX_STEPS``), never under 2 (ORAG guides the first half of the steps:
    one step would leave none guided)."""
    if max_steps is None or max_steps >= MAX_STEPS:
        return MIN_STEPS, MAX_STEPS
    top = max(2, max_steps)
    return max(2, round(top * MIN_STEPS / MAX_STEPS)), top


def choose_steps(
    reference: NDArray[np.uint8],
    bpp: float,
    min_steps: int = MIN_STEPS,
    max_steps: int = MAX_STEPS,
) -> int:
    """Steps in [min_steps, max_steps]: more for detailed, blurry or low-rate references."""
    f = step_features(reference, bpp)
    detail = min(1.0, f.edge_density / 0.25)
    blur = 1.0 - min(1.0, f.sharpness / 0.01)
    starvation = min(1.0, max(0.0, (0.1 - f.bpp) / 0.09))  # 0.01 bpp -> 1, >= 0.1 bpp -> 0
    difficulty = 0.5 * detail + 0.25 * blur + 0.25 * starvation
    return round(min_steps + difficulty * (max_steps - min_steps))
