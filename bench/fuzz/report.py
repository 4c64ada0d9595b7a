"""One fuzz run's (or chunk's) outcomes and times, as JSON chunks that merge, and the summary
it prints."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .seeds import seed_labels, seeds_digest

BAD = ("CRASH", "HANG", "INTERNAL")


class Timed(NamedTuple):
    """One fuzzed packet's outcome."""

    number: int
    mutation: str
    source: int
    """Index of the seed packet it was made from."""
    outcome: str
    seconds: float
    message: str
    """The error, kept for slow packets (over SLOW seconds) and failures only."""
    cpu: float = float("nan")
    """CPU seconds of the decode (the worker's threads and the codec programs it ran)."""


SLOW = 0.1
"""Seconds per packet that the issue sets as the goal (p99 and max)."""


@dataclass
class Report:
    outcomes: Counter[str] = field(default_factory=Counter)
    by_mutation: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    failures: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(outcome, message, packet) of every crash, hang and INTERNAL."""
    packets: list[Timed] = field(default_factory=list)
    warmup: list[float] = field(default_factory=list)
    """Seconds to decode each seed packet once in a fresh worker, before timing (model loading,
    first calls); not counted in ``seconds``."""

    @property
    def bad(self) -> int:
        return sum(self.outcomes[k] for k in ("CRASH", "HANG", "INTERNAL"))

    def add(self, timed: Timed, data: bytes) -> None:
        self.outcomes[timed.outcome] += 1
        self.by_mutation.setdefault(timed.mutation, Counter())[timed.outcome] += 1
        self.seconds.append(timed.seconds)
        keep = timed.outcome in BAD or timed.seconds > SLOW
        self.packets.append(timed if keep else timed._replace(message=""))
        if timed.outcome in BAD:
            self.failures.append((timed.outcome, timed.message, data))

    def to_json(self, seed: int, seeds: list[bytes]) -> dict[str, Any]:
        return {
            "seed": seed,
            "seeds_sha256": seeds_digest(seeds),
            "warmup": self.warmup,
            "packets": [list(t) for t in self.packets],
            "failures": [[o, m, d.hex()] for o, m, d in self.failures],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        report = cls(warmup=list(data["warmup"]))
        for row in data["packets"]:
            timed = Timed(*row)
            report.outcomes[timed.outcome] += 1
            report.by_mutation.setdefault(timed.mutation, Counter())[timed.outcome] += 1
            report.seconds.append(timed.seconds)
            report.packets.append(timed)
        report.failures = [(o, m, bytes.fromhex(d)) for o, m, d in data["failures"]]
        return report

    def extend(self, other: Report) -> None:
        self.outcomes.update(other.outcomes)
        for kind, counts in other.by_mutation.items():
            self.by_mutation.setdefault(kind, Counter()).update(counts)
        self.seconds.extend(other.seconds)
        self.packets.extend(other.packets)
        self.failures.extend(other.failures)
        self.warmup.extend(other.warmup)


def merge(paths: list[Path], seeds: list[bytes]) -> Report:
    """One report from chunks of the same run (same seed and seed packets, disjoint packets)."""
    chunks = [json.loads(p.read_text()) for p in paths]
    if {(c["seed"], c["seeds_sha256"]) for c in chunks} != {
        (chunks[0]["seed"], seeds_digest(seeds))
    }:
        raise SystemExit("chunks come from different --seed values or seed packets")
    total = Report()
    for path, chunk in zip(paths, chunks, strict=True):
        part = Report.from_json(chunk)
        print(f"  {path.name}: {len(part.packets)} packets")
        total.extend(part)
    seen = [t.number for t in total.packets]
    if len(seen) != len(set(seen)):
        raise SystemExit("chunks overlap: a packet index appears twice")
    return total


def _spread(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    ms = np.asarray(seconds) * 1000
    return (
        f"n {len(ms)}, p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
        f"max {ms.max():.1f} ms, over {SLOW * 1000:.0f} ms: {int((ms > SLOW * 1000).sum())}"
    )


def summarize(report: Report, seeds: list[bytes]) -> None:
    labels = seed_labels(seeds)
    indexes = sorted(t.number for t in report.packets)
    runs, first = [], None
    for a, b in zip([None, *indexes], [*indexes, None], strict=True):
        if a is None or b is None or b != a + 1:
            if a is not None and first is not None:
                runs.append(f"{first}..{a}")
            first = b
    print(f"{len(report.packets)} mutated packets (indexes {', '.join(runs) or 'none'})")
    for kind, counts in sorted(report.by_mutation.items()):
        print(f"  {kind:9s} {dict(sorted(counts.items()))}")
    print(f"outcomes: {dict(sorted(report.outcomes.items()))}")
    print(
        f"crashes {report.outcomes['CRASH']}, hangs {report.outcomes['HANG']}, "
        f"INTERNAL {report.outcomes['INTERNAL']}"
    )
    print(f"decode time per packet (wall): {_spread(report.seconds)}")
    rejected = [t.seconds for t in report.packets if t.outcome != "OK"]
    decoded = [t.seconds for t in report.packets if t.outcome == "OK"]
    print(f"  refused (any error status): {_spread(rejected)}")
    print(f"  decoded (OK, the whole decode ran): {_spread(decoded)}")
    cpu = [t for t in report.packets if not math.isnan(t.cpu)]
    if cpu:
        print(f"decode CPU time per packet: {_spread([t.cpu for t in cpu])}")
        print(f"  refused: {_spread([t.cpu for t in cpu if t.outcome != 'OK'])}")
        print(f"  decoded: {_spread([t.cpu for t in cpu if t.outcome == 'OK'])}")
    for source, label in enumerate(labels):
        mine = [t for t in report.packets if t.source == source]
        print(f"  seed {source} ({label}):")
        print(f"    refused {_spread([t.seconds for t in mine if t.outcome != 'OK'])}")
        print(f"    decoded {_spread([t.seconds for t in mine if t.outcome == 'OK'])}")
    if report.warmup:
        print(
            "first decode of each seed in a fresh worker (not counted above): "
            + ", ".join(f"{s * 1000:.0f} ms" for s in report.warmup)
        )
    print("slowest packets (wall):")
    for t in sorted(report.packets, key=lambda t: -t.seconds)[:10]:
        print(
            f"  #{t.number} {t.mutation} of seed {t.source} ({labels[t.source]}): {t.outcome} "
            f"in {t.seconds * 1000:.1f} ms ({t.cpu * 1000:.0f} ms CPU) {t.message[:120]}"
        )
    for outcome, message, _ in report.failures[:10]:
        print(f"  {outcome}: {message}")
