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
   beside it for independent jitter (:func:`.proposals.proposals`). Should those proposals run out
   with the window missed (a size that jumps past it between neighbouring eighths), the
   gap is halved down to a 32nd of a QP (:func:`.proposals.between`).

On 40 BSDS500 val photos at 0.03 bpp (not used for tuning), against the previous fit
(scale as the fine knob): 3.65 final encodes on average instead of 5.70, every photo
filled >= 97% (one at 95.9% before); on 30 BSDS500 train photos at 0.03 and 0.05 bpp,
+0.04 dB PSNR at the same bytes (less padding coded). The size model instead of the
probes, on 40 other val photos at 0.02, 0.03 and 0.05 bpp at QP 45: 4.97 encodes in all
instead of 6.52 (2 probes + 4.52), median fit 0.61 s instead of 0.70 s.

Internally a QP is counted in eighths (``q = 8 x QP``). The size model and the efficient
scales are :mod:`.ratemodel`'s, the next guesses :mod:`.proposals`'.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semlink import calls
from semlink.imaging import psnr, resize
from semlink.streams.reference.base import Candidate, small_size
from semlink.streams.reference.proposals import QP_REACH, Key, between, proposals
from semlink.streams.reference.ratemodel import (
    GAMMA,
    MAX_K,
    MAX_WASTE,
    MIN_K,
    STEPS,
    efficient_scales,
    first_scale,
    predict,
    steps,
    target_qp,
    waste,
)
from semlink.streams.reference.sizemodel import predicted_size
from semlink.streams.reference.vvc import MAX_QP, VVC, Cancel, VvcCodec, payload_size

GUESS_SPREAD = 1.4
"""The second scale it looks at, over the first."""
AIMS = (1.0, 0.955)
"""Round 1's two pictures: the predicted fill (of the budget) each is aimed at."""
MAX_ENCODES = 16
PARALLEL_ENCODES = 2
_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


def fit_vvc(
    image: NDArray[np.uint8],
    payload_bytes: int,
    codec: VvcCodec = VVC,
    fill: float = 0.97,
    measure: bool = True,
) -> Candidate | None:
    """The VVC candidate for ``image`` whose layer payload (scale byte, NAL units; no layer
    framing) fills ``payload_bytes``; None if the smallest picture at QP 63 does not fit.
    ``measure=False`` skips decoding the winner (its PSNR is then NaN and its
    reconstruction empty): lite's encoder needs neither."""
    height, width = image.shape[:2]
    if payload_bytes < 8:
        return None
    calls.check()
    plan = _plan(image, payload_bytes, fill)
    tried = _encode_until_filled(image, payload_bytes, codec, fill, plan)
    fitting = [(s, key) for key, (_, s) in tried.items() if s <= payload_bytes]
    if not fitting:
        return fit_vvc_smallest(image, payload_bytes, codec)
    size, best = max(fitting)
    k, data = best[0], tried[best][0]
    quality = 63 - plan.base_for(best[1])
    if not measure:
        return Candidate(codec.id, k, quality, data, size, math.nan, _EMPTY)
    recon = resize(codec.decode(data, small_size(width, height, k)), width, height)
    return Candidate(codec.id, k, quality, data, size, psnr(recon, image), recon)


@dataclass(frozen=True)
class Plan:
    """Where a fit starts (steps 1 to 3): the predicted QP, the picture's size exponent,
    the bytes it aims at, the efficient scales and the first two encodes."""

    q: int
    """The predicted QP, in eighths: the fine knob starts here."""
    ceiling: int
    """The QP lite aims at (:func:`target_qp`), in eighths."""
    gamma: float
    target: float
    """The middle of the window the payload should land in."""
    scales: tuple[int, ...]
    first: tuple[Key, ...]

    @property
    def base(self) -> int:
        return round(self.q / STEPS)

    def base_for(self, q: float) -> int:
        """The QP an encode at ``q`` (eighths) codes with: the fit's own while the lambda
        reaches it, else the nearest (a full-size picture whose QP the size model missed by
        more than :data:`QP_REACH`: the lambda alone barely moves sizes at low QPs)."""
        return self.base if abs(q / STEPS - self.base) <= QP_REACH else round(q / STEPS)


