from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
    IMAGE_FORMAT_RAW_RGB: _ClassVar[ImageFormat]

class DecodeStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECODE_STAGE_UNSPECIFIED: _ClassVar[DecodeStage]
    DECODE_STAGE_PREVIEW: _ClassVar[DecodeStage]
    DECODE_STAGE_FINAL: _ClassVar[DecodeStage]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
IMAGE_FORMAT_RAW_RGB: ImageFormat
DECODE_STAGE_UNSPECIFIED: DecodeStage
DECODE_STAGE_PREVIEW: DecodeStage
DECODE_STAGE_FINAL: DecodeStage

class DecodeOptions(_message.Message):
    __slots__ = ("seed", "steps", "format", "realism")
    SEED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    REALISM_FIELD_NUMBER: _ClassVar[int]
    seed: int
    steps: int
    format: ImageFormat
    realism: float
    def __init__(self, seed: _Optional[int] = ..., steps: _Optional[int] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., realism: _Optional[float] = ...) -> None: ...

class DecodeRequest(_message.Message):
    __slots__ = ("packet", "options")
    PACKET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    packet: bytes
    options: DecodeOptions
    def __init__(self, packet: _Optional[bytes] = ..., options: _Optional[_Union[DecodeOptions, _Mapping]] = ...) -> None: ...

class DecodeStreamRequest(_message.Message):
    __slots__ = ("packet", "options")
    PACKET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    packet: bytes
    options: DecodeOptions
    def __init__(self, packet: _Optional[bytes] = ..., options: _Optional[_Union[DecodeOptions, _Mapping]] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("image", "stats", "caption", "object_descriptions")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    stats: DecodeStats
    caption: str
    object_descriptions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image: _Optional[bytes] = ..., stats: _Optional[_Union[DecodeStats, _Mapping]] = ..., caption: _Optional[str] = ..., object_descriptions: _Optional[_Iterable[str]] = ...) -> None: ...

class DecodeStats(_message.Message):
    __slots__ = ("layers_used", "stage_seconds", "queue_seconds", "width", "height", "no_reference")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LAYERS_USED_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NO_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    layers_used: _containers.RepeatedScalarFieldContainer[str]
    stage_seconds: _containers.ScalarMap[str, float]
    queue_seconds: float
    width: int
    height: int
    no_reference: bool
    def __init__(self, layers_used: _Optional[_Iterable[str]] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ..., queue_seconds: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., no_reference: _Optional[bool] = ...) -> None: ...

class DecodeStreamResponse(_message.Message):
    __slots__ = ("stage", "result")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    stage: DecodeStage
    result: DecodeResponse
    def __init__(self, stage: _Optional[_Union[DecodeStage, str]] = ..., result: _Optional[_Union[DecodeResponse, _Mapping]] = ...) -> None: ...
