from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EncodeRequest(_message.Message):
    __slots__ = ("image", "profile", "max_bytes", "target_bpp", "hints", "realism", "semantics_only")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TARGET_BPP_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    REALISM_FIELD_NUMBER: _ClassVar[int]
    SEMANTICS_ONLY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    profile: str
    max_bytes: int
    target_bpp: float
    hints: EncodeHints
    realism: float
    semantics_only: bool
    def __init__(self, image: _Optional[bytes] = ..., profile: _Optional[str] = ..., max_bytes: _Optional[int] = ..., target_bpp: _Optional[float] = ..., hints: _Optional[_Union[EncodeHints, _Mapping]] = ..., realism: _Optional[float] = ..., semantics_only: _Optional[bool] = ...) -> None: ...

class EncodeHints(_message.Message):
    __slots__ = ("caption", "objects")
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    caption: str
    objects: _containers.RepeatedCompositeFieldContainer[ObjectHint]
    def __init__(self, caption: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[ObjectHint, _Mapping]]] = ...) -> None: ...

class ObjectHint(_message.Message):
    __slots__ = ("description", "mask_png")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MASK_PNG_FIELD_NUMBER: _ClassVar[int]
    description: str
    mask_png: bytes
    def __init__(self, description: _Optional[str] = ..., mask_png: _Optional[bytes] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("packet", "stats")
    PACKET_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    packet: bytes
    stats: EncodeStats
    def __init__(self, packet: _Optional[bytes] = ..., stats: _Optional[_Union[EncodeStats, _Mapping]] = ...) -> None: ...

class EncodeStats(_message.Message):
    __slots__ = ("packet_bytes", "bits_per_pixel", "layers", "stage_seconds", "queue_seconds", "width", "height")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PACKET_BYTES_FIELD_NUMBER: _ClassVar[int]
    BITS_PER_PIXEL_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    packet_bytes: int
    bits_per_pixel: float
    layers: _containers.RepeatedCompositeFieldContainer[LayerBytes]
    stage_seconds: _containers.ScalarMap[str, float]
    queue_seconds: float
    width: int
    height: int
    def __init__(self, packet_bytes: _Optional[int] = ..., bits_per_pixel: _Optional[float] = ..., layers: _Optional[_Iterable[_Union[LayerBytes, _Mapping]]] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., queue_seconds: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class LayerBytes(_message.Message):
    __slots__ = ("kind", "bytes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    bytes: int
    def __init__(self, kind: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...
