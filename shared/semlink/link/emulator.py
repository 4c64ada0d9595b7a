"""Packets over an emulated narrow link, on a virtual clock.

A packet is cut into segments: its header fields, then each layer (the protobuf
encoding of ``repeated Layer`` is the concatenation of the layers, so header + any
subset of whole layers, in order, is again a valid packet). Segments are cut into
frames of at most ``mtu_bytes`` (frame header included) and sent on one channel
clock in priority order (header, then layers in packet order); each frame occupies
the channel for ``8 x bytes / rate`` seconds, then arrives after the propagation
delay plus jitter, unless the loss model drops it. With ARQ the sender learns of a
loss one round trip after the frame left and sends it again, ahead of lower-priority
frames. The header, without which nothing decodes, is sent ``header_copies`` times.
Whatever segments arrived whole by the deadline make the delivered packet.

Everything is seeded and runs on a virtual clock: a transmission is computed, not
waited for. The link service sleeps for the computed latency to play it in real time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from semlink.link.profiles import LinkProfile
from semlink.packet import parse
from semlink.v1 import packet_pb2


def split_packet(data: bytes) -> list[bytes]:
    """Cut serialized packet bytes into [header, layer 0, layer 1, ...] segments."""
    parse(data, verify_crc=False)  # refuse non-packets before cutting them
    message = packet_pb2.Packet()
    message.ParseFromString(data)
    layers = list(message.layers)
    del message.layers[:]
    header = message.SerializeToString(deterministic=True)
    segments = [header]
    for layer in layers:
        body = layer.SerializeToString(deterministic=True)
        segments.append(b"\x32" + _varint(len(body)) + body)  # field 6, length-delimited
    if b"".join(segments) != data:
        raise ValueError("packet is not in canonical field order; re-serialize it first")
    return segments


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@dataclass
class Delivery:
    """What one transmission did."""

    delivered: bytes
    """Header + layers that arrived whole by the deadline (empty if the header was lost)."""
    frames_sent: int
    frames_dropped: int
    frames_retransmitted: int
    layers_sent: int
    layers_delivered: int
    airtime_s: float
    latency_s: float
    """First bit sent to the arrival of the last delivered frame."""
    bytes_sent: int
    bytes_delivered: int

    @property
    def goodput_bps(self) -> float:
        return 8 * len(self.delivered) / self.latency_s if self.latency_s > 0 else 0.0


class LinkEmulator:
    """One channel; :meth:`transmit` is deterministic for a given profile and seed."""

    def __init__(self, profile: LinkProfile) -> None:
        if profile.mtu_bytes <= profile.frame_header_bytes:
            raise ValueError("mtu_bytes must exceed frame_header_bytes")
        if profile.rate_bps <= 0:
            raise ValueError("rate_bps must be positive")
        self.profile = profile

    def transmit(self, data: bytes, seed: int) -> Delivery:
        p = self.profile
        rng = np.random.default_rng(seed)
        segments = split_packet(data)
        room = p.mtu_bytes - p.frame_header_bytes
        # Frames waiting to be sent: (ready time, segment index, fragment index, attempt).
        # Among the frames ready now, the highest-priority one goes next.
        fragments = [max(1, math.ceil(len(s) / room)) for s in segments]
        queue = [(0.0, i, f, 0) for i, count in enumerate(fragments) for f in range(count)]
        queue += [(0.0, 0, f, 0) for f in range(fragments[0])] * (p.header_copies - 1)
        arrived: dict[int, set[int]] = {i: set() for i in range(len(segments))}
        arrival_time: dict[int, float] = {}
        clock = airtime = 0.0
        sent = dropped = retransmitted = bytes_sent = 0
        bad_state = False
        while queue:
            ready = [item for item in queue if item[0] <= clock]
            if not ready:
                clock = min(item[0] for item in queue)
                continue
            item = min(ready, key=lambda it: (it[1], it[2], it[0]))
            queue.remove(item)
            _, index, fragment, attempt = item
            if attempt and fragment in arrived[index]:
                continue  # no NACK: another copy of this fragment got through
            size = p.frame_header_bytes + min(room, len(segments[index]) - fragment * room)
            duration = 8 * size / p.rate_bps
            start = clock
            clock += duration
            airtime += duration
            sent += 1
            bytes_sent += size
            if attempt:
                retransmitted += 1
            # Channel state (Gilbert-Elliott) moves once per frame.
            if p.loss.p_good_to_bad > 0:
                u = rng.random()
                bad_state = u >= p.loss.p_bad_to_good if bad_state else u < p.loss.p_good_to_bad
            lost = rng.random() < (p.loss.loss_bad if bad_state else p.loss.loss_good)
            jitter = abs(rng.normal(0.0, p.jitter_s)) if p.jitter_s > 0 else 0.0
            arrival = clock + p.delay_s + jitter
            if lost:
                dropped += 1
                if attempt < p.arq_retries:
                    # The NACK comes back one round trip after the frame left.
                    queue.append((start + 2 * p.delay_s + duration, index, fragment, attempt + 1))
                continue
            if arrival <= p.deadline_s:
                arrived[index].add(fragment)
                if len(arrived[index]) == fragments[index]:
                    arrival_time[index] = arrival
            if clock >= p.deadline_s:
                break
        whole = [i for i in range(len(segments)) if i in arrival_time]
        delivered = b""
        if 0 in arrival_time:
            delivered = b"".join(segments[i] for i in whole)
        latency = max((arrival_time[i] for i in whole), default=0.0) if delivered else 0.0
        return Delivery(
            delivered=delivered,
            frames_sent=sent,
            frames_dropped=dropped,
            frames_retransmitted=retransmitted,
            layers_sent=len(segments) - 1,
            layers_delivered=max(0, len(whole) - 1) if delivered else 0,
            airtime_s=airtime,
            latency_s=latency,
            bytes_sent=bytes_sent,
            bytes_delivered=len(delivered),
        )
