"""What the sedic bench's parts share: the photo, parameter counts, peak RSS, weights read."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
BSDS = REPO.parent / "shared" / "data" / "train" / "bsds500" / "images" / "test" / "100007.jpg"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def photo(size: int) -> np.ndarray:
    """A BSDS500 photo (test split), centre-cropped square and resized to ``size``; without
    BSDS500, scikit-image's astronaut."""
    from PIL import Image

    if BSDS.exists():
        image = Image.open(BSDS).convert("RGB")
    else:
        import skimage.data

        image = Image.fromarray(skimage.data.astronaut())
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))


def count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def touch(*modules: Any) -> None:
    """Read every weight once (loaders may map files lazily)."""
    import torch

    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                float(p.float().sum())
