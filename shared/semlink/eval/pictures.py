"""The full-size pictures an evaluation compares: a standard codec's (its whole file,
downscale search, cached) and the gallery's crops of them side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from semlink.eval.cache import Baseline
from semlink.eval.cache import baseline as baseline_search
from semlink.imaging import resize
from semlink.quality.artifacts import busiest_block, smoothest_block
from semlink.streams.reference import ReferenceCodec, decode_file, small_size

CROP_METHODS = ("original", "vvc", "lite_r0", "lite_r1")
"""The gallery's 2x crops of a textured and of a smooth area, left to right."""


def crops(
    pictures: Sequence[NDArray[np.uint8]], size: int = 96, smooth: bool = False
) -> NDArray[np.uint8]:
    """The ``size`` x ``size`` area of the first picture (the original) with the most
    texture (or, ``smooth``, the least), cut from every picture, enlarged 2x (nearest: no
    resampling hides a pattern), side by side."""
    size = min(size, pictures[0].shape[0] - 1, pictures[0].shape[1] - 1)  # tiny pictures
    top, left = (smoothest_block if smooth else busiest_block)(pictures[0], size)
    tiles = [
        np.repeat(np.repeat(p[top : top + size, left : left + size], 2, 0), 2, 1) for p in pictures
    ]
    gap = np.full((2 * size, 4, 3), 255, np.uint8)
    return np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)


def standard_baseline(
    image: NDArray[np.uint8], budget: int, codec: ReferenceCodec, cache: Path
) -> NDArray[np.uint8] | None:
    """The full-size picture a standard ``codec`` sender gets within ``budget`` bytes (its
    whole file, downscale search, as in the evaluation's baselines); searches cached in
    ``cache`` (:mod:`semlink.eval.cache`). None when nothing fits."""
    result, _ = baseline_search(image, budget, codec, cache)
    return None if result is None else reconstruction(image, codec, result)


def reconstruction(
    image: NDArray[np.uint8], codec: ReferenceCodec, result: Baseline
) -> NDArray[np.uint8]:
    """One baseline's full-size picture, decoded from its file."""
    height, width = image.shape[:2]
    return resize(
        decode_file(codec, result.data, small_size(width, height, result.k)), width, height
    )
