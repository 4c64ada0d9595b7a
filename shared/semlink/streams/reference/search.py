"""Scale x quality search for the standard codecs: the baselines' rate control.

Per codec, per candidate scale, a bisection on the quality knob finds the best quality
that fits; the best-PSNR result (after upsampling to full size) wins, and a fill step
nudges its scale up while it still fits. ``packed`` counts the layer payload (containers
and parameter sets stripped); otherwise whole standard files, as a baseline sends them.
lite's own VVC rate control does not search: see ``ratecontrol``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from semlink.imaging import psnr, resize
from semlink.streams.reference.base import (
    MAX_SMALL_BPP,
    SCALES,
    Candidate,
    ReferenceCodec,
    small_size,
)
from semlink.streams.reference.registry import CLASSICAL, CODECS


def search(
    image: NDArray[np.uint8],
    max_bytes: int,
    *,
    codecs: Iterable[ReferenceCodec] = CLASSICAL,
    scales: Sequence[int] = SCALES,
    packed: bool = True,
    fill: float = 0.97,
) -> Candidate | None:
    """Best-PSNR candidate of at most ``max_bytes``; None if nothing fits.

    ``packed`` counts the layer payload (container deflated: what the reference layer
    carries, framing not included); otherwise whole files, as a classical codec would send
    them. When the winner leaves more than ``1 - fill`` of the budget unused, its scale is
    nudged up while it still fits.
    """
    codecs = tuple(codecs)
    searching = _Search(image, max_bytes, packed)
    # The codec libraries release the GIL while they code: one thread per codec.
    with ThreadPoolExecutor(max_workers=min(len(codecs), os.cpu_count() or 1)) as pool:
        found = pool.map(lambda codec: searching.best_of_codec(codec, scales), codecs)
        results = [c for c in found if c is not None]
    best = max(results, key=lambda c: c.psnr, default=None)
    if best is None or best.size >= fill * max_bytes:
        return best
    return searching.filled(best, fill)


class _Search:
    """One image's search within ``max_bytes`` (payload or whole file, as ``packed`` says)."""

    def __init__(self, image: NDArray[np.uint8], max_bytes: int, packed: bool) -> None:
        self.image, self.max_bytes, self.packed = image, max_bytes, packed
        self.height, self.width = image.shape[:2]

    def cost(self, codec: ReferenceCodec, k: int, data: bytes) -> int:
        """The bytes ``data`` costs: its layer payload, or the whole file."""
        if not self.packed:
            return len(data)
        return len(CODECS[codec].pack(k, data, self.width, self.height))

    def evaluate(self, codec: ReferenceCodec, k: int, quality: int, data: bytes) -> Candidate:
        """The candidate of ``data`` with its full-size reconstruction and PSNR."""
        width, height = self.width, self.height
        recon = resize(CODECS[codec].decode(data, small_size(width, height, k)), width, height)
        cost = self.cost(codec, k, data)
        return Candidate(codec, k, quality, data, cost, psnr(recon, self.image), recon)

    def best_of_codec(self, codec: ReferenceCodec, scales: Sequence[int]) -> Candidate | None:
        """``codec``'s best-PSNR candidate: at each scale, the largest quality that fits."""
        spec = CODECS[codec]
        best: Candidate | None = None
        floor = spec.qualities[0]
        for k in sorted(scales, reverse=True):
            sw, sh = small_size(self.width, self.height, k)
            if not spec.min_bpp <= 8 * self.max_bytes / (sw * sh) <= MAX_SMALL_BPP:
                continue
            small = resize(self.image, sw, sh)
            # Largest quality that fits. Smaller pictures fit at least the quality that the
            # previous (larger) scale fitted, so the search starts from there.
            lo, hi = floor, spec.qualities[1]
            fitting: tuple[int, bytes] | None = None
            while lo <= hi:
                q = (lo + hi) // 2
                data = spec.encode(small, q)
                if self.cost(codec, k, data) <= self.max_bytes:
                    fitting, lo = (q, data), q + 1
                else:
                    hi = q - 1
            if fitting is None:
                continue
            floor = fitting[0]
            candidate = self.evaluate(codec, k, *fitting)
            if best is None or candidate.psnr > best.psnr:
                best = candidate
        return best

    def filled(self, best: Candidate, fill: float) -> Candidate:
        """Fill the budget: codecs step in coarse byte increments, so for the winner's
        quality and the nearest qualities that really change the bitstream (several
        quality values map to one quantizer in x265/libaom), find the largest scale that
        still fits, and keep the best of those that fill the budget unless filling would
        cost real quality."""
        neighbours = (self._next_distinct(best, -1), self._next_distinct(best, 1))
        qualities = [best.quality, *(q for q in neighbours if q is not None)]
        low, high = max(1, int(best.k * 0.7)), min(255, int(best.k * 1.4) + 1)
        options = [self._largest_fitting(best.codec, q, low, high) for q in qualities]
        found = [best, *(c for c in options if c is not None)]
        full = [c for c in found if c.size >= fill * self.max_bytes]
        if full and max(c.psnr for c in full) >= best.psnr - 0.15:
            return max(full, key=lambda c: c.psnr)
        return max(found, key=lambda c: c.psnr)  # the codec cannot fill it: best quality

    def _next_distinct(self, best: Candidate, step: int) -> int | None:
        """The nearest quality beyond ``best``'s, ``step`` by step, whose stream differs."""
        spec = CODECS[best.codec]
        small = resize(self.image, *small_size(self.width, self.height, best.k))
        q = best.quality + step
        while spec.qualities[0] <= q <= spec.qualities[1] and abs(q - best.quality) <= 10:
            if spec.encode(small, q) != best.data:
                return q
            q += step
        return None

    def _largest_fitting(
        self, codec: ReferenceCodec, quality: int, lo: int, hi: int
    ) -> Candidate | None:
        """The largest scale in [``lo``, ``hi``] at which ``quality`` still fits."""

        def fits(k: int) -> bytes | None:
            small = resize(self.image, *small_size(self.width, self.height, k))
            data = CODECS[codec].encode(small, quality)
            return data if self.cost(codec, k, data) <= self.max_bytes else None

        found: tuple[int, bytes] | None = None
        while lo <= hi:
            k = (lo + hi) // 2
            data = fits(k)
            if data is not None:
                found, lo = (k, data), k + 1
            else:
                hi = k - 1
        if found is None:
            return None
        # Size is not monotonic in scale (coding-unit alignment): look a little further.
        for k in range(found[0] + 1, min(255, found[0] + 4) + 1):
            data = fits(k)
            if data is not None:
                found = (k, data)
        return self.evaluate(codec, found[0], quality, found[1])
