"""Memory per request, stated and enforced: a linear model of a request's peak memory
against its picture size, and an admission budget that refuses a request whose picture
could never fit and holds one back until enough of the budget is free.

The coefficients are measured by ``bench/bench_memory.py`` (a fresh process per size,
peak resident set above the process's baseline, plus the ffmpeg it ran)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class MemoryModel:
    """Peak bytes of one request on a ``width`` x ``height`` picture: ``fixed`` +
    ``per_pixel`` x pixels."""

    fixed: int
    per_pixel: float

    def bytes_for(self, width: int, height: int) -> int:
        return int(self.fixed + self.per_pixel * width * height)

    def largest_pixels(self, budget: int) -> int:
        """The most pixels a request may have to fit in ``budget`` bytes."""
        return max(0, math.floor((budget - self.fixed) / self.per_pixel))


DEFAULT_MEMORY_BUDGET = 6 * GiB
"""Per service: a 2-core, 8 GiB container holds the process (0.6-0.9 GiB with lite's
models loaded, measured) and the requests in flight, which together never reserve more
than this: two worst-case requests run one after the other, not at once."""

ENCODE = MemoryModel(fixed=256 * MiB, per_pixel=66.0)
"""lite's encode from the uploaded file: measured 127 / 426 / 1107 / 4033 MiB above the
process at 1 / 4 / 16 / 64 megapixels (the decoded upload, the size model's float
bands, the scaled pictures, two vvenc processes); the formula is above each."""
DECODE = MemoryModel(fixed=224 * MiB, per_pixel=256.0)
"""lite's decode at the shipped realism, answer written as PNG: measured 421 / 970 / 3921
MiB above the process at 1 / 4 / 16 megapixels (the restorer's float feature maps at
half and full size dominate); the formula is above each. The decoder's default picture
limit, 4096x4096, costs 4.2 GiB by it: one at a time in the default budget."""


class OverBudget(RuntimeError):
    """A request's picture needs more memory than the whole service may use."""


def _fits(model: MemoryModel, budget: int, width: int, height: int) -> str:
    """'pictures up to N megapixels (e.g. W x H at this aspect) fit'."""
    pixels = model.largest_pixels(budget)
    if pixels <= 0:
        return "no picture fits"
    scale = math.sqrt(pixels / (width * height))
    return (
        f"pictures up to {pixels / 1e6:.1f} megapixels fit (for example "
        f"{math.floor(width * scale)}x{math.floor(height * scale)} at this aspect)"
    )


class MemoryBudget:
    """Admission by memory: each request reserves its model's estimate before its work
    starts. One that could never fit is refused at once (:class:`OverBudget` ->
    RESOURCE_EXHAUSTED, saying how big a picture fits); one that fits waits until the
    requests in flight leave it room."""

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError("a memory budget must be positive")
        self.total = total
        self.held = 0
        self._freed = asyncio.Condition()

    def check(self, model: MemoryModel, width: int, height: int, what: str) -> int:
        """The bytes a ``width`` x ``height`` request needs; :class:`OverBudget` when more
        than the whole budget."""
        need = model.bytes_for(width, height)
        if need > self.total:
            raise OverBudget(
                f"a {width}x{height} picture needs about {need / GiB:.1f} GiB to {what}, more "
                f"than this service's memory budget ({self.total / GiB:.1f} GiB, "
                f"`semlink serve --memory-budget-gib`); {_fits(model, self.total, width, height)}"
            )
        return need

    async def acquire(self, need: int) -> None:
        async with self._freed:
            await self._freed.wait_for(lambda: self.held + need <= self.total)
            self.held += need

    async def release(self, need: int) -> None:
        async with self._freed:
            self.held -= need
            self._freed.notify_all()
