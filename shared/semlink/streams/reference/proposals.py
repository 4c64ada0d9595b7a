"""Where the rate control's next encodes go (:mod:`.ratecontrol`, step 4): from the sizes
measured so far, the untried (scale, QP) pairs predicted to land in the budget's window,
best guesses first, and when those run out, the halfway points of the gaps it fell in.
QPs are in eighths (:data:`~.ratemodel.STEPS`).
"""

from __future__ import annotations

import math
from itertools import zip_longest

from semlink.streams.reference.ratemodel import LAMBDA_BETA, MIN_QP, STEPS

QP_REACH = 1.5
"""QPs from the base QP the lambda may go before the scale moves instead."""

Key = tuple[int, float]
"""(scale k in 1/256, QP in eighths: whole ones, and finer ones in :func:`between`)."""
FINEST = 0.25
"""The finest QP step :func:`between` halves down to, in eighths (1/32 of a QP)."""


def aim(points: list[tuple[float, int]], target: float) -> float:
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


def by_scale(tried: dict[Key, tuple[bytes, int]]) -> dict[int, list[tuple[float, int]]]:
    """The (QP in eighths, size) measured at each scale, in the order they were tried."""
    by_k: dict[int, list[tuple[float, int]]] = {}
    for (k, q), (_, size) in tried.items():
        by_k.setdefault(k, []).append((q, size))
    return by_k


def proposals(
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
    below it). Each gets its QP from its own points (:func:`aim`), or from the other's
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
    by_k = by_scale(tried)
    main = max(by_k, key=lambda j: (len(by_k[j]), j))
    r = aim(by_k[main], target)
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
            r = aim(by_k[ks[i]], target)
    scales = [ks[i]]
    j = i + 1 if r < q0 else i - 1
    held = top > q0 and r <= top + reach  # a large budget: no smaller picture beside it
    if 0 <= j < len(ks) and not (j < i and held):
        scales.append(ks[j])
    lists = []
    for k in scales:
        own = by_k.get(k)
        rk = aim(own, target) if own else r + gamma * math.log(k / ks[i]) / slope
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


def between(tried: dict[Key, tuple[bytes, int]], low: float, high: int) -> list[Key]:
    """Untried lambdas halfway between the nearest sizes measured on either side of the
    window [``low``, ``high``] at each scale (most measured first), for when the proposals
    are spent: VVC's size can jump more than the window between neighbouring eighths of a
    QP (BSDS500 val 208001 at 0.05 bpp: 943 and 907 bytes around a 914-942 window; 924
    halfway, after 13 encodes had missed it at two scales). Halves down to
    :data:`FINEST`."""
    out: list[Key] = []
    for k, points in sorted(by_scale(tried).items(), key=lambda item: (-len(item[1]), item[0])):
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
