"""lite's VVC rate control: predict scale and QP, then a few real encodes, two at a time.

A full scale x QP search costs dozens of vvenc runs per image. Instead:

1. *Guess.* The size model (:mod:`.sizemodel`, a transform-coding estimate fitted to real
   encodes; milliseconds) predicts the payload at :data:`TARGET_QP` at the scale where the
   budget would give :data:`GUESS_DENSITY` bits per small pixel (near where lite's scales
   land) and :data:`GUESS_SPREAD` times larger: the picture's own size exponent (1.2 on
   smooth photos, 2.4 on fine texture). It replaced two ``faster`` probe encodes: ~0.2 s of
   a Kodak encode for a guess ~8% off the sent preset's size (the model's: ~12%), and the
   fit needs fewer encodes in all without them.
2. *Predict.* Stream size follows ``bytes(k, qp) = guess x (k/k0)^GAMMA x
   exp(-BETA (qp - TARGET_QP))`` (BETA 0.139 per QP). lite codes at :data:`TARGET_QP`
   (chosen on BSDS500 val) and gets the scale from the budget; when even the full-size
   picture fits at that QP, the QP comes down instead (:func:`beta`: the steps shrink
   below QP 38).
3. *Scale.* The efficient scale (:func:`efficient_scales`) nearest the prediction. Payload
   size is a staircase over the picture vvenc codes, padded to a multiple of 8: within one
   padded size it barely moves, at the next it jumps (a 218x145 picture, padded to
   224x152, cost 12% more than 216x144 on a BSDS500 photo). So lite codes pictures that
   fill their padding and leaves the scale alone while it can.
4. *Fit.* Two encodes with the sent configuration, side by side (vvenc runs as a process,
   one per core), aimed inside the window from both sides of the prediction's uncertainty
   (~6%). The fine knob is vvenc's intra RD lambda at the base QP, in eighths of a QP
   (:data:`STEPS`, :meth:`VvcCodec.encode_qp` with ``base``): size moves smoothly with
   it (~1.3% a step, +-15% over +-1.5 QP), without the ~7% step each integer QP adds.
   While no payload fills ``fill`` of the budget without passing it, the QP that lands is
   interpolated from the sizes measured at that scale and the next guess starts as soon
   as an encode ends (both cores stay busy; the first to fill the budget stops the
   other; at most :data:`MAX_ENCODES`); the neighbouring efficient scale is searched
   beside it for independent jitter (:func:`_proposals`). Should those proposals run out
   with the window missed (a size that jumps past it between neighbouring eighths), the
   gap is halved down to a 32nd of a QP (:func:`_between`).

On 40 BSDS500 val photos at 0.03 bpp (not used for tuning), against the previous fit
(scale as the fine knob): 3.65 final encodes on average instead of 5.70, every photo
filled >= 97% (one at 95.9% before); on 30 BSDS500 train photos at 0.03 and 0.05 bpp,
+0.04 dB PSNR at the same bytes (less padding coded). The size model instead of the
probes, on 40 other val photos at 0.02, 0.03 and 0.05 bpp at QP 45: 4.97 encodes in all
instead of 6.52 (2 probes + 4.52), median fit 0.61 s instead of 0.70 s.

Internally a QP is counted in eighths (``q = 8 x QP``).
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from itertools import zip_longest

import numpy as np
from numpy.typing import NDArray

from semlink import calls
from semlink.imaging import psnr, resize
from semlink.streams.reference.base import Candidate, small_size
from semlink.streams.reference.sizemodel import predicted_size
from semlink.streams.reference.vvc import MAX_QP, VVC, Cancel, VvcCodec, coded_size, payload_size
from semlink.streams.reference.vvcps import padded_size

STEPS = 8
"""Eighth-QP steps: the rate control's QP unit (~1.7% of size each)."""
GUESS_DENSITY = 0.12
"""Bits per small pixel of the first scale the size model looks at (lite's picks: 0.03-0.3)."""
GUESS_SPREAD = 1.4
"""The second scale it looks at, over the first."""
GAMMA = 1.45
BETA = 0.139
"""Log size per QP step at QP 38-60; below 38 the steps shrink (0.08 near QP 27)."""
AIMS = (1.0, 0.955)
"""Round 1's two pictures: the predicted fill (of the budget) each is aimed at."""
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


