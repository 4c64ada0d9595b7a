"""Classical image codecs for the reference layer: AVIF, HEVC (HEIF), WebP, JPEG-XL, JPEG.

At 0.01-0.05 bpp the codecs' file containers (AVIF/HEIF boxes, RIFF, JFIF) are a large
share of the bytes: ~280 bytes of AVIF boxes in a 1474-byte packet. The layer does not
send them raw. Both ends can build a *template* file: the same codec applied to a flat
grey image of the same size. The container part of the real file (everything before the
coded pixels) is sent as raw deflate with the template's container as preset dictionary;
typically 15-40 bytes. The decoder rebuilds the file byte for byte, so the codec's own
decoder reads a standard file.

Payload: scale byte k (small size = round(W*k/256) x round(H*k/256)), varint length of
the deflated container, deflated container, the file's coded-pixel bytes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import imagecodecs
import numpy as np
import pillow_heif
from numpy.typing import NDArray
from PIL import Image

from semlink.packet.errors import PacketFormatError
from semlink.streams._varint import read_varint, write_varint
from semlink.streams.reference.base import ReferenceCodec, small_size

pillow_heif.register_heif_opener()

_TEMPLATE_QUALITY = 50


def _pil_encoder(fmt: str, **options: object) -> Callable[[NDArray[np.uint8], int], bytes]:
    def encode(image: NDArray[np.uint8], quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, fmt, quality=quality, **options)
        return buffer.getvalue()

    return encode


def _jxl_encode(image: NDArray[np.uint8], quality: int) -> bytes:
    # JPEG-XL's knob is a butteraugli distance; map quality 0..100 onto 25..0.5.
    distance = 25.0 - 0.245 * quality
    return bytes(imagecodecs.jpegxl_encode(image, distance=distance, effort=5))


def _pil_decode(data: bytes) -> NDArray[np.uint8]:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _jxl_decode(data: bytes) -> NDArray[np.uint8]:
    image = np.asarray(imagecodecs.jpegxl_decode(data))
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)


def _isobmff_offset(data: bytes) -> int:
    offset = 0
    while offset + 8 <= len(data):  # walk top-level ISOBMFF boxes to 'mdat'
        size = int.from_bytes(data[offset : offset + 4], "big")
        if data[offset + 4 : offset + 8] == b"mdat":
            return offset + 8
        if size < 8:
            break
        offset += size
    return 0


def _webp_offset(data: bytes) -> int:
    return min(len(data), 30)  # RIFF + VP8 chunk header + frame header


def _jpeg_offset(data: bytes) -> int:
    sos = data.find(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big") if sos >= 0 else 0


def _no_container(data: bytes) -> int:
    return 0  # JPEG-XL codestreams carry no container


@dataclass(frozen=True)
class ClassicalCodec:
    """A still-image codec whose container is sent deflated against a grey template."""

    id: ReferenceCodec
    encoder: Callable[[NDArray[np.uint8], int], bytes]
    decoder: Callable[[bytes], NDArray[np.uint8]]
    coded_data_offset: Callable[[bytes], int]
    """Where the coded pixels start: everything before it is container and headers."""
    qualities: tuple[int, int]
    min_bpp: float

    def encode(self, image: NDArray[np.uint8], quality: int) -> bytes:
        return self.encoder(np.ascontiguousarray(image), quality)

    def decode(self, data: bytes, size: tuple[int, int]) -> NDArray[np.uint8]:
        try:
            return self.decoder(data)
        except Exception as exc:  # codec libraries raise many types on corrupt input
            raise PacketFormatError(
                f"reference layer is not a valid {self.id.name} stream: {exc}"
            ) from exc

    def pack(self, k: int, data: bytes, width: int, height: int) -> bytes:
        split = self.coded_data_offset(data)
        template = _template_container(self, *small_size(width, height, k))
        container = b""
        if split:
            compressor = zlib.compressobj(
                9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, template
            )
            container = compressor.compress(data[:split]) + compressor.flush()
        return bytes([k]) + write_varint(len(container)) + container + data[split:]

    def unpack(self, payload: bytes, width: int, height: int) -> tuple[int, bytes]:
        if len(payload) < 2:
            raise PacketFormatError("reference layer is shorter than its 2-byte header")
        k = payload[0]
        if k == 0:
            raise PacketFormatError("reference layer has scale 0; scales are 1..255 (x 1/256)")
        length, offset = read_varint(payload, 1, "reference container length")
        if offset + length > len(payload):
            raise PacketFormatError("reference layer is cut short inside its container header")
        container = b""
        if length:
            template = _template_container(self, *small_size(width, height, k))
            decompressor = zlib.decompressobj(-15, template)
            try:
                container = decompressor.decompress(payload[offset : offset + length], 1 << 16)
            except zlib.error as exc:
                raise PacketFormatError(f"reference container does not inflate: {exc}") from exc
        return k, container + payload[offset + length :]


@lru_cache(maxsize=256)
def _template_container(codec: ClassicalCodec, width: int, height: int) -> bytes:
    """Container bytes of the codec applied to flat grey at this size: the shared dictionary."""
    grey = np.full((height, width, 3), 128, dtype=np.uint8)
    data = codec.encode(grey, _TEMPLATE_QUALITY)
    return data[: codec.coded_data_offset(data)]


AVIF = ClassicalCodec(
    ReferenceCodec.AVIF,
    _pil_encoder("AVIF", speed=6),
    _pil_decode,
    _isobmff_offset,
    (0, 95),
    0.05,
)
HEVC = ClassicalCodec(
    ReferenceCodec.HEVC, _pil_encoder("HEIF"), _pil_decode, _isobmff_offset, (0, 95), 0.05
)
WEBP = ClassicalCodec(
    ReferenceCodec.WEBP, _pil_encoder("WEBP", method=6), _pil_decode, _webp_offset, (0, 95), 0.1
)
JPEGXL = ClassicalCodec(
    ReferenceCodec.JPEGXL, _jxl_encode, _jxl_decode, _no_container, (0, 100), 0.25
)
JPEG = ClassicalCodec(
    ReferenceCodec.JPEG,
    _pil_encoder("JPEG", optimize=True, subsampling=2),
    _pil_decode,
    _jpeg_offset,
    (1, 95),
    0.3,
)
