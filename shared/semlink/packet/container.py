"""The packet container: build, serialize, parse with hard limits, check CRC32C, count bits.

Everything that reports a rate calls :func:`bits_per_pixel`, which counts the real
serialized bytes, header and framing included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import google_crc32c
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from semlink.packet.errors import (
    PacketFormatError,
    PacketIntegrityError,
    PacketLimitError,
    PacketTruncatedError,
    PacketVersionError,
)
from semlink.v1 import packet_pb2

FORMAT_VERSION = 0
"""The packet layout this code writes and reads (0 = first layout, omitted on the wire)."""
MAX_REALISM = 100
"""The header's realism is in hundredths: 0 (fidelity) .. 100."""


@dataclass(frozen=True)
class Limits:
    """Hard limits enforced before any stream decoder sees the bytes."""

    max_packet_bytes: int = 4 * 1024 * 1024
    max_side: int = 16384
    max_pixels: int = 64 * 1024 * 1024
    max_layers: int = 64
    max_id: int = 0xFFFF
    """Largest layer kind or codec id."""


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Layer:
    """One stream's bytes; ``kind`` and ``codec`` are small ids named in ``semlink.streams``."""

    kind: int
    codec: int
    payload: bytes


@dataclass(frozen=True)
class Packet:
    """An encoded image: header fields plus layers in priority order."""

    width: int
    height: int
    profile: int = 0
    model_fingerprint: int = 0
    seed: int = 0
    layers: tuple[Layer, ...] = field(default_factory=tuple)
    realism: int = 0
    """Realism asked of the decoder's restorer, in hundredths (0 fidelity .. 100)."""

    def layer_bytes(self) -> list[int]:
        """Serialized size of each layer inside the packet, framing and CRC included, in bytes."""
        sizes = []
        header = _header_message(self).SerializeToString(deterministic=True)
        for layer in self.layers:
            n = len(_layer_message(layer, header).SerializeToString())
            sizes.append(1 + _varint_len(n) + n)  # field tag + length + message
        return sizes


def _varint_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def layer_crc32c(header: bytes, kind: int, codec: int, payload: bytes) -> int:
    """CRC32C over the packet header, the layer's kind and codec, and its payload.

    Covering the header costs no bytes and means a damaged width, profile or fingerprint
    is caught as DATA_LOSS instead of decoding into a wrong image.
    """
    return int(google_crc32c.value(header + struct.pack("<HH", kind, codec) + payload))


def _header_message(packet: Packet) -> packet_pb2.Packet:
    return packet_pb2.Packet(
        format_version=FORMAT_VERSION,
        model_fingerprint=packet.model_fingerprint,
        size=packet.width | packet.height << 16 | packet.realism << 32,
        profile=packet.profile,
        seed=packet.seed,
    )


def _layer_message(layer: Layer, header: bytes) -> packet_pb2.Layer:
    return packet_pb2.Layer(
        kind=layer.kind,
        codec=layer.codec,
        payload=layer.payload,
        crc32c=layer_crc32c(header, layer.kind, layer.codec, layer.payload),
    )