def _plan(image: NDArray[np.uint8], payload_bytes: int, fill: float) -> Plan:
    """Guess, predict and pick the scale (steps 1 to 3 of the module doc)."""
    height, width = image.shape[:2]
    k0 = first_scale(width, height, payload_bytes)
    # The size model at k0 and a 1.4x larger scale: this picture's own size exponent (1.2
    # on smooth photos, 2.4 on kodim06-like fine texture) for the prediction.
    scales = sorted({k0, min(MAX_K, round(k0 * GUESS_SPREAD))})
    qp = target_qp(payload_bytes)
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
    near = 0 if len(scales) == 1 or payload_bytes < math.sqrt(guesses[0] * guesses[1]) else 1
    k, q = predict(guesses[near], scales[near], payload_bytes, gamma)
    target = (1 + fill) / 2 * payload_bytes
    ks = efficient_scales(width, height)
    # The scale: an efficient one near the prediction; the QP (in eighths) is the fine knob.
    k = min(k, MAX_K)  # (past it, predict's q already fills the budget at full size)
    start = min(ks, key=lambda e: (abs(math.log(e / k)), -e))
    at_start = payload_bytes * (start / k) ** gamma  # predicted size at (start, q)
    first: list[Key] = [(start, q + steps(at_start / (payload_bytes * aim))) for aim in AIMS]
    if first[0] == first[1]:
        first[1] = (start, first[0][1] + 1)
    return Plan(q, qp * STEPS, gamma, target, ks, tuple(first))


def _encode_until_filled(
    image: NDArray[np.uint8], payload_bytes: int, codec: VvcCodec, fill: float, plan: Plan
) -> dict[Key, tuple[bytes, int]]:
    """Step 4: the encodes the fit looked at, in the order they started, (stream, payload
    size) each; the last fills ``fill`` of the budget unless the proposals ran out."""
    height, width = image.shape[:2]
    measured: dict[Key, tuple[bytes, int]] = {}
    """Every encode that ended (filled in by the workers, in whatever order they end)."""
    tried: dict[Key, tuple[bytes, int]] = {}
    """The encodes the fit has looked at, in the order they were started."""
    cancel = Cancel(calls.current())
    """Set when the fit ends (stops the encode still running) or when the call is stopped
    (the encodes are run by the pool's threads, which do not see the call's context)."""

    def fills(size: int) -> bool:
        return fill * payload_bytes <= size <= payload_bytes

    def attempt(key: Key) -> None:
        k, q = key
        with calls.running(cancel):  # the pool's thread: calls.check() below sees the fit's
            cancel.check()
            small = resize(image, *small_size(width, height, k))
            cancel.check()
            data = codec.encode_qp(small, q / STEPS, cancel=cancel, base=plan.base_for(q))
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

        launch(list(plan.first))
        try:
            while queue:
                future, key = queue.popleft()
                future.result()  # vvenc's errors reach the caller
                tried[key] = measured[key]
                if fills(tried[key][1]):
                    break
                launch(proposals(tried, plan.q, plan.target, plan.gamma, plan.scales, plan.ceiling))
                if not queue:  # the proposals are spent: halve the gaps the window fell in
                    launch(between(tried, fill * payload_bytes, payload_bytes))
        finally:
            cancel.set()  # stops what still runs (it ends in Stopped, which nobody reads)
    return tried


def fit_vvc_smallest(
    image: NDArray[np.uint8], payload_bytes: int, codec: VvcCodec = VVC
) -> Candidate | None:
    """Tiny budgets: halve the scale at QP 63 until the payload fits."""
    height, width = image.shape[:2]
    k = 64
    while k >= MIN_K:
        data = codec.encode_qp(resize(image, *small_size(width, height, k)), 63)
        size = payload_size(data)
        if size <= payload_bytes:
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


__all__ = [
    "MAX_K",
    "MAX_WASTE",
    "MIN_K",
    "STEPS",
    "efficient_scales",
    "first_scale",
    "fit_vvc",
    "fit_vvc_smallest",
    "smallest_vvc",
    "target_qp",
    "waste",
]
