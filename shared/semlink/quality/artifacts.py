"""Artifacts a restorer may print on its own: energy at a fixed pixel period.

A network that works on a coarse grid (space-to-depth by 4, an H/8 latent) can leave a
pattern that repeats every 4 or 8 pixels: dots over smooth areas. Such a pattern has its
spectrum on the lattice of frequencies that are multiples of 1/period; a natural picture
has little energy there. :func:`periodic_energy` is that lattice's share of the block's
AC energy (Hann-windowed), to compare with the original's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def luma(image: NDArray[np.uint8]) -> NDArray[np.float64]:
    """BT.601 luma of an RGB image, as floats in [0, 255]."""
    rgb = image.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def periodic_energy(block: NDArray[np.floating], period: int) -> float:
    """Share of ``block``'s AC spectral energy on the frequencies of a ``period``-pixel
    pattern (multiples of side/period in both directions, DC excluded). Both sides must be
    multiples of ``period``."""
    rows, cols = block.shape
    if rows % period or cols % period:
        raise ValueError(f"block {rows}x{cols} is not a multiple of the period {period}")
    # A Hann window: the block's edges do not wrap around into a step, whose leakage
    # lies along the axes, right on the lattice.
    window = np.outer(np.hanning(rows), np.hanning(cols))
    centred = block - (block * window).sum() / window.sum()
    spectrum = np.abs(np.fft.fft2(centred * window)) ** 2
    spectrum[0, 0] = 0.0
    total = float(spectrum.sum())
    if total == 0.0:
        return 0.0
    lattice = spectrum[:: rows // period, :: cols // period]
    return float(lattice.sum()) / total


def smoothest_block(image: NDArray[np.uint8], size: int, step: int = 8) -> tuple[int, int]:
    """(top, left) of the ``size`` x ``size`` block with the least gradient energy (luma),
    searched on a ``step``-pixel grid: where a restorer's own patterns show most.

    Blocks with clipped pixels (over 1% with luma at 0-1 or 254-255) are passed over
    while any other block exists: a clipped area is flat, not smooth, so the share of its
    (next to no) AC energy that sits at one period means nothing: on a BSDS500 photo's
    blown-out sky, a sub-level ripple (254.4-255) made that share 0.013 against the
    original's 2e-7, invisible on any screen."""
    y = luma(image)
    gy, gx = np.diff(y, axis=0)[:, :-1], np.diff(y, axis=1)[:-1, :]
    energy = _integral(gx**2 + gy**2)
    clipped = _integral(((y <= 1) | (y >= 254))[:-1, :-1].astype(np.float64))
    best, where = (True, np.inf), (0, 0)
    for top in range(0, energy.shape[0] - size, step):
        for left in range(0, energy.shape[1] - size, step):
            flat = _box(clipped, top, left, size) > 0.01 * size * size
            key = (bool(flat), _box(energy, top, left, size))
            if key < best:
                best, where = key, (top, left)
    return where


def busiest_block(image: NDArray[np.uint8], size: int, step: int = 8) -> tuple[int, int]:
    """(top, left) of the ``size`` x ``size`` block with the most gradient energy (luma) on
    a ``step``-pixel grid: hair, foliage, fabric, text, where a low-rate codec smears
    what a perceptual decoder has to invent."""
    y = luma(image)
    gy, gx = np.diff(y, axis=0)[:, :-1], np.diff(y, axis=1)[:-1, :]
    energy = _integral(gx**2 + gy**2)
    blocks = [
        (_box(energy, top, left, size), (top, left))
        for top in range(0, max(1, energy.shape[0] - size), step)
        for left in range(0, max(1, energy.shape[1] - size), step)
    ]
    return max(blocks)[1]


def _integral(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Summed-area table with a zero first row and column."""
    return np.pad(values.cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def _box(table: NDArray[np.float64], top: int, left: int, size: int) -> float:
    """Sum of the ``size`` x ``size`` block at (top, left) from its summed-area table."""
    b, r = top + size, left + size
    return float(table[b, r] - table[top, r] - table[b, left] + table[top, left])
