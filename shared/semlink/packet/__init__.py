"""The semlink packet: container, limits, integrity and bit accounting."""

from semlink.packet.container import (
    DEFAULT_LIMITS,
    FORMAT_VERSION,
    Layer,
    Limits,
    Packet,
    bits_per_pixel,
    check_dimensions,
    layer_crc32c,
    parse,
    serialize,
)
from semlink.packet.errors import (
    EntropyMismatchError,
    FingerprintMismatchError,
    PacketError,
    PacketFormatError,
    PacketIntegrityError,
    PacketLimitError,
    PacketTruncatedError,
    PacketVersionError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_VERSION",
    "EntropyMismatchError",
    "FingerprintMismatchError",
    "Layer",
    "Limits",
    "Packet",
    "PacketError",
    "PacketFormatError",
    "PacketIntegrityError",
    "PacketLimitError",
    "PacketTruncatedError",
    "PacketVersionError",
    "bits_per_pixel",
    "check_dimensions",
    "layer_crc32c",
    "parse",
    "serialize",
]
