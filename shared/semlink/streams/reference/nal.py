"""Annex-B NAL units of a VVC stream: split, typed, and counted as the reference layer sends
them (the access-unit delimiter and the parameter sets, :data:`REBUILT`, are rebuilt by the
decoder, never sent)."""

from __future__ import annotations

from semlink.streams._varint import write_varint

AUD, VPS, SPS, PPS = 20, 14, 15, 16
REBUILT = (AUD, VPS, SPS, PPS)
"""NAL unit types the decoder rebuilds from the packet header."""


def nal_units(stream: bytes) -> list[bytes]:
    """NAL units (header included) of an Annex-B byte stream."""
    starts = []
    i = stream.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = stream.find(b"\x00\x00\x01", i + 3)
    units = []
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(stream)
        unit = stream[start:end]
        units.append(unit.rstrip(b"\x00") if n + 1 < len(starts) else unit)
    return units


def nal_type(unit: bytes) -> int:
    return (unit[1] >> 3) & 0x1F if len(unit) >= 2 else -1


def payload_size(stream: bytes) -> int:
    """Bytes :meth:`VvcCodec.pack` makes of ``stream`` (without checking its parameter sets)."""
    sent = [len(u) for u in nal_units(stream) if nal_type(u) not in REBUILT]
    head = sent[:-1]
    return (
        1
        + len(write_varint(len(head)))
        + sum(len(write_varint(n)) + n for n in sent[:-1])
        + (sent[-1] if sent else 0)
    )


def annex_b(units: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)
