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
import hashlib
import json
import math
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from semlink.packet import Layer, Packet
    from semlink.resolver import Resolver

ROOT = Path(__file__).resolve().parent.parent
MUTATIONS = ("flip", "truncate", "splice", "length", "payload")


# -- seed packets -------------------------------------------------------------------------------
def seed_packets() -> list[bytes]:
    """Valid packets: every layer kind, every reference codec id a decoder may hold."""
    import skimage.data

    from semlink import ObjectHint, encode
    from semlink.packet import Layer, parse, serialize
    from semlink.streams import LayerKind
    from semlink.streams.reference import CLASSICAL, encode_reference

    image = np.ascontiguousarray(skimage.data.chelsea()[::4, ::4])  # 113 x 75
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[10:50, 30:90] = True
    segmap = (np.arange(h)[:, None] // 25 + np.arange(w)[None, :] // 40).astype(np.uint8)
    lite = encode(
        image,
        "lite",
        max_bytes=700,
        caption="a tabby cat on a red blanket",
        objects=[ObjectHint("a cat's face", mask), ObjectHint("a blanket", ~mask)],
        segmap=segmap,
    ).data
    seeds = [lite]
    packet = parse(lite)
    for codec in CLASSICAL:
        found = encode_reference(image, 400, codecs=(codec,))
        if found is None:
            continue
        codec_id, payload, _ = found
        layers = tuple(
            Layer(int(LayerKind.REFERENCE), codec_id, payload)
            if layer.kind == LayerKind.REFERENCE
            else layer
            for layer in packet.layers
        )
        seeds.append(serialize(_replace(packet, layers)))
    seeds.extend(_sedic_seeds(image))
    return seeds


def cached_seeds(path: Path) -> list[bytes]:
    """Seed packets from ``path`` (length-prefixed), made and written there if absent."""
    if path.exists():
        data, seeds, i = path.read_bytes(), [], 0
        while i < len(data):
            (n,) = struct.unpack_from("<I", data, i)
            seeds.append(data[i + 4 : i + 4 + n])
            i += 4 + n
        return seeds
    seeds = seed_packets()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(struct.pack("<I", len(s)) + s for s in seeds))
    return seeds


def _replace(packet: Packet, layers: tuple[Layer, ...]) -> Packet:
    from dataclasses import replace

    return replace(packet, layers=layers)


def _sedic_seeds(image: np.ndarray) -> list[bytes]:
    """sedic packets on tiny models, one per learned reference codec id."""
    from semlink import encode
    from semlink.packet import parse, serialize
    from semlink.streams import LayerKind
    from semlink.streams.reference import pack_learned

    models = _resolver()
    packet = encode(image, "sedic", max_bytes=600, caption="a cat", models=models).data
    parsed = parse(packet)
    out = [packet]
    h, w = image.shape[:2]
    held = models.models(parsed.profile).reference_codecs
    from semlink.imaging import resize
    from semlink.streams.reference import LEARNED
    from semlink.streams.reference.base import small_size

    for codec_id, name in LEARNED.items():
        chosen = [c for c in held if c.config.architecture == name]
        if not chosen:
            continue  # the TAEF2 latent codec is not among the tiny models
        k = 96
        payload = pack_learned(k, 0, *chosen[0].compress(resize(image, *small_size(w, h, k))))
        layers = tuple(
            type(layer)(layer.kind, int(codec_id), payload)
            if layer.kind == LayerKind.REFERENCE
            else layer
            for layer in parsed.layers
        )
        out.append(serialize(_replace(parsed, layers)))
    return out


def _resolver() -> Resolver:
    from semlink.config import settings
    from semlink.resolver import Resolver

    return Resolver(settings().model_copy(update={"tiny_models": True}))


# -- mutations ----------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, end) of every length prefix of a length-delimited protobuf field, at the top
    level and inside each layer message."""
    found: list[tuple[int, int]] = []

    def walk(start: int, end: int, depth: int) -> None:
        i = start
        while i < end:
            key, i = _read_varint(data, i)
            if key is None:
                return
            wire = key & 7
            if wire == 0:
                _, i = _read_varint(data, i)
                if i is None:
                    return
            elif wire == 5:
                i += 4
            elif wire == 1:
                i += 8
            elif wire == 2:
                at = i
                length, i = _read_varint(data, i)
                if length is None:
                    return
                found.append((at, i))
                if depth == 0 and key >> 3 == 6:
                    walk(i, min(end, i + length), 1)
                i += length
            else:
                return

    walk(0, len(data), 0)
    return found


def _read_varint(data: bytes, i: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while i < len(data) and shift < 64:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
    return None, i


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """Flip, truncate, extend, or put a lying varint into ``data``."""
    choice = rng.integers(4)
    if choice == 0 and data:
        out = bytearray(data)
        for _ in range(rng.integers(1, 9)):
            out[rng.integers(len(out))] ^= 1 << rng.integers(8)
        return bytes(out)
    if choice == 1:
        return data[: rng.integers(len(data) + 1)]
    if choice == 2:
        return data + rng.bytes(int(rng.integers(1, 64)))
    at = int(rng.integers(len(data) + 1))
    lie = int(rng.choice([0, 1, 127, 128, 255, 1 << 14, 1 << 21, 1 << 28, (1 << 32) - 1]))
    return data[:at] + _varint(lie) + data[at + 1 :]


def mutate(seeds: list[bytes], rng: np.random.Generator) -> tuple[str, bytes]:
    kind, _, data = mutate_from(seeds, rng)
    return kind, data


def packet_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of fuzzed packet ``index``: any packet, and so any chunk of a run, can be
    drawn again without drawing the ones before it."""
    return np.random.default_rng([seed, index])


