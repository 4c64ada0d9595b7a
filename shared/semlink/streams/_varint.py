"""Little helpers for the few integers a stream payload carries (LEB128 varints)."""

from __future__ import annotations

from semlink.packet.errors import PacketFormatError


def write_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints here are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, offset: int, what: str) -> tuple[int, int]:
    """Read one varint at ``offset``; return (value, next offset). ``what`` names it in errors."""
    value = 0
    for shift in range(0, 35, 7):
        if offset >= len(data):
            raise PacketFormatError(f"{what}: payload ends inside a varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
    raise PacketFormatError(f"{what}: varint longer than 5 bytes")
