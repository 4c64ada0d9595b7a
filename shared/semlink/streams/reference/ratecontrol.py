"""lite's VVC rate control: predict scale and QP, then a few real encodes, two at a time.

A full scale x QP search costs dozens of vvenc runs per image. Instead:

1. *Probe.* Two encodes with vvenc's ``faster`` preset at :data:`TARGET_QP`, side by
   side, at the scale where the budget would give :data:`PROBE_DENSITY` bits per small
   pixel (near where lite's scales land) and :data:`PROBE_SPREAD` times larger (~0.2 s).
2. *Predict.* Stream size follows ``bytes(k, qp) = probe x RATIO x (k/k0)^GAMMA x
   exp(-BETA (qp - TARGET_QP))`` (GAMMA, RATIO measured on BSDS500 train for
   configuration 2 over the ``faster`` probe; BETA 0.139 per QP). lite codes at
   :data:`TARGET_QP` (chosen on BSDS500 val) and gets the scale from the budget; when even
   the full-size picture fits at that QP, the QP comes down instead (:func:`beta`: the
   steps shrink below QP 38).
3. *Fit.* Two encodes with the sent configuration, side by side (vvenc runs as a
   process, one per core), aimed inside the window from both sides of the prediction's
   uncertainty (~8%); while no payload fills ``fill`` of the budget without passing it,
   interpolate between the measured sizes and start the next guess as soon as an encode
   ends (both cores stay busy; the first to fill the budget stops the other; at most
   :data:`MAX_ENCODES`). Two fine knobs: the scale (1/256 steps) and the QP in quarter
   steps (:data:`STEPS`; fractional QPs scale the RD lambda, see
   :meth:`VvcCodec.encode_qp`): sizes jitter ~2% between neighbouring scales, more on
   fine textures, and QP alone moves 13% per step, so at full size the quarter steps are
   the only knob that fills the budget.

Internally a QP is counted in quarters (``q = 4 x QP``).
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import zip_longest

import numpy as np
from numpy.typing import NDArray

from semlink.imaging import psnr, resize
from semlink.streams.reference.base import Candidate, small_size
from semlink.streams.reference.vvc import VVC, Cancel, VvcCodec, payload_size

STEPS = 4
"""Quarter-QP steps: the rate control's QP unit."""
PROBE_PRESET = "faster"
PROBE_DENSITY = 0.12
PROBE_SPREAD = 1.4
"""The second probe's scale over the first's."""
"""Bits per small pixel the probe's scale is chosen for (lite's picks: 0.03-0.3)."""
GAMMA = 1.45
BETA = 0.139
"""Log size per QP step at QP 38-60; below 38 the steps shrink (0.08 near QP 27)."""
RATIO = 0.984
"""Size of configuration 2 (fast, 128x128 CTUs) over the ``faster`` probe's, mean on BSDS500
train (per image 0.91-1.02, between neighbouring scales +-2% more)."""
AIMS = (1.0, 0.955)
"""Round 1's two pictures: the predicted fill (of the budget) each is aimed at."""
TARGET_QP = 46
"""On 20 BSDS500 val photos at 0.03 bpp: QP 47 23.58 dB / MS-SSIM 0.7911 / HaarPSI 0.5577;
46: 23.57 / 0.7927 / 0.5598 with smaller pictures (less encode time); 45: 23.55 / 0.7927 /
0.5598, and at 45 one val photo's smooth area shows VVC's block steps magnified at the 8-pixel
period (tests/test_restorer.py's periodic-pattern test: 1.65x the original's energy)."""
SMALL_BUDGET, SMALL_BUDGET_QP = 400, 47
"""Budgets under 400 bytes aim at QP 47: their pictures are small already, and at QP 45 a
256x256 photo at 0.01 bpp (57 payload bytes) filled 85% and lost 0.1 dB at 0.03 bpp."""


def target_qp(max_bytes: int) -> int:
    """The QP lite aims at for a payload budget of ``max_bytes``."""
    return TARGET_QP if max_bytes >= SMALL_BUDGET else SMALL_BUDGET_QP


