"""A bounded work queue: a fixed number of workers, a fixed number of waiting places.

A request that finds every worker busy and every waiting place taken is refused at
once (RESOURCE_EXHAUSTED) instead of piling up. Queue time and compute time are
measured apart (Triton's habit): operators can tell "too slow" from "too busy".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Overloaded(RuntimeError):
    """Every worker is busy and the waiting room is full."""


class WorkQueue:
    def __init__(
        self, workers: int, max_waiting: int, on_depth: Callable[[int], None] | None = None
    ) -> None:
        if workers < 1 or max_waiting < 0:
            raise ValueError("need at least one worker and a non-negative waiting room")
        self.workers = workers
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(workers)
        self._depth = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="semlink-work")
        self._on_depth = on_depth or (lambda depth: None)

    @property
    def depth(self) -> int:
        """Requests waiting for or holding a worker."""
        return self._depth

    async def run(self, work: Callable[[], T]) -> tuple[T, float]:
        """Run ``work`` on a worker thread; return (result, seconds spent waiting)."""
        if self._depth >= self.workers + self.max_waiting:
            raise Overloaded(
                f"server is at capacity ({self.workers} running, {self.max_waiting} waiting); "
                f"retry with backoff or add replicas"
            )
        self._depth += 1
        self._on_depth(self._depth)
        queued = time.perf_counter()
        try:
            async with self._slots:
                waited = time.perf_counter() - queued
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._executor, work)
                return result, waited
        finally:
            self._depth -= 1
            self._on_depth(self._depth)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
