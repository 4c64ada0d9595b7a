"""How a VVC payload's size moves with scale and QP: the model lite's rate control
(:mod:`.ratecontrol`) predicts with, the QP it aims at, and the scales that code without
waste. A QP is counted in eighths here too (``q = 8 x QP``, :data:`STEPS`).
"""

from __future__ import annotations

import math
from functools import lru_cache

from semlink.streams.reference.base import small_size
from semlink.streams.reference.vvcps import padded_size
from semlink.streams.reference.yuv import coded_size

STEPS = 8
"""Eighth-QP steps: the rate control's QP unit (~1.7% of size each)."""
GUESS_DENSITY = 0.12
"""Bits per small pixel of the first scale the size model looks at (lite's picks: 0.03-0.3)."""
GAMMA = 1.45
BETA = 0.139
"""Log size per QP step at QP 38-60; below 38 the steps shrink (0.08 near QP 27)."""
TARGET_QP = 45
"""On 20 BSDS500 val photos at 0.03 bpp: QP 47 23.58 dB / MS-SSIM 0.7911 / HaarPSI 0.5577;
46: 23.57 / 0.7927 / 0.5598; 45: 23.55 / 0.7927 / 0.5598 with smaller pictures (less encode
time). 45 was held back while the restorer's realism-0 end was Lanczos: on one val photo it
magnified VVC's block steps at the 8-pixel period (tests/test_restorer.py's periodic-pattern
test, 1.65x the original's energy). With the fidelity network (24 val photos 20-43, restorer
at realism 0): 45 22.559 dB / 0.7840 / 0.5411, 46 22.575 / 0.7836 / 0.5400, and the pattern
test's ratio at realism 0 0.10 / 0.21 (4- / 8-pixel period; 46: 0.39 / 0.22); the size-model
fit on 80 val photos (20-99) at 0.03 bpp: median 0.50 s at 45, 0.54 s at 46, same encode
count (4.99 / 5.05)."""
SMALL_BUDGET, SMALL_BUDGET_QP = 400, 47
"""Budgets under 400 bytes aim at QP 47: their pictures are small already, and at QP 45 a
256x256 photo at 0.01 bpp (57 payload bytes) filled 85% and lost 0.1 dB at 0.03 bpp."""


def target_qp(payload_bytes: int) -> int:
    """The QP lite aims at for a layer payload of ``payload_bytes``."""
    return TARGET_QP if payload_bytes >= SMALL_BUDGET else SMALL_BUDGET_QP


MIN_QP = 0
MIN_K, MAX_K = 8, 256
MAX_WASTE = 0.02
"""Padding share of an efficient scale (:func:`efficient_scales`)."""
LAMBDA_BETA = 0.105
"""Log size per QP of lambda alone (QP fixed), measured on BSDS500 train at QP 46 over
+-1.5 QP: smaller than :data:`BETA` (a QP step also coarsens the quantizer)."""


def beta(qp: int) -> float:
    """Log size change between QP ``qp`` and ``qp + 1``."""
    return BETA if qp >= 38 else max(0.05, BETA - 0.0045 * (38 - qp))


def shift(size: float, q_from: int, q_to: int) -> float:
    """Predicted size at QP step (1/STEPS) ``q_to`` of a picture of ``size`` bytes at ``q_from``."""
    step = sum(beta(q // STEPS) for q in range(min(q_from, q_to), max(q_from, q_to))) / STEPS
    return size * math.exp(step if q_to < q_from else -step)


def q_for(size: float, q: int, target: float) -> int:
    """The finest QP step (1/STEPS) whose predicted size stays within ``target``, from ``size`` at
    ``q``."""
    r = q
    while r > MIN_QP * STEPS and shift(size, q, r - 1) <= target:
        r -= 1
    while r < 63 * STEPS and shift(size, q, r) > target:
        r += 1
    return r


def predict(size: float, k0: int, budget: int, gamma: float = GAMMA) -> tuple[float, int]:
    """(k, QP in steps of 1/STEPS) whose predicted payload is ``budget``, given the predicted
    ``size`` at ``k0`` at :func:`target_qp` and the picture's size exponent ``gamma``; k may
    pass :data:`MAX_K` (then the QP is the knob)."""
    k = k0 * (budget / size) ** (1 / gamma)
    q = target_qp(budget) * STEPS
    if k <= MAX_K:
        return k, q
    # Even the full-size picture fits at the target QP: spend the rest on quality.
    at_max = size * (MAX_K / k0) ** gamma
    return k, q_for(at_max, q, budget)


def first_scale(width: int, height: int, payload_bytes: int, factor: float = 1.0) -> int:
    """The scale (in 1/256) at which ``payload_bytes`` gives :data:`GUESS_DENSITY` bits per
    small pixel, times ``factor``, within [:data:`MIN_K`, :data:`MAX_K`]: where the size
    model first looks."""
    k = round(
        256 * math.sqrt(8 * max(0, payload_bytes) / (GUESS_DENSITY * width * height)) * factor
    )
    return min(MAX_K, max(MIN_K, k))


def steps(ratio: float) -> int:
    """Eighth-QP lambda steps that scale a payload's size by 1 / ``ratio``."""
    return round(STEPS * math.log(ratio) / LAMBDA_BETA)


def waste(width: int, height: int, k: int) -> float:
    """Share of the picture vvenc codes at scale ``k`` that is padding: it pads to a
    multiple of 8 and the decoder crops it, but its bits are spent."""
    sw, sh = small_size(width, height, k)
    pw, ph = padded_size(*coded_size(sw, sh))
    return 1 - sw * sh / (pw * ph)


@lru_cache(maxsize=64)
def efficient_scales(width: int, height: int) -> tuple[int, ...]:
    """Scales whose coded picture wastes little on padding: at most :data:`MAX_WASTE`, or
    the least within +-4% when none near does (tiny pictures). Payload size is a staircase
    over the padded size (a 218x145 picture, padded to 224x152, cost 12% more than 216x144
    on a BSDS500 photo), so lite picks among these and tunes the QP instead."""
    wastes = {k: waste(width, height, k) for k in range(MIN_K, MAX_K + 1)}
    keep = []
    for k, w in wastes.items():
        lo, hi = max(MIN_K, k - k // 25), min(MAX_K, k + k // 25)
        if w <= MAX_WASTE or w <= min(wastes[j] for j in range(lo, hi + 1)):
            keep.append(k)
    return tuple(keep)
