"""Codec.decode_batch: several packets in one call, each result the one decode gives it alone.

lite's learned restorer runs once per group of equal-size pictures; a packet that cannot
be decoded comes back as its own exception and fails none of its neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from semlink.budget import Budget
from semlink.codec import Codec, DecodeCall, DecodeResult
from semlink.packet import PacketFormatError, PacketIntegrityError
from semlink.serving import status_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packets(lite: Codec, chelsea: np.ndarray, astronaut: np.ndarray) -> list[bytes]:
    """Two 160x120 pictures (one size: one restorer run) and one 128x96."""
    return [
        # A small budget: a reference under FIDELITY_MAX_SCALE, so the fidelity network runs.
        lite.encode(chelsea[60:180, 120:280], Budget(max_bytes=120)).data,
        lite.encode(astronaut[20:140, 140:300], Budget(max_bytes=250)).data,
        lite.encode(astronaut[300:396, 200:328], Budget(max_bytes=200)).data,
    ]


def test_batched_decode_equals_decoding_each_packet_alone(
    lite: Codec, packets: list[bytes]
) -> None:
    from semlink.restore import default_realism

    assert lite.models.restorer is not None, "the learned restorer is what batches"
    decode, decode_batch = lite.decode, lite.decode_batch
    calls: list[bytes | DecodeCall] = [
        *packets,
        DecodeCall(packets[1], realism=0.4),
        DecodeCall(packets[0], realism=0.0),
        DecodeCall(packets[2], realism=1.0),
    ]
    alone = [decode(p) for p in packets] + [
        decode(packets[1], realism=0.4),
        decode(packets[0], realism=0.0),
        decode(packets[2], realism=1.0),
    ]
    batched = decode_batch(calls)
    assert len(batched) == len(calls)
    for single, result in zip(alone, batched, strict=True):
        assert isinstance(result, DecodeResult)
        assert result.realism == single.realism
        assert result.layers_used == single.layers_used
        # Measured pixel-identical (batch 1 and batch N run the same per-picture float ops).
        assert np.array_equal(result.image, single.image)
    first = batched[0]
    assert isinstance(first, DecodeResult) and first.realism == default_realism()
    lanczos = decode(packets[0], restorer=False).image
    assert not np.array_equal(first.image, lanczos)  # the learned restorer ran
    assert decode_batch([]) == []


def test_a_bad_packet_fails_only_itself(lite: Codec, packets: list[bytes]) -> None:
    damaged = bytearray(packets[1])
    damaged[-12] ^= 0x10  # inside the reference payload: CRC32C catches it

    def deadline_passed() -> None:
        raise TimeoutError("deadline")

    calls: list[bytes | DecodeCall] = [
        packets[0],
        b"\xff\x00garbage",
        bytes(damaged),
        DecodeCall(packets[0], realism=1.5),
        DecodeCall(packets[1], check=deadline_passed),
        packets[2],
    ]
    out = lite.decode_batch(calls)
    assert isinstance(out[1], PacketFormatError)
    assert isinstance(out[2], PacketIntegrityError)
    assert isinstance(out[3], ValueError) and "realism" in str(out[3])
    assert isinstance(out[4], TimeoutError)
    codes = [status_for(e) for e in out[1:4] if isinstance(e, Exception)]
    assert [code and code.name for code in codes] == [
        "INVALID_ARGUMENT",
        "DATA_LOSS",
        "INVALID_ARGUMENT",
    ]
    for index, packet in ((0, packets[0]), (5, packets[2])):
        result = out[index]
        assert isinstance(result, DecodeResult)
        assert np.array_equal(result.image, lite.decode(packet).image)
