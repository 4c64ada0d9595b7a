"""1e3 mutated packets through decode (issue 13.4; bench/bench_fuzz.py runs 1e5): bit flips,
truncation, splices, length lies and payload mutations behind valid CRCs, on seed packets with
every layer type and every reference codec id. No crash, no hang, no INTERNAL. Time per
packet is printed by the bench, not asserted."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_fuzz import MUTATIONS, fuzz, mutate, seed_packets


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    return seed_packets()


def test_seeds_hold_every_layer_kind_and_reference_codec(seeds: list[bytes]) -> None:
    from semlink.packet import parse
    from semlink.streams import LayerKind

    kinds = {layer.kind for s in seeds for layer in parse(s).layers}
    assert kinds == {int(k) for k in LayerKind}
    codecs = {
        layer.codec for s in seeds for layer in parse(s).layers if layer.kind == LayerKind.REFERENCE
    }
    assert {0, 1, 2, 3, 4, 5, 6, 8} <= codecs, codecs  # 7 needs TAEF2 latent models


def test_every_mutation_is_drawn(seeds: list[bytes]) -> None:
    rng = np.random.default_rng(1)
    drawn = {mutate(seeds, rng)[0] for _ in range(200)}
    assert drawn == set(MUTATIONS)


@pytest.mark.slow
def test_a_thousand_mutated_packets_neither_crash_nor_hang(seeds: list[bytes]) -> None:
    report = fuzz(1000, seed=13, hang=120.0, seeds=seeds)
    assert sum(report.outcomes.values()) == 1000
    assert report.bad == 0, report.failures[:5]
    times = np.asarray(report.seconds) * 1000
    print(
        f"{dict(report.outcomes)}; p99 {np.percentile(times, 99):.0f} ms, max {times.max():.0f} ms"
    )
