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
diffusion step) in a worker process; the parent kills a worker that takes longer than
``--hang`` seconds (a hang) and restarts one that dies (a crash). Outcomes are counted by the
gRPC status the decoder service would answer (``semlink.serving.errors``); INTERNAL is an
exception that maps to no status (a bug).

    .venv/bin/python bench/bench_fuzz.py --packets 100000      # the issue's run
    .venv/bin/python bench/bench_fuzz.py --packets 1000        # what CI runs (tests/test_fuzz.py)
"""

from __future__ import annotations

import argparse
import os
import select
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


def _replace(packet, layers):  # type: ignore[no-untyped-def]
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


def _resolver():  # type: ignore[no-untyped-def]
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
    kind = MUTATIONS[rng.integers(len(MUTATIONS))]
    data = seeds[rng.integers(len(seeds))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.integers(1, 9)):
            out[rng.integers(len(out))] ^= 1 << rng.integers(8)
        return kind, bytes(out)
    if kind == "truncate":
        return kind, data[: rng.integers(len(data))]
    if kind == "splice":
        other = seeds[rng.integers(len(seeds))]
        return kind, data[: rng.integers(len(data) + 1)] + other[rng.integers(len(other) + 1) :]
    if kind == "length":
        fields = _length_fields(data)
        at, end = fields[rng.integers(len(fields))]
        length, _ = _read_varint(data, at)
        assert length is not None
        lie = int(rng.choice([0, max(0, length - 1), length + 1, length + 1000, (1 << 32) - 1]))
        return kind, data[:at] + _varint(lie) + data[end:]
    from semlink.packet import Layer, parse, serialize

    packet = parse(data)
    index = int(rng.integers(len(packet.layers)))
    layers = list(packet.layers)
    old = layers[index]
    layers[index] = Layer(old.kind, old.codec, _mutate_bytes(old.payload, rng))
    return kind, serialize(_replace(packet, tuple(layers)))


# -- the worker (one process, restarted after a crash or hang) ----------------------------------
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
        start = time.perf_counter()
        try:
            decode(data, models=models, restorer=False, steps=1)
            outcome, message = "OK", ""
        except Exception as exc:
            code = status_for(exc)
            outcome = code.name if code is not None else "INTERNAL"
            message = f"{type(exc).__name__}: {exc}"[:300]
        seconds = time.perf_counter() - start
        reply = f"{outcome}\t{seconds:.6f}\t{message}".encode()
        stdout.write(struct.pack("<I", len(reply)) + reply)
        stdout.flush()


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
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

    def decode(self, data: bytes, hang: float) -> tuple[str, float, str]:
        assert self.proc.stdin is not None
        start = time.perf_counter()
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "CRASH", 0.0, f"worker exited with {self.proc.wait()}"
        head = self._read(4, hang)
        if head is None:
            return "HANG", time.perf_counter() - start, f"no answer within {hang} s"
        if len(head) < 4:
            return "CRASH", time.perf_counter() - start, f"worker exited with {self.proc.wait()}"
        body = self._read(struct.unpack("<I", head)[0], hang) or b""
        outcome, seconds, message = body.decode(errors="replace").split("\t", 2)
        return outcome, float(seconds), message

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@dataclass
class Report:
    outcomes: Counter[str] = field(default_factory=Counter)
    by_mutation: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    failures: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(outcome, message, packet) of every crash, hang and INTERNAL."""

    @property
    def bad(self) -> int:
        return sum(self.outcomes[k] for k in ("CRASH", "HANG", "INTERNAL"))


def fuzz(
    packets: int,
    seed: int = 0,
    hang: float = 30.0,
    progress: bool = False,
    seeds: list[bytes] | None = None,
) -> Report:
    rng = np.random.default_rng(seed)
    seeds = seeds if seeds is not None else seed_packets()
    report = Report()
    worker = Worker()
    started = time.monotonic()
    try:
        for i in range(packets):
            kind, data = mutate(seeds, rng)
            outcome, seconds, message = worker.decode(data, hang)
            report.outcomes[outcome] += 1
            report.by_mutation.setdefault(kind, Counter())[outcome] += 1
            report.seconds.append(seconds)
            if outcome in ("CRASH", "HANG", "INTERNAL"):
                report.failures.append((outcome, message, data))
                if outcome != "INTERNAL":
                    worker.close()
                    worker = Worker()
            if progress and (i + 1) % 1000 == 0:
                rate = (i + 1) / (time.monotonic() - started)
                print(f"  {i + 1} packets, {rate:.1f}/s, {dict(report.outcomes)}", flush=True)
    finally:
        worker.close()
    return report


def main() -> None:
    if "--worker" in sys.argv:
        worker()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=float, default=30.0, help="Seconds that count as a hang.")
    parser.add_argument("--save", type=Path, help="Write crashing/hanging packets here.")
    parser.add_argument(
        "--seeds", type=Path, help="Seed packets file: read if it exists, else written."
    )
    args = parser.parse_args()
    start = time.monotonic()
    seeds = cached_seeds(args.seeds) if args.seeds else seed_packets()
    print(f"{len(seeds)} seed packets ({', '.join(str(len(s)) + ' B' for s in seeds)})")
    report = fuzz(args.packets, args.seed, args.hang, progress=True, seeds=seeds)
    times = np.asarray(report.seconds) * 1000
    print(f"{args.packets} mutated packets in {time.monotonic() - start:.0f} s")
    for kind, counts in sorted(report.by_mutation.items()):
        print(f"  {kind:9s} {dict(sorted(counts.items()))}")
    print(f"outcomes: {dict(sorted(report.outcomes.items()))}")
    print(
        f"crashes {report.outcomes['CRASH']}, hangs {report.outcomes['HANG']}, "
        f"INTERNAL {report.outcomes['INTERNAL']}"
    )
    print(
        f"decode time per packet: p50 {np.percentile(times, 50):.1f} ms, "
        f"p99 {np.percentile(times, 99):.1f} ms, max {times.max():.1f} ms"
    )
    for outcome, message, _ in report.failures[:10]:
        print(f"  {outcome}: {message}")
    if args.save and report.failures:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, (outcome, _, data) in enumerate(report.failures):
            (args.save / f"{i:05d}-{outcome}.slk").write_bytes(data)
    sys.exit(1 if report.bad else 0)


if __name__ == "__main__":
    main()