def target_qp(max_bytes: int) -> int:
    """The QP lite aims at for a payload budget of ``max_bytes``."""
    return TARGET_QP if max_bytes >= SMALL_BUDGET else SMALL_BUDGET_QP


MIN_QP = 0
MIN_K, MAX_K = 8, 256
MAX_ENCODES = 16
MAX_WASTE = 0.02
"""Padding share of an efficient scale (:func:`efficient_scales`)."""
QP_REACH = 1.5
"""QPs from the base QP the lambda may go before the scale moves instead."""
LAMBDA_BETA = 0.105
"""Log size per QP of lambda alone (QP fixed), measured on BSDS500 train at QP 46 over
+-1.5 QP: smaller than :data:`BETA` (a QP step also coarsens the quantizer)."""
PARALLEL_ENCODES = 2
_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)

Key = tuple[int, float]
"""(scale k in 1/256, QP in eighths: whole ones, and finer ones in :func:`_between`)."""
FINEST = 0.25
"""The finest QP step :func:`_between` halves down to, in eighths (1/32 of a QP)."""


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


def first_scale(width: int, height: int, max_bytes: int, factor: float = 1.0) -> int:
    """The scale (in 1/256) at which ``max_bytes`` gives :data:`GUESS_DENSITY` bits per small
    pixel, times ``factor``, within [:data:`MIN_K`, :data:`MAX_K`]: where the size model
    first looks."""
    k = round(256 * math.sqrt(8 * max(0, max_bytes) / (GUESS_DENSITY * width * height)) * factor)
    return min(MAX_K, max(MIN_K, k))


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
    calls.check()
    k0 = first_scale(width, height, max_bytes)
    # The size model at k0 and a 1.4x larger scale: this picture's own size exponent (1.2
    # on smooth photos, 2.4 on kodim06-like fine texture) for the prediction.
    scales = sorted({k0, min(MAX_K, round(k0 * GUESS_SPREAD))})
    qp = target_qp(max_bytes)
    guesses = []
    for scale in scales:
        small = resize(image, *small_size(width, height, scale))
        calls.check()  # (between the slow steps of a large picture)
        guesses.append(predicted_size(small, qp))
    gamma = GAMMA
    if len(scales) == 2:
        gamma = min(
            3.0, max(0.8, math.log(guesses[1] / guesses[0]) / math.log(scales[1] / scales[0]))
        )
    near = 0 if len(scales) == 1 or max_bytes < math.sqrt(guesses[0] * guesses[1]) else 1
    k, q = predict(guesses[near], scales[near], max_bytes, gamma)
    target = (1 + fill) / 2 * max_bytes
    ks = efficient_scales(width, height)
    # The scale: an efficient one near the prediction; the QP (in eighths) is the fine knob.
    k = min(k, MAX_K)  # (past it, predict's q already fills the budget at full size)
    start = min(ks, key=lambda e: (abs(math.log(e / k)), -e))
    at_start = max_bytes * (start / k) ** gamma  # predicted size at (start, q)
    base = round(q / STEPS)
    first: list[Key] = [(start, q + _steps(at_start / (max_bytes * aim))) for aim in AIMS]
    if first[0] == first[1]:
        first[1] = (start, first[0][1] + 1)

    measured: dict[Key, tuple[bytes, int]] = {}
    """Every encode that ended (filled in by the workers, in whatever order they end)."""
    tried: dict[Key, tuple[bytes, int]] = {}
    """The encodes the fit has looked at, in the order they were started."""
    cancel = Cancel(calls.current())
    """Set when the fit ends (stops the encode still running) or when the call is stopped
    (the encodes are run by the pool's threads, which do not see the call's context)."""

    def fills(size: int) -> bool:
        return fill * max_bytes <= size <= max_bytes

    def base_for(q: float) -> int:
        """The QP an encode at ``q`` (eighths) codes with: the fit's own while the lambda
        reaches it, else the nearest (a full-size picture whose QP the size model missed by
        more than :data:`QP_REACH`: the lambda alone barely moves sizes at low QPs)."""
        return base if abs(q / STEPS - base) <= QP_REACH else round(q / STEPS)

    def attempt(key: Key) -> None:
        k, q = key
        with calls.running(cancel):  # the pool's thread: calls.check() below sees the fit's
            cancel.check()
            small = resize(image, *small_size(width, height, k))
            cancel.check()
            data = codec.encode_qp(small, q / STEPS, cancel=cancel, base=base_for(q))
        measured[key] = (data, payload_size(data))

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
                launch(_proposals(tried, q, target, gamma, ks, qp * STEPS))
                if not queue:  # the proposals are spent: halve the gaps the window fell in
                    launch(_between(tried, fill * max_bytes, max_bytes))
        finally:
            cancel.set()  # stops what still runs (it ends in Stopped, which nobody reads)
    fitting = [(s, key) for key, (_, s) in tried.items() if s <= max_bytes]
    if not fitting:
        return fit_vvc_smallest(image, max_bytes, codec)
    size, best = max(fitting)
    k, data = best[0], tried[best][0]
    quality = 63 - base_for(best[1])
    if not measure:
        return Candidate(codec.id, k, quality, data, size, math.nan, _EMPTY)
    recon = resize(codec.decode(data, small_size(width, height, k)), width, height)
    return Candidate(codec.id, k, quality, data, size, psnr(recon, image), recon)


