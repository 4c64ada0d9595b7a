"""Mutations of seed packets: bit flips, truncation, splices, lying length prefixes, and layer
payloads mutated behind a valid CRC."""

from __future__ import annotations

import numpy as np

from semlink.streams._varint import write_varint

from .seeds import replace_layers

MUTATIONS = ("flip", "truncate", "splice", "length", "payload")


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


def _flip_bits(data: bytes, rng: np.random.Generator) -> bytes:
    """1-8 random bits of ``data`` flipped."""
    out = bytearray(data)
    for _ in range(rng.integers(1, 9)):
        out[rng.integers(len(out))] ^= 1 << rng.integers(8)
    return bytes(out)


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """Flip, truncate, extend, or put a lying varint into ``data``."""
    choice = rng.integers(4)
    if choice == 0 and data:
        return _flip_bits(data, rng)
    if choice == 1:
        return data[: rng.integers(len(data) + 1)]
    if choice == 2:
        return data + rng.bytes(int(rng.integers(1, 64)))
    at = int(rng.integers(len(data) + 1))
    lie = int(rng.choice([0, 1, 127, 128, 255, 1 << 14, 1 << 21, 1 << 28, (1 << 32) - 1]))
    return data[:at] + write_varint(lie) + data[at + 1 :]


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
        return kind, source, _flip_bits(data, rng)
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
        return kind, source, data[:at] + write_varint(lie) + data[end:]
    from semlink.packet import Layer, parse, serialize

    packet = parse(data)
    index = int(rng.integers(len(packet.layers)))
    layers = list(packet.layers)
    old = layers[index]
    layers[index] = Layer(old.kind, old.codec, _mutate_bytes(old.payload, rng))
    return kind, source, serialize(replace_layers(packet, tuple(layers)))
