"""Typed errors for packet parsing. Each says what was wrong and what would be right.

The services map them to gRPC status codes (``semlink.serving.errors``; README, "Services"):
``PacketFormatError`` -> INVALID_ARGUMENT, ``PacketLimitError`` -> INVALID_ARGUMENT,
``PacketIntegrityError`` -> DATA_LOSS, ``PacketVersionError`` and
``FingerprintMismatchError`` -> FAILED_PRECONDITION.
"""

from __future__ import annotations


class PacketError(ValueError):
    """Base class of everything that can be wrong with a packet."""


class PacketFormatError(PacketError):
    """The bytes are not a semlink packet (not protobuf, or fields out of range)."""


class PacketLimitError(PacketError):
    """The packet or the image it describes exceeds a hard limit."""


class PacketIntegrityError(PacketError):
    """A layer's CRC32C does not match its content: the bytes were damaged in transit."""

    def __init__(self, message: str, layer_index: int) -> None:
        super().__init__(message)
        self.layer_index = layer_index


class PacketVersionError(PacketError):
    """The packet was written in a format version this decoder does not know."""


class FingerprintMismatchError(PacketError):
    """The packet was made for a different model set than the decoder holds."""

    def __init__(self, packet_fingerprint: int, decoder_fingerprint: int) -> None:
        super().__init__(
            f"packet was encoded for model set {packet_fingerprint:#010x} but this decoder "
            f"holds model set {decoder_fingerprint:#010x}; decode it with a decoder that "
            f"loads the same models (same profile and weights) as the encoder"
        )
        self.packet_fingerprint = packet_fingerprint
        self.decoder_fingerprint = decoder_fingerprint
