"""The packet container: round trip, every limit, hostile bytes, integrity, accounting."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semlink.packet import (
    Layer,
    Limits,
    Packet,
    PacketError,
    PacketFormatError,
    PacketIntegrityError,
    PacketLimitError,
    PacketVersionError,
    bits_per_pixel,
    parse,
    serialize,
)
from semlink.v1 import packet_pb2

layers = st.lists(
    st.builds(
        Layer,
        kind=st.integers(0, 0xFFFF),
        codec=st.integers(0, 0xFFFF),
        payload=st.binary(max_size=300),
    ),
    max_size=6,
)


@given(
    width=st.integers(1, 16384),
    height=st.integers(1, 4096),
    profile=st.integers(0, 1000),
    fingerprint=st.integers(0, 2**32 - 1),
    seed=st.integers(0, 2**64 - 1),
    layers=layers,
)
def test_round_trip(
    width: int, height: int, profile: int, fingerprint: int, seed: int, layers: list[Layer]
) -> None:
    packet = Packet(width, height, profile, fingerprint, seed, tuple(layers))
    assert parse(serialize(packet)) == packet


@given(st.binary(max_size=2000))
@settings(max_examples=400)
def test_random_bytes_give_typed_errors_only(data: bytes) -> None:
    with contextlib.suppress(PacketError):
        parse(data)


def test_every_truncation_fails_typed_or_keeps_whole_layers() -> None:
    packet = Packet(
        640, 480, 0, 0xDEADBEEF, 0, (Layer(0, 1, bytes(range(200))), Layer(1, 0, b"caption"))
    )
    wire = serialize(packet)
    for cut in range(len(wire)):
        try:
            parsed = parse(wire[:cut])
        except PacketError:
            continue
        # A cut that still parses fell between fields: the layers it kept are whole.
        assert parsed.layers == packet.layers[: len(parsed.layers)]


@given(st.data())
def test_every_bit_flip_is_detected(data: st.DataObject) -> None:
    packet = Packet(
        640, 480, 0, 0xDEADBEEF, 0, (Layer(0, 1, bytes(range(200))), Layer(1, 0, b"caption"))
    )
    flipped = bytearray(serialize(packet))
    position = data.draw(st.integers(0, len(flipped) - 1))
    flipped[position] ^= 1 << data.draw(st.integers(0, 7))
    # Canonical form plus header-covering CRCs: no single flipped bit goes unnoticed.
    with pytest.raises(PacketError):
        parse(bytes(flipped))


def test_every_single_bit_flip_of_a_packet_is_caught() -> None:
    packet = Packet(
        640, 480, 0, 0xDEADBEEF, 0, (Layer(0, 1, bytes(range(200))), Layer(1, 0, b"caption"))
    )
    wire = serialize(packet)
    caught = 0
    for position in range(len(wire)):
        for bit in range(8):
            flipped = bytearray(wire)
            flipped[position] ^= 1 << bit
            with pytest.raises(PacketError):
                parse(bytes(flipped))
            caught += 1
    print(f"{caught} of {8 * len(wire)} single-bit flips caught")


def test_crc_covers_the_header_too() -> None:
    wire = bytearray(
        serialize(Packet(640, 480, model_fingerprint=5, layers=(Layer(0, 0, b"x" * 50),)))
    )
    size_field = wire.index(b"\x18") + 1  # the varint of `size` (field 3)
    wire[size_field] ^= 0x01  # width 640 -> 641: still a valid, canonical varint
    with pytest.raises(PacketIntegrityError, match="header"):
        parse(bytes(wire))


def test_non_canonical_packets_are_refused() -> None:
    wire = serialize(Packet(64, 64, layers=(Layer(1, 0, b"abc"),)))
    with pytest.raises(PacketFormatError, match="does not define"):
        parse(wire + b"\x40\x01")  # an unknown field 8 appended
    with pytest.raises(PacketFormatError, match="canonical"):
        parse(b"\x20\x00" + wire)  # profile 0 written explicitly, then again


def test_crc_catches_payload_damage() -> None:
    wire = bytearray(serialize(Packet(64, 64, layers=(Layer(0, 0, b"x" * 100),))))
    wire[-10] ^= 0x40
    with pytest.raises(PacketIntegrityError) as info:
        parse(bytes(wire))
    assert info.value.layer_index == 0
    assert "CRC32C" in str(info.value)


def test_unknown_version_is_refused() -> None:
    message = packet_pb2.Packet(format_version=7, size=64 | 64 << 16)
    with pytest.raises(PacketVersionError, match="version 7"):
        parse(message.SerializeToString())


@pytest.mark.parametrize(
    ("width", "height", "limits", "match"),
    [
        (0, 10, Limits(), "at least 1"),
        (20000, 10, Limits(), "at most 16384"),
        (10, 10, Limits(max_side=8), "at most 8"),
        (100, 100, Limits(max_pixels=9999), "at most 9999"),
    ],
)
def test_dimension_limits(width: int, height: int, limits: Limits, match: str) -> None:
    message = packet_pb2.Packet(size=width | height << 16)
    with pytest.raises(PacketLimitError, match=match):
        parse(message.SerializeToString(), limits)
    if width:
        with pytest.raises(PacketLimitError):
            serialize(Packet(width, height), limits)


def test_packet_and_layer_limits() -> None:
    wire = serialize(Packet(32, 32, layers=tuple(Layer(1, 0, b"ab") for _ in range(5))))
    with pytest.raises(PacketLimitError, match="at most 4 allowed"):
        parse(wire, Limits(max_layers=4))
    with pytest.raises(PacketLimitError, match="at most 10 bytes"):
        parse(wire, Limits(max_packet_bytes=10))
    with pytest.raises(PacketFormatError, match="empty"):
        parse(b"")
    message = packet_pb2.Packet(size=32 | 32 << 16, layers=[packet_pb2.Layer(kind=70000)])
    with pytest.raises(PacketFormatError, match="out of range"):
        parse(message.SerializeToString())


def test_header_and_framing_of_one_layer_packet_fit_16_bytes() -> None:
    """Header + framing <= 16 bytes for a one-layer packet of any realistic size.

    Framing is the bytes that only delimit (the layer's tag and length, the payload's tag
    and length). The layer descriptor (kind/codec ids, CRC32C) is counted apart and
    bounded too: the whole overhead of a one-layer packet is at most 23 bytes.
    """
    fingerprint = 0x9E3779B9
    for payload_size, codec in ((50, 1), (1400, 1), (16000, 4)):
        payload = bytes(payload_size)
        wire = serialize(
            Packet(768, 512, model_fingerprint=fingerprint, layers=(Layer(0, codec, payload),))
        )
        header = len(serialize(Packet(768, 512, model_fingerprint=fingerprint)))
        descriptor_ids = len(packet_pb2.Layer(kind=0, codec=codec).SerializeToString())
        crc = 5
        framing = len(wire) - header - len(payload) - descriptor_ids - crc
        print(
            f"one-layer packet, payload {payload_size} B: {len(wire)} B = header {header} + "
            f"framing {framing} + kind/codec {descriptor_ids} + CRC32C {crc} + payload"
        )
        assert header + framing <= 16
        assert len(wire) - len(payload) <= 23


def test_bits_per_pixel_counts_every_serialized_byte() -> None:
    packet = Packet(100, 50, model_fingerprint=1, layers=(Layer(0, 0, b"z" * 93),))
    wire = serialize(packet)
    assert bits_per_pixel(wire) == pytest.approx(8 * len(wire) / 5000)
    assert bits_per_pixel(packet) == bits_per_pixel(wire)
    assert len(wire) > 93 + 10  # header and framing are in the count