def check_dimensions(width: int, height: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise :class:`PacketLimitError` unless ``width`` x ``height`` is an image we accept."""
    if width < 1 or height < 1:
        raise PacketLimitError(f"image is {width}x{height} pixels; both sides must be at least 1")
    if width > limits.max_side or height > limits.max_side:
        raise PacketLimitError(
            f"image is {width}x{height} pixels; each side must be at most {limits.max_side}"
        )
    if width * height > limits.max_pixels:
        raise PacketLimitError(
            f"image has {width * height} pixels; at most {limits.max_pixels} are accepted"
        )


def serialize(packet: Packet, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Serialize to the wire format. Refuses packets that :func:`parse` would refuse."""
    check_dimensions(packet.width, packet.height, limits)
    if len(packet.layers) > limits.max_layers:
        raise PacketLimitError(f"{len(packet.layers)} layers; at most {limits.max_layers} allowed")
    for layer in packet.layers:
        if not (0 <= layer.kind <= limits.max_id and 0 <= layer.codec <= limits.max_id):
            raise PacketFormatError(f"layer kind {layer.kind} / codec {layer.codec} out of range")
    if not 0 <= packet.model_fingerprint <= 0xFFFFFFFF:
        raise PacketFormatError("model fingerprint must fit in 32 bits")
    if not 0 <= packet.seed < 2**64:
        raise PacketFormatError("seed must fit in 64 bits")
    if not 0 <= packet.realism <= MAX_REALISM:
        raise PacketFormatError(f"realism is {packet.realism}; it must be 0..{MAX_REALISM}")
    message = _header_message(packet)
    header = message.SerializeToString(deterministic=True)
    message.layers.extend(_layer_message(layer, header) for layer in packet.layers)
    data = message.SerializeToString(deterministic=True)
    if len(data) > limits.max_packet_bytes:
        raise PacketLimitError(
            f"packet is {len(data)} bytes; at most {limits.max_packet_bytes} bytes allowed"
        )
    return data


_FIELDS = {1: ("format version", 0), 2: ("model fingerprint", 5), 3: ("size", 0)}
_FIELDS |= {4: ("profile", 0), 5: ("seed", 0), 6: ("layer", 2)}
"""The packet message's fields: number -> (name, protobuf wire type)."""


def _truncation(data: bytes) -> str | None:
    """What a packet cut short says it needed ("layer 1 says 431"), or None when ``data`` is
    not the start of a semlink packet (a field it does not define comes before the end).

    Walks the packet message's fields as protobuf lays them out: every tag up to the end
    must be one of the packet's fields with its wire type (each fits one byte); the cut
    falls inside the last one's value or length."""
    n, pos, layer = len(data), 0, 0

    def varint_end(at: int) -> int | None:
        while at < n:
            if not data[at] & 0x80:
                return at + 1
            at += 1
        return None

    while pos < n:
        tag = data[pos]
        field = _FIELDS.get(tag >> 3)
        if tag & 0x80 or field is None or field[1] != tag & 7:
            return None
        name, wire = field
        pos += 1
        if wire == 0:
            end = varint_end(pos)
            if end is None:
                return f"its header's {name} field says at least {n + 1}"
            pos = end
        elif wire == 5:
            if pos + 4 > n:
                return f"its header's {name} field says {pos + 4}"
            pos += 4
        else:
            end = varint_end(pos)
            if end is None:
                return f"layer {layer}'s length is cut short, at least {n + 1}"
            length = 0
            for shift, byte in enumerate(data[pos:end]):
                length |= (byte & 0x7F) << (7 * shift)
            pos = end + length
            if pos > n:
                return f"layer {layer} says {pos}"
            layer += 1
    return None


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS, *, verify_crc: bool = True) -> Packet:
    """Parse hostile bytes into a :class:`Packet`, enforcing every limit.

    Raises a subclass of :class:`semlink.packet.PacketError`, never anything else.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PacketFormatError(f"packet must be bytes, got {type(data).__name__}")
    if len(data) > limits.max_packet_bytes:
        raise PacketLimitError(
            f"packet is {len(data)} bytes; at most {limits.max_packet_bytes} bytes allowed"
        )
    if len(data) == 0:
        raise PacketFormatError("packet is empty; a semlink packet has at least a header")
    message = packet_pb2.Packet()
    try:
        message.ParseFromString(bytes(data))
    except (DecodeError, RuntimeError, ValueError) as exc:
        cut = _truncation(bytes(data))
        if cut is not None:
            raise PacketTruncatedError(
                f"packet is truncated: {len(data)} bytes, {cut}: it was cut short in transit "
                "or while copying; receive or copy the whole packet"
            ) from exc
        raise PacketFormatError(f"not a semlink packet (protobuf decode failed: {exc})") from exc
    # Protobuf keeps fields it does not know and accepts duplicates: damaged framing can
    # parse "successfully" into something else. A semlink packet has no unknown fields and
    # is written canonically, so anything else was altered.
    if any(len(UnknownFieldSet(m)) for m in (message, *message.layers)):
        raise PacketFormatError(
            "packet has fields this format version does not define: it was damaged in transit "
            "or written by an incompatible encoder"
        )
    if message.SerializeToString(deterministic=True) != bytes(data):
        raise PacketFormatError(
            "packet is not in canonical form (unknown or repeated fields, or damaged framing): "
            "it was altered in transit or written by an incompatible encoder"
        )
    if message.format_version != FORMAT_VERSION:
        raise PacketVersionError(
            f"packet format version {message.format_version} is unknown; this decoder reads "
            f"version {FORMAT_VERSION}: upgrade the decoder or re-encode with a matching encoder"
        )
    width, height = message.size & 0xFFFF, (message.size >> 16) & 0xFFFF
    realism = message.size >> 32
    check_dimensions(width, height, limits)
    if realism > MAX_REALISM:
        raise PacketFormatError(
            f"size field {message.size:#x} packs a realism of {realism}; at most "
            f"{MAX_REALISM} (hundredths) is defined"
        )
    if len(message.layers) > limits.max_layers:
        raise PacketLimitError(
            f"packet has {len(message.layers)} layers; at most {limits.max_layers} allowed"
        )
    header = packet_pb2.Packet()
    header.CopyFrom(message)
    del header.layers[:]
    header_bytes = header.SerializeToString(deterministic=True)
    layers = []
    for index, msg in enumerate(message.layers):
        if msg.kind > limits.max_id or msg.codec > limits.max_id:
            raise PacketFormatError(
                f"layer {index}: kind {msg.kind} / codec {msg.codec} out of range "
                f"(at most {limits.max_id})"
            )
        if (
            verify_crc
            and layer_crc32c(header_bytes, msg.kind, msg.codec, msg.payload) != msg.crc32c
        ):
            raise PacketIntegrityError(
                f"layer {index} (kind {msg.kind}) failed its CRC32C check: the layer or the "
                f"packet header was damaged in transit; drop it or request retransmission",
                layer_index=index,
            )
        layers.append(Layer(kind=msg.kind, codec=msg.codec, payload=bytes(msg.payload)))
    return Packet(
        width=width,
        height=height,
        profile=message.profile,
        model_fingerprint=message.model_fingerprint,
        seed=message.seed,
        layers=tuple(layers),
        realism=realism,
    )


def bits_per_pixel(
    data: bytes | Packet, width: int | None = None, height: int | None = None
) -> float:
    """Bits per pixel of a packet: 8 x serialized bytes / (width x height of the original image).

    Pass the serialized bytes (preferred) or a :class:`Packet`, which is serialized to count.
    Width and height default to the packet's own header.
    """
    if isinstance(data, Packet):
        packet = data
        data = serialize(packet)
    else:
        packet = parse(data, verify_crc=False)
    w = packet.width if width is None else width
    h = packet.height if height is None else height
    return 8.0 * len(data) / (w * h)
