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

    ``packed`` counts the stream payload (container deflated); otherwise whole files, as
    a classical codec would send them. When the winner leaves more than ``1 - fill`` of the
    budget unused, its scale is nudged up while it still fits.
    """
    height, width = image.shape[:2]
    codecs = tuple(codecs)

    def cost(codec: ReferenceCodec, k: int, data: bytes) -> int:
        return len(CODECS[codec].pack(k, data, width, height)) if packed else len(data)

    def evaluate(codec: ReferenceCodec, k: int, quality: int, data: bytes) -> Candidate:
        small = CODECS[codec].decode(data, small_size(width, height, k))
        recon = resize(small, width, height)
        return Candidate(codec, k, quality, data, cost(codec, k, data), psnr(recon, image), recon)

    def best_of_codec(codec: ReferenceCodec) -> Candidate | None:
        spec = CODECS[codec]
        best: Candidate | None = None
        floor = spec.qualities[0]
        for k in sorted(scales, reverse=True):
            sw, sh = small_size(width, height, k)
            if not spec.min_bpp <= 8 * max_bytes / (sw * sh) <= MAX_SMALL_BPP:
                continue
            small = resize(image, sw, sh)
            # Largest quality that fits. Smaller pictures fit at least the quality that the
            # previous (larger) scale fitted, so the search starts from there.
            lo, hi = floor, spec.qualities[1]
            fitting: tuple[int, bytes] | None = None
            while lo <= hi:
                q = (lo + hi) // 2
                data = spec.encode(small, q)
                if cost(codec, k, data) <= max_bytes:
                    fitting, lo = (q, data), q + 1
                else:
                    hi = q - 1
            if fitting is None:
                continue
            floor = fitting[0]
            candidate = evaluate(codec, k, *fitting)
            if best is None or candidate.psnr > best.psnr:
                best = candidate
        return best

    # The codec libraries release the GIL while they code: one thread per codec.
    with ThreadPoolExecutor(max_workers=min(len(list(codecs)), os.cpu_count() or 1)) as pool:
        results = [c for c in pool.map(best_of_codec, codecs) if c is not None]
    best = max(results, key=lambda c: c.psnr, default=None)
    if best is None or best.size >= fill * max_bytes:
        return best
    # Fill the budget: codecs step in coarse byte increments, so for the winner's quality
    # and the nearest qualities that really change the bitstream (several quality values
    # map to one quantizer in x265/libaom), find the largest scale that still fits, and
    # keep the best of those that fill the budget unless filling would cost real quality.
    spec = CODECS[best.codec]
    small_best = resize(image, *small_size(width, height, best.k))

    def next_distinct(step: int) -> int | None:
        q = best.quality + step
        while spec.qualities[0] <= q <= spec.qualities[1] and abs(q - best.quality) <= 10:
            if spec.encode(small_best, q) != best.data:
                return q
            q += step
        return None

    def largest_fitting(quality: int, lo: int, hi: int) -> Candidate | None:
        def fits(k: int) -> bytes | None:
            data = spec.encode(resize(image, *small_size(width, height, k)), quality)
            return data if cost(best.codec, k, data) <= max_bytes else None

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
        return evaluate(best.codec, found[0], quality, found[1])

    qualities = [best.quality, *(q for q in (next_distinct(-1), next_distinct(1)) if q is not None)]
    options = [
        largest_fitting(q, max(1, int(best.k * 0.7)), min(255, int(best.k * 1.4) + 1))
        for q in qualities
    ]
    found = [best, *(c for c in options if c is not None)]
    full = [c for c in found if c.size >= fill * max_bytes]
    if full and max(c.psnr for c in full) >= best.psnr - 0.15:
        return max(full, key=lambda c: c.psnr)
    return max(found, key=lambda c: c.psnr)  # the codec cannot fill it: best quality
