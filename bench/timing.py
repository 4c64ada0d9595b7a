"""The benches' stopwatch: the median wall time of repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(
    fn: Callable[[], object], reps: int, sync: Callable[[], None] | None = None
) -> float:
    """Median wall seconds of ``reps`` calls of ``fn``. ``sync`` (for example
    ``torch.cuda.synchronize``) runs before the clock starts and before it stops, so that
    work queued on a device is counted in the call that queued it."""
    times = []
    for _ in range(reps):
        if sync is not None:
            sync()
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