def _steps(ratio: float) -> int:
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


def _aim(points: list[tuple[float, int]], target: float) -> float:
    """The QP (eighths, fractional) predicted to land on ``target`` from ``points`` (QP,
    size) measured at one scale: log size interpolated over QP between the nearest points
    on each side, or extrapolated from one side (the slope of its two nearest points, or
    :data:`LAMBDA_BETA`)."""
    above = [(q, s) for q, s in points if s > target]
    below = [(q, s) for q, s in points if s <= target]
    slope = LAMBDA_BETA / STEPS
    if above and below:
        (qa, sa), (qb, sb) = max(above), min(below)
        if qa >= qb:  # jitter: sizes out of order around the target
            return (qa + qb) / 2
        return qa + (qb - qa) * math.log(sa / target) / math.log(sa / sb)
    near = sorted(points, key=lambda p: abs(math.log(p[1] / target)))[:2]
    if len(near) == 2 and abs(near[0][0] - near[1][0]) >= 2:
        (q1, s1), (q2, s2) = near
        measured = math.log(s1 / s2) / (q2 - q1)
        if measured > slope / 4:
            slope = min(measured, slope * 4)
    return near[0][0] + math.log(near[0][1] / target) / slope


def _by_scale(tried: dict[Key, tuple[bytes, int]]) -> dict[int, list[tuple[float, int]]]:
    """The (QP in eighths, size) measured at each scale, in the order they were tried."""
    by_k: dict[int, list[tuple[float, int]]] = {}
    for (k, q), (_, size) in tried.items():
        by_k.setdefault(k, []).append((q, size))
    return by_k


