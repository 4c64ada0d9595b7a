"""Resampling shared by the reference search, the decoders and the reports."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def resize(image: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """Lanczos-3 resampling to ``width`` x ``height`` (uint8 RGB in, uint8 RGB out)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))
