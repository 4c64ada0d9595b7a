from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Packet(_message.Message):
    __slots__ = ("format_version", "model_fingerprint", "size", "profile", "seed", "layers")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    model_fingerprint: int
    size: int
    profile: int
    seed: int
    layers: _containers.RepeatedCompositeFieldContainer[Layer]
    def __init__(self, format_version: _Optional[int] = ..., model_fingerprint: _Optional[int] = ..., size: _Optional[int] = ..., profile: _Optional[int] = ..., seed: _Optional[int] = ..., layers: _Optional[_Iterable[_Union[Layer, _Mapping]]] = ...) -> None: ...

class Layer(_message.Message):
    __slots__ = ("kind", "codec", "payload", "crc32c")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    kind: int
    codec: int
    payload: bytes
    crc32c: int
    def __init__(self, kind: _Optional[int] = ..., codec: _Optional[int] = ..., payload: _Optional[bytes] = ..., crc32c: _Optional[int] = ...) -> None: ...