MIN_QP = 0
MIN_K, MAX_K = 8, 256
MAX_ENCODES = 16
PARALLEL_ENCODES = 2
_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)

Key = tuple[int, int]
"""(scale k in 1/256, QP in quarters)."""


def beta(qp: int) -> float:
    """Log size change between QP ``qp`` and ``qp + 1``."""
    return BETA if qp >= 38 else max(0.05, BETA - 0.0045 * (38 - qp))


def shift(size: float, q_from: int, q_to: int) -> float:
    """Predicted size at quarter-QP ``q_to`` of a picture of ``size`` bytes at ``q_from``."""
    step = sum(beta(q // STEPS) for q in range(min(q_from, q_to), max(q_from, q_to))) / STEPS
    return size * math.exp(step if q_to < q_from else -step)


def q_for(size: float, q: int, target: float) -> int:
    """The finest quarter-QP whose predicted size stays within ``target``, from ``size`` at
    ``q``."""
    r = q
    while r > MIN_QP * STEPS and shift(size, q, r - 1) <= target:
        r -= 1
    while r < 63 * STEPS and shift(size, q, r) > target:
        r += 1
    return r


def predict(probe_bytes: int, k0: int, budget: int, gamma: float = GAMMA) -> tuple[float, int]:
    """(k, quarter-QP) whose predicted payload is ``budget``, given the probe's size at
    ``k0`` at :func:`target_qp` and the picture's size exponent ``gamma``; k may pass
    :data:`MAX_K` (then the QP is the knob)."""
    k = k0 * (budget / (probe_bytes * RATIO)) ** (1 / gamma)
    q = target_qp(budget) * STEPS
    if k <= MAX_K:
        return k, q
    # Even the full-size picture fits at the target QP: spend the rest on quality.
    at_max = probe_bytes * RATIO * (MAX_K / k0) ** gamma
    return k, q_for(at_max, q, budget)


def fit_vvc(
    image: NDArray[np.uint8],
    max_bytes: int,
    codec: VvcCodec = VVC,
    fill: float = 0.97,
    measure: bool = True,
) -> Candidate | None:
    """The VVC candidate for ``image`` whose layer payload fills ``max_bytes``; None if the
    smallest picture at QP 63 does not fit. ``measure=False`` skips decoding the winner
    (its PSNR is then NaN and its reconstruction empty): lite's encoder needs neither."""
    height, width = image.shape[:2]
    if max_bytes < 8:
        return None
    k0 = round(256 * math.sqrt(8 * max_bytes / (PROBE_DENSITY * width * height)))
    k0 = min(MAX_K, max(MIN_K, k0))
    # Two probes side by side, at k0 and a 1.4x larger scale: this picture's own size
    # exponent (1.2 on smooth photos, 2.4 on kodim06-like fine texture) for the prediction.
    scales = sorted({k0, min(MAX_K, round(k0 * PROBE_SPREAD))})

    def probe(k: int) -> int:
        small = resize(image, *small_size(width, height, k))
        return payload_size(codec.encode_qp(small, target_qp(max_bytes), PROBE_PRESET))

    with ThreadPoolExecutor(max_workers=PARALLEL_ENCODES) as pool:
        probes = list(pool.map(probe, scales))
    gamma = GAMMA
    if len(scales) == 2:
        gamma = min(
            3.0, max(0.8, math.log(probes[1] / probes[0]) / math.log(scales[1] / scales[0]))
        )
    near = 0 if len(scales) == 1 or max_bytes < math.sqrt(probes[0] * probes[1]) else 1
    k, q = predict(probes[near], scales[near], max_bytes, gamma)

    measured: dict[Key, tuple[bytes, int]] = {}
    """Every encode that ended (filled in by the workers, in whatever order they end)."""
    tried: dict[Key, tuple[bytes, int]] = {}
    """The encodes the fit has looked at, in the order they were started."""
    cancel = Cancel()

    def fills(size: int) -> bool:
        return fill * max_bytes <= size <= max_bytes

    def attempt(key: Key) -> None:
        k, q = key
        small = resize(image, *small_size(width, height, k))
        data = codec.encode_qp(small, q / STEPS, cancel=cancel)
        size = payload_size(data)
        measured[key] = (data, size)

    # Round 1: two pictures aimed inside the window from both sides of the prediction's
    # uncertainty (the probes predict within ~8%).
    if k >= MAX_K:  # the full-size picture: the QP is the knob
        first = [(MAX_K, q), (MAX_K, min(63 * STEPS, q + 1))]
    else:
        first = [(_clamp(k * aim ** (1 / gamma)), q) for aim in AIMS]
        if first[0] == first[1]:
            first[1] = (max(MIN_K, first[0][0] - 1), q)
    target = (1 + fill) / 2 * max_bytes
    # Both cores stay busy: when an encode ends without filling the budget, the next guess
    # (from every size looked at so far) starts at once, and the first that fills the
    # budget ends the fit and stops the other. Encodes are looked at in the order they
    # started, never in the order they end, so the packet does not depend on timing.
    queue: deque[tuple[Future[None], Key]] = deque()
    started = 0
    with ThreadPoolExecutor(max_workers=PARALLEL_ENCODES) as pool:

        def launch(keys: list[Key]) -> None:
            nonlocal started
            for key in keys:
                if len(queue) >= PARALLEL_ENCODES or started >= MAX_ENCODES:
                    return
                if key not in tried and all(key != other for _, other in queue):
                    queue.append((pool.submit(attempt, key), key))
                    started += 1

        launch(first)
        try:
            while queue:
                future, key = queue.popleft()
                future.result()  # vvenc's errors reach the caller
                tried[key] = measured[key]
                if fills(tried[key][1]):
                    break
                launch(_proposals(tried, q, target))
        finally:
            cancel.set()  # stops what still runs (it ends in Cancelled, which nobody reads)
    fitting = [(s, key) for key, (_, s) in tried.items() if s <= max_bytes]
    if not fitting:
        return fit_vvc_smallest(image, max_bytes, codec)
    size, (k, q) = max(fitting)
    data = tried[(k, q)][0]
    quality = 63 - math.ceil(q / STEPS)
    if not measure:
        return Candidate(codec.id, k, quality, data, size, math.nan, _EMPTY)
    recon = resize(codec.decode(data, small_size(width, height, k)), width, height)
    return Candidate(codec.id, k, quality, data, size, psnr(recon, image), recon)


def _clamp(k: float) -> int:
    return min(MAX_K, max(MIN_K, round(k)))


def _proposals(tried: dict[Key, tuple[bytes, int]], q: int, target: float) -> list[Key]:
    """Untried (k, quarter-QP) predicted to land on ``target``, best guesses first.

    Per QP, the scale comes from interpolating log size over log scale between the
    measured points that bracket the target. Points measured at that QP come first: the
    size change per QP step varies between pictures (x1.15 is typical, x1.8 was seen on a
    fine texture at full size), so points moved from another QP by :func:`shift` only stand
    in when a QP has fewer than two of its own. A wide bracket also gets a second guess a
    third of the way (in log scale) towards its far end, for curves the interpolation
    under- or overshoots. QPs whose own points bracket the target are tried first. When
    the scale is out of range (the full-size picture is too small for the budget, or the
    smallest too big), the QP moves to where the range's end lands on the target instead.
    Sizes jitter with the coding-unit grid, so the neighbours of each prediction follow."""

    def scale_for(r: int) -> tuple[float, float, float, bool, float]:
        own = sorted((key[0], float(size)) for key, (_, size) in tried.items() if key[1] == r)
        points = own
        if len(own) < 2:
            points = sorted((key[0], shift(size, key[1], r)) for key, (_, size) in tried.items())
        below = [p for p in points if p[1] <= target]
        above = [p for p in points if p[1] > target]
        gamma, far = GAMMA, 0.0
        if below and above:
            (k1, s1), (k2, s2) = below[-1], above[0]
            if k2 > k1 and s2 != s1:
                gamma = min(5.0, max(0.5, math.log(s2 / s1) / math.log(k2 / k1)))
            k = k1 * (target / s1) ** (1 / gamma)
            if k2 > k1 * 1.06:
                end = k2 if math.log(k2 / k) > math.log(k / k1) else k1
                far = k * (end / k) ** (1 / 3)
        else:
            k1, s1 = below[-1] if below else above[0]
            k = k1 * (target / s1) ** (1 / gamma)
        return k, k1, s1, points is own and bool(below and above), far

    k, k1, s1, _, _ = scale_for(q)
    reach: tuple[int, ...] = (q + 1, q - 1)
    if not MIN_K <= k <= MAX_K:
        end = MAX_K if k > MAX_K else MIN_K
        q = q_for(s1 * (end / k1) ** GAMMA, q, target)
        measured = _q_at_end(tried, end, target)
        if measured is not None:  # the QP steps this picture really takes at that end
            q = measured
        reach = (q + 1, q - 1, q + 2, q - 2)
    near = {r for r in (q, *reach) if MIN_QP * STEPS <= r <= 63 * STEPS}
    groups: list[tuple[bool, bool, list[Key]]] = []
    for r in sorted(near | {key[1] for key in tried}, key=lambda r: (abs(r - q), -r)):
        k_r, _, _, bracketed, far = scale_for(r)
        if not bracketed and r not in near:
            continue
        k = _clamp(k_r)
        steps = [0, -1, 1, -2, 2]
        if far:
            steps.insert(1, _clamp(far) - k)
        keys = [(k + d, r) for d in steps if MIN_K <= k + d <= MAX_K]
        groups.append((not bracketed, far > 0, list(dict.fromkeys(keys))))
    groups.sort(key=lambda g: g[0])  # stable: bracketed QPs first, then nearest to q
    per_q = [[key for key in keys if key not in tried] for _, _, keys in groups]
    first: list[Key] = []
    if groups and groups[0][1] and per_q[0]:  # a wide bracket: its far guess goes along
        first, per_q[0] = per_q[0][:2], per_q[0][2:]
    rounds = zip_longest(*per_q)  # then one guess per QP in turn: independent jitter
    return list(dict.fromkeys([*first, *(key for keys in rounds for key in keys if key)]))


def _q_at_end(tried: dict[Key, tuple[bytes, int]], end: int, target: float) -> int | None:
    """The quarter-QP where the sizes measured at the scale range's ``end`` (within 2
    steps) reach ``target``, from a least-squares line of log size over QP, at most 2 QPs
    past them; None unless they span a whole QP. At full size a quarter step can move the
    size 1% where :data:`BETA` says 3.5%: the measured slope gets there in one round
    instead of one QP a round."""
    points = [
        (key[1], math.log(size)) for key, (_, size) in tried.items() if abs(key[0] - end) <= 2
    ]
    measured = [r for r, _ in points]
    if max(measured, default=0) - min(measured, default=0) < STEPS:
        return None  # lambda steps within one QP move sizes little at fine QPs: not a slope
    qs = np.array([r for r, _ in points], dtype=np.float64)
    logs = np.array([y for _, y in points])
    slope, offset = np.polyfit(qs, logs, 1)
    if slope > -0.002:  # flat or noise: no estimate
        return None
    r = round((math.log(target) - offset) / slope)
    lo, hi = min(measured) - 2 * STEPS, max(measured) + 2 * STEPS  # at most 2 QPs further
    return min(63 * STEPS, max(MIN_QP * STEPS, lo, min(hi, r)))


def fit_vvc_smallest(
    image: NDArray[np.uint8], max_bytes: int, codec: VvcCodec = VVC
) -> Candidate | None:
    """Tiny budgets: halve the scale at QP 63 until the payload fits."""
    height, width = image.shape[:2]
    k = 64
    while k >= MIN_K:
        data = codec.encode_qp(resize(image, *small_size(width, height, k)), 63)
        size = payload_size(data)
        if size <= max_bytes:
            recon = resize(codec.decode(data, small_size(width, height, k)), width, height)
            return Candidate(codec.id, k, 0, data, size, psnr(recon, image), recon)
        k //= 2
    return None