def _proposals(
    tried: dict[Key, tuple[bytes, int]],
    q0: int,
    target: float,
    gamma: float,
    ks: tuple[int, ...],
    ceiling: float | None = None,
) -> list[Key]:
    """Untried (k, QP in eighths) predicted to land on ``target``, best guesses first.

    Two efficient scales are searched side by side: the one with most encodes and its
    neighbour towards ``q0`` (the QP the fit aims at: more pixels when the QP found is
    below it). Each gets its QP from its own points (:func:`_aim`), or from the other's
    through the size exponent ``gamma`` while it has none. Their guesses alternate, so the
    two encodes in flight have independent jitter (+-2% between neighbouring QPs). A
    scale whose QP strays more than :data:`QP_REACH` from ``q0`` gives way to the next.

    ``ceiling`` (default ``q0``): the QP lite aims at. When ``q0`` is below it (the
    full-size picture fits at a finer QP: large budgets), a QP found above ``q0`` keeps
    the scale up to ``ceiling``: fewer pixels would cost far more there than a coarser
    QP (a BSDS500 val photo at 3 bpp went to 0.8 of its side at QP 7: 38.1 dB after
    Lanczos, below its 39.2 at 1 bpp; kept at full size, 43.8 dB)."""
    top = q0 if ceiling is None else max(q0, ceiling)
    reach = QP_REACH * STEPS
    by_k = _by_scale(tried)
    main = max(by_k, key=lambda j: (len(by_k[j]), j))
    r = _aim(by_k[main], target)
    slope = LAMBDA_BETA / STEPS
    i = min(range(len(ks)), key=lambda j: abs(ks[j] - main))
    visited = {i}
    while r < q0 - reach or r > top + reach:  # the QP strayed: the next scale is the main one
        j = i + 1 if r < q0 else i - 1
        if not 0 <= j < len(ks) or j in visited:  # (measured scales may point both ways)
            break
        visited.add(j)
        r += gamma * math.log(ks[j] / ks[i]) / slope
        i = j
        if ks[i] in by_k:
            r = _aim(by_k[ks[i]], target)
    scales = [ks[i]]
    j = i + 1 if r < q0 else i - 1
    held = top > q0 and r <= top + reach  # a large budget: no smaller picture beside it
    if 0 <= j < len(ks) and not (j < i and held):
        scales.append(ks[j])
    lists = []
    for k in scales:
        own = by_k.get(k)
        rk = _aim(own, target) if own else r + gamma * math.log(k / ks[i]) / slope
        q = min(63 * STEPS, max(MIN_QP * STEPS, round(rk)))
        side = 1 if rk > q else -1
        keys = [(k, q + d * side) for d in (0, 1, -1, 2, -2)]
        lists.append(
            [key for key in keys if key not in tried and MIN_QP * STEPS <= key[1] <= 63 * STEPS]
        )
    out: list[Key] = []
    for pair in zip_longest(*lists):
        out += [key for key in pair if key is not None]
    return out


def _between(tried: dict[Key, tuple[bytes, int]], low: float, high: int) -> list[Key]:
    """Untried lambdas halfway between the nearest sizes measured on either side of the
    window [``low``, ``high``] at each scale (most measured first), for when the proposals
    are spent: VVC's size can jump more than the window between neighbouring eighths of a
    QP (BSDS500 val 208001 at 0.05 bpp: 943 and 907 bytes around a 914-942 window; 924
    halfway, after 13 encodes had missed it at two scales). Halves down to
    :data:`FINEST`."""
    out: list[Key] = []
    for k, points in sorted(_by_scale(tried).items(), key=lambda item: (-len(item[1]), item[0])):
        over = [q for q, size in points if size > high]
        under = [q for q, size in points if size < low]
        if not over or not under:
            continue
        # The closest pair of lambdas on either side (jitter may put them out of order);
        # halfway between them is untried: a size measured there would make a closer pair.
        lo, hi = min((sorted((a, b)) for a in over for b in under), key=lambda p: p[1] - p[0])
        if hi - lo >= 2 * FINEST:
            out.append((k, (lo + hi) / 2))
    return out


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


def smallest_vvc(image: NDArray[np.uint8], codec: VvcCodec = VVC) -> Candidate:
    """The smallest picture of ``image`` the rate control can send (the smallest scale at
    QP 63; not decoded): a budget that cannot hold it holds no picture at all."""
    height, width = image.shape[:2]
    data = codec.encode_qp(resize(image, *small_size(width, height, MIN_K)), MAX_QP)
    return Candidate(codec.id, MIN_K, 0, data, payload_size(data), math.nan, _EMPTY)
