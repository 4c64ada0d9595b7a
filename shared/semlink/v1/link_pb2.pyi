from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransmitRequest(_message.Message):
    __slots__ = ("packet", "seed")
    PACKET_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    packet: bytes
    seed: int
    def __init__(self, packet: _Optional[bytes] = ..., seed: _Optional[int] = ...) -> None: ...

class TransmitResponse(_message.Message):
    __slots__ = ("delivered", "stats")
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    delivered: bytes
    stats: LinkStats
    def __init__(self, delivered: _Optional[bytes] = ..., stats: _Optional[_Union[LinkStats, _Mapping]] = ...) -> None: ...

class LinkStats(_message.Message):
    __slots__ = ("profile", "frames_sent", "frames_dropped", "frames_retransmitted", "layers_sent", "layers_delivered", "airtime_seconds", "latency_seconds", "goodput_bps", "bytes_sent", "bytes_delivered")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SENT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RETRANSMITTED_FIELD_NUMBER: _ClassVar[int]
    LAYERS_SENT_FIELD_NUMBER: _ClassVar[int]
    LAYERS_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    AIRTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GOODPUT_BPS_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    profile: str
    frames_sent: int
    frames_dropped: int
    frames_retransmitted: int
    layers_sent: int
    layers_delivered: int
    airtime_seconds: float
    latency_seconds: float
    goodput_bps: float
    bytes_sent: int
    bytes_delivered: int
    def __init__(self, profile: _Optional[str] = ..., frames_sent: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., frames_retransmitted: _Optional[int] = ..., layers_sent: _Optional[int] = ..., layers_delivered: _Optional[int] = ..., airtime_seconds: _Optional[float] = ..., latency_seconds: _Optional[float] = ..., goodput_bps: _Optional[float] = ..., bytes_sent: _Optional[int] = ..., bytes_delivered: _Optional[int] = ...) -> None: ...