def mutate_from(seeds: list[bytes], rng: np.random.Generator) -> tuple[str, int, bytes]:
    """(mutation, index of the seed it started from, mutated packet)."""
    kind = MUTATIONS[rng.integers(len(MUTATIONS))]
    source = int(rng.integers(len(seeds)))
    data = seeds[source]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.integers(1, 9)):
            out[rng.integers(len(out))] ^= 1 << rng.integers(8)
        return kind, source, bytes(out)
    if kind == "truncate":
        return kind, source, data[: rng.integers(len(data))]
    if kind == "splice":
        other = seeds[rng.integers(len(seeds))]
        return (
            kind,
            source,
            data[: rng.integers(len(data) + 1)] + other[rng.integers(len(other) + 1) :],
        )
    if kind == "length":
        fields = _length_fields(data)
        at, end = fields[rng.integers(len(fields))]
        length, _ = _read_varint(data, at)
        assert length is not None
        lie = int(rng.choice([0, max(0, length - 1), length + 1, length + 1000, (1 << 32) - 1]))
        return kind, source, data[:at] + _varint(lie) + data[end:]
    from semlink.packet import Layer, parse, serialize

    packet = parse(data)
    index = int(rng.integers(len(packet.layers)))
    layers = list(packet.layers)
    old = layers[index]
    layers[index] = Layer(old.kind, old.codec, _mutate_bytes(old.payload, rng))
    return kind, source, serialize(_replace(packet, tuple(layers)))


# -- the worker (one process, restarted after a crash or hang) ----------------------------------
def _cpu_seconds() -> float:
    """CPU seconds of this process's threads and of the children it has waited for (the codec
    programs a decode runs)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def worker() -> None:
    """Read length-prefixed packets on stdin; answer outcome, seconds and message."""
    from semlink.codec import decode
    from semlink.serving.errors import status_for

    models = _resolver()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")
    stdout.flush()
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return
        data = stdin.read(struct.unpack("<I", head)[0])
        start, cpu = time.perf_counter(), _cpu_seconds()
        try:
            decode(data, models=models, restorer=False, steps=1)
            outcome, message = "OK", ""
        except Exception as exc:
            code = status_for(exc)
            outcome = code.name if code is not None else "INTERNAL"
            message = f"{type(exc).__name__}: {exc}"[:300]
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        reply = f"{outcome}\t{seconds:.6f}\t{cpu:.6f}\t{message}".encode()
        stdout.write(struct.pack("<I", len(reply)) + reply)
        stdout.flush()


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            # ROOT first, then the caller's path (a run pinned to another checkout keeps it).
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
                ),
            },
        )
        assert self._read(1, timeout=1800) == b"R", "fuzz worker did not start"

    def _read(self, n: int, timeout: float) -> bytes | None:
        assert self.proc.stdout is not None
        out = b""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while len(out) < n:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(out))
            if not chunk:
                return out
            out += chunk
        return out

    def cpu(self) -> float:
        """CPU seconds the worker process has used (its threads; not its running children)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def decode(
        self, data: bytes, hang: float, hang_wall: float = 1800.0
    ) -> tuple[str, float, float, str]:
        """(outcome, wall seconds, CPU seconds, message) of one packet. A hang is a packet
        that has used ``hang`` CPU seconds, or ``hang_wall`` wall seconds, without an answer:
        on a busy machine wall time alone says more about the machine than about the
        decoder."""
        assert self.proc.stdin is not None
        start, cpu = time.perf_counter(), self.cpu()
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "CRASH", 0.0, 0.0, f"worker exited with {self.proc.wait()}"
        while (head := self._read(4, min(hang, 5.0))) is None:
            used, waited = self.cpu() - cpu, time.perf_counter() - start
            if used >= hang or waited >= hang_wall:
                return (
                    "HANG",
                    waited,
                    used,
                    (
                        f"no answer after {used:.1f} CPU s, {waited:.0f} s wall "
                        f"(limits {hang} CPU s, {hang_wall} s wall)"
                    ),
                )
        if len(head) < 4:
            wall = time.perf_counter() - start
            return "CRASH", wall, 0.0, f"worker exited with {self.proc.wait()}"
        body = self._read(struct.unpack("<I", head)[0], hang_wall) or b""
        outcome, seconds, cpu_text, message = body.decode(errors="replace").split("\t", 3)
        return outcome, float(seconds), float(cpu_text), message

    def warm(self, seeds: list[bytes], hang: float, hang_wall: float) -> list[float]:
        """Decode each seed once (models load, first calls): wall seconds each."""
        return [self.decode(s, hang, hang_wall)[1] for s in seeds]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


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


BAD = ("CRASH", "HANG", "INTERNAL")


def seeds_digest(seeds: list[bytes]) -> str:
    digest = hashlib.sha256()
    for s in seeds:
        digest.update(struct.pack("<I", len(s)) + s)
    return digest.hexdigest()


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


# -- the summary --------------------------------------------------------------------------------
def seed_labels(seeds: list[bytes]) -> list[str]:
    """'lite ref 8' and the like: each seed's profile and reference codec id."""
    from semlink.packet import parse
    from semlink.profiles import get_profile
    from semlink.streams import LayerKind

    labels = []
    for s in seeds:
        packet = parse(s)
        ref = [layer.codec for layer in packet.layers if layer.kind == LayerKind.REFERENCE]
        labels.append(f"{get_profile(packet.profile).name} ref {ref[0] if ref else '-'}")
    return labels


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


def main() -> None:
    if "--worker" in sys.argv:
        worker()
        return
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


if __name__ == "__main__":
    main()
