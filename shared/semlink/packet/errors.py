"""Typed errors for packet parsing. Each says what was wrong and what would be right.

The services map them to gRPC status codes (``semlink.serving.errors``; README, "Services"):
``PacketFormatError`` (``PacketTruncatedError`` included) -> INVALID_ARGUMENT,
``PacketLimitError`` -> INVALID_ARGUMENT, ``PacketIntegrityError`` and
``EntropyMismatchError`` -> DATA_LOSS, ``PacketVersionError`` and
``FingerprintMismatchError`` -> FAILED_PRECONDITION.
"""

from __future__ import annotations


class PacketError(ValueError):
    """Base class of everything that can be wrong with a packet."""


class PacketFormatError(PacketError):
    """The bytes are not a semlink packet (not protobuf, or fields out of range)."""


class PacketTruncatedError(PacketFormatError):
    """The bytes are the start of a semlink packet that was cut short: a layer (or a header
    field) runs past the end."""


class PacketLimitError(PacketError):
    """The packet or the image it describes exceeds a hard limit."""


class PacketIntegrityError(PacketError):
    """A layer's CRC32C does not match its content: the bytes were damaged in transit."""

    def __init__(self, message: str, layer_index: int) -> None:
        super().__init__(message)
        self.layer_index = layer_index


class EntropyMismatchError(PacketError):
    """A learned reference layer's entropy parameters (probability tables and per-symbol
    scale indexes, computed by floating-point networks) differ between encoder and decoder:
    decoding it would give a different picture, so it is refused instead."""

    def __init__(self, codec: str, packet_check: int, decoder_check: int) -> None:
        super().__init__(
            f"reference layer ({codec}) was entropy-coded with parameters {packet_check:#010x} "
            f"but this decoder computes {decoder_check:#010x}, so decoding would give a "
            "different picture than the encoder made. Either the layer was altered after "
            "encoding, or the two machines' floating-point arithmetic differs (CPU vector "
            "capability, thread count or library build): decode it where the encoder's "
            "arithmetic is reproduced (same CPU family, ATEN_CPU_CAPABILITY and torch threads "
            "as the encoder's), or re-encode with a standard reference codec (VVC decodes to "
            "the same picture everywhere)"
        )
        self.packet_check = packet_check
        self.decoder_check = decoder_check


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
