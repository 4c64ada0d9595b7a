"""1e3 mutated packets through decode (issue 13.4; bench/bench_fuzz.py runs 1e5): bit flips,
truncation, splices, length lies and payload mutations behind valid CRCs, on seed packets with
every layer type and every reference codec id. No crash, no hang, no INTERNAL. Time per
packet is printed by the bench, not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.bench_fuzz import (
    MUTATIONS,
    Report,
    Timed,
    fuzz,
    merge,
    mutate,
    mutate_from,
    packet_rng,
    seed_packets,
)

GOLDEN = Path(__file__).parent / "expected" / "lite-chelsea-600.slk"


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
    assert {0, 1, 2, 3, 4, 5, 6, 10} <= codecs, codecs  # 7 needs TAEF2 latent models; 10: VVC 3


def test_every_mutation_is_drawn(seeds: list[bytes]) -> None:
    rng = np.random.default_rng(1)
    drawn = {mutate(seeds, rng)[0] for _ in range(200)}
    assert drawn == set(MUTATIONS)


def test_chunks_of_a_run_draw_its_packets_and_merge_into_its_report(tmp_path: Path) -> None:
    """bench_fuzz --start/--minutes/--out/--merge: packet i is the same in any chunk, and
    chunks add up to one report (no packet counted twice)."""
    seeds = [GOLDEN.read_bytes()]
    whole = [mutate_from(seeds, packet_rng(5, i)) for i in range(40)]
    assert [mutate_from(seeds, packet_rng(5, i)) for i in range(25, 40)] == whole[25:]
    assert len({data for _, _, data in whole}) > 30  # distinct packets, not one repeated
    paths = []
    for name, indexes in (("a", range(25)), ("b", range(25, 40))):
        part = Report(warmup=[0.5])
        for i in indexes:
            kind, source, data = whole[i]
            outcome = "INTERNAL" if i == 30 else "OK"
            part.add(Timed(i, kind, source, outcome, 0.001 * i, "boom" if i == 30 else ""), data)
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(part.to_json(5, seeds)))
    total = merge(paths, seeds)
    assert sorted(t.number for t in total.packets) == list(range(40))
    assert total.outcomes == {"OK": 39, "INTERNAL": 1} and total.bad == 1
    assert total.failures == [("INTERNAL", "boom", whole[30][2])]
    with pytest.raises(SystemExit):
        merge([paths[0], paths[0]], seeds)  # overlapping chunks
    with pytest.raises(SystemExit):
        merge(paths, [*seeds, seeds[0]])  # other seed packets


@pytest.mark.slow
def test_a_thousand_mutated_packets_neither_crash_nor_hang(seeds: list[bytes]) -> None:
    report = fuzz(1000, seed=13, hang=120.0, seeds=seeds)
    assert sum(report.outcomes.values()) == 1000
    assert report.bad == 0, report.failures[:5]
    times = np.asarray(report.seconds) * 1000
    print(
        f"{dict(report.outcomes)}; p99 {np.percentile(times, 99):.0f} ms, max {times.max():.0f} ms"
    )
