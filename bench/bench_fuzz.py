"""Fuzz the decoder with mutated packets (issue 13.4): 0 crashes, 0 hangs, time per packet.

Seed packets cover every layer type (reference, caption, object, segmentation map) and every
reference codec id: lite packets (VVC reference, caption, two objects, a segmentation map),
the same packets with the reference re-coded by each classical codec (AVIF, HEVC, WebP,
JPEG-XL, JPEG), and sedic packets on tiny models whose reference is a learned codec
(bmshj2018 hyperprior, cheng2020-attn). Each fuzzed packet is one seed with one mutation:

- ``flip``: 1-8 random bits of the serialized packet flipped (the layer CRC catches most);
- ``truncate``: cut at a random length;
- ``splice``: the head of one packet joined to the tail of another at random points;
- ``length``: a protobuf length prefix (packet or layer field) replaced by a lie;
- ``payload``: one layer's payload flipped, truncated, extended or given a lying varint, and
  the packet re-serialized with a valid CRC, so the bytes reach the layer's own decoder.

Each packet goes through ``semlink.decode`` (lite without the restorer, sedic with one
diffusion step) in a worker process; the parent kills a worker that has spent ``--hang`` CPU
seconds (or ``--hang-wall`` wall seconds) on one packet (a hang) and restarts one that dies (a
crash). Outcomes are counted by the gRPC status the decoder service would answer
(``semlink.serving.errors``); INTERNAL is an exception that maps to no status (a bug). Time
per packet is printed as wall and CPU time (on a busy machine the CPU time is the figure),
for refused and for fully decoded packets apart.

Packet i is drawn from its own generator (``--seed``, i), so a run can be done in parts:
``--start``/``--packets`` pick the packets, ``--minutes`` (or SIGTERM/SIGINT) stops a part
early with what it has done, ``--out`` writes a part's results and ``--merge`` prints the
report of several parts.

    .venv/bin/python bench/bench_fuzz.py --packets 100000      # the issue's run
    .venv/bin/python bench/bench_fuzz.py --packets 1000        # what CI runs (tests/test_fuzz.py)
    .venv/bin/python bench/bench_fuzz.py --start 0 --minutes 40 --out out/fuzz/chunks/a.json
    .venv/bin/python bench/bench_fuzz.py --start N --minutes 40 --out out/fuzz/chunks/b.json
    .venv/bin/python bench/bench_fuzz.py --merge out/fuzz/chunks/*.json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fuzz.mutations import MUTATIONS, mutate, mutate_from, packet_rng
from bench.fuzz.report import Report, Timed, merge, summarize
from bench.fuzz.seeds import cached_seeds, seed_packets
from bench.fuzz.worker import Worker

__all__ = [
    "MUTATIONS",
    "Report",
    "Timed",
    "fuzz",
    "merge",
    "mutate",
    "mutate_from",
    "packet_rng",
    "seed_packets",
]


def fuzz(
    packets: int,
    seed: int = 0,
    hang: float = 30.0,
    progress: bool = False,
    seeds: list[bytes] | None = None,
    start: int = 0,
    minutes: float | None = None,
    hang_wall: float = 1800.0,
) -> Report:
    """Decode fuzzed packets ``start`` .. ``start + packets - 1`` (packet i is drawn from
    ``packet_rng(seed, i)``), stopping early after ``minutes`` if given, or at SIGTERM or
    SIGINT (the packets done so far are the report). A hang: ``hang`` CPU seconds or
    ``hang_wall`` wall seconds on one packet."""
    seeds = seeds if seeds is not None else seed_packets()
    report = Report()
    stopping: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, _: stopping.append(number))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    worker = Worker()
    report.warmup = worker.warm(seeds, hang, hang_wall)
    began = time.monotonic()
    stop = began + 60 * minutes if minutes is not None else None
    try:
        for i in range(start, start + packets):
            if stopping or (stop is not None and time.monotonic() >= stop):
                break
            kind, source, data = mutate_from(seeds, packet_rng(seed, i))
            outcome, seconds, cpu, message = worker.decode(data, hang, hang_wall)
            report.add(Timed(i, kind, source, outcome, seconds, message, cpu), data)
            if outcome in ("CRASH", "HANG"):
                print(f"  packet {i}: {outcome}: {message}", flush=True)
                worker.close()
                worker = Worker()
                worker.warm(seeds, hang, hang_wall)
            done = i + 1 - start
            if progress and done % 500 == 0:
                elapsed = time.monotonic() - began
                print(
                    f"  {done} packets in {elapsed:.0f} s ({done / elapsed:.1f}/s), "
                    f"{dict(report.outcomes)}",
                    flush=True,
                )
    finally:
        worker.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopping:
        print(f"  stopped by signal {stopping[0]} after {len(report.packets)} packets")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--start", type=int, default=0, help="Index of the first packet.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hang", type=float, default=30.0, help="CPU seconds on one packet that count as a hang."
    )
    parser.add_argument(
        "--hang-wall", type=float, default=1800.0, help="Wall seconds that count as a hang."
    )
    parser.add_argument(
        "--minutes", type=float, help="Stop after this long (the packets done are reported)."
    )
    parser.add_argument("--save", type=Path, help="Write crashing/hanging packets here.")
    parser.add_argument(
        "--seeds", type=Path, help="Seed packets file: read if it exists, else written."
    )
    parser.add_argument("--out", type=Path, help="Write this chunk's results here (JSON).")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="Decode nothing: print the summary of chunks written with --out.",
    )
    args = parser.parse_args()
    start = time.monotonic()
    seeds = cached_seeds(args.seeds) if args.seeds else seed_packets()
    print(f"{len(seeds)} seed packets ({', '.join(str(len(s)) + ' B' for s in seeds)})")
    if args.merge:
        report = merge(args.merge, seeds)
    else:
        report = fuzz(
            args.packets,
            args.seed,
            args.hang,
            progress=True,
            seeds=seeds,
            start=args.start,
            minutes=args.minutes,
            hang_wall=args.hang_wall,
        )
        print(f"decoded in {time.monotonic() - start:.0f} s (seed {args.seed})")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report.to_json(args.seed, seeds)))
    summarize(report, seeds)
    if args.save and report.failures:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, (outcome, _, data) in enumerate(report.failures):
            (args.save / f"{i:05d}-{outcome}.slk").write_bytes(data)
    sys.exit(1 if report.bad else 0)


if __name__ == "__main__":
    main()
