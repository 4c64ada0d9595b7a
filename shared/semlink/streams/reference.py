"""Reference image stream: a downscaled picture coded with a real classical codec.

Per image the encoder searches codec x scale x quality for the reconstruction (after
upsampling to full size) with the best PSNR that fits the byte share. Codec id
travels in the layer; the scale in the payload's first byte.

At 0.01-0.05 bpp the codecs' file containers (AVIF/HEIF boxes, RIFF, JFIF) are a
large share of the bytes: ~280 bytes of AVIF boxes in a 1474-byte packet. The stream
does not send them raw. Both ends can build a *template* file: the same codec
applied to a flat grey image of the same size. The container part of the real file
(everything before the coded pixels) is sent as raw deflate with the template's
container as preset dictionary; typically 15-40 bytes. The decoder rebuilds the
file byte for byte, so the codec's own decoder reads a standard file.

Payload: scale byte k (small size = round(W*k/256) x round(H*k/256)), varint length
of the deflated container, deflated container, the file's coded-pixel bytes.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import TYPE_CHECKING

import imagecodecs
import numpy as np
import pillow_heif
from numpy.typing import NDArray
from PIL import Image

from semlink.packet.errors import PacketFormatError
from semlink.restore.resample import resize
from semlink.streams._varint import read_varint, write_varint

if TYPE_CHECKING:
    from semlink.models.codecs import LearnedCodec

pillow_heif.register_heif_opener()


class ReferenceCodec(IntEnum):
    """Classical codecs for the reference layer (the layer's codec id)."""

    AVIF = 0
    HEVC = 1  # HEIF container, the BPG family
    WEBP = 2
    JPEGXL = 3
    JPEG = 4
    # Learned codecs (compressai), present when the profile's models include them.
    HYPERPRIOR = 5  # bmshj2018-hyperprior
    CHENG2020_ATTN = 6
    TAEF2_LATENT = 7  # scale hyperprior over TAEF2 latents, drawn by TAEF2's decoder


CLASSICAL = tuple(c for c in ReferenceCodec if c <= ReferenceCodec.JPEG)
LEARNED: dict[ReferenceCodec, str] = {
    ReferenceCodec.HYPERPRIOR: "bmshj2018-hyperprior",
    ReferenceCodec.CHENG2020_ATTN: "cheng2020-attn",
    ReferenceCodec.TAEF2_LATENT: "taef2-latent-hyperprior",
}


SCALES = (128, 96, 72, 54, 40, 30)
"""Candidate scales in 1/256 units: 1/2, 3/8, 0.28, 0.21, 0.16, 0.12 (each ~3/4 of the last).
The fill step afterwards refines the winner's scale in 1/256 steps."""

MAX_SMALL_BPP = 2.0
"""Scales whose small picture would get more bits per pixel than this never win at
semlink's rates (a larger picture at lower quality does better): not tried."""


def small_size(width: int, height: int, k: int) -> tuple[int, int]:
    """Size of the coded reference for scale ``k``/256 of a ``width`` x ``height`` image."""
    return max(1, round(width * k / 256)), max(1, round(height * k / 256))


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


@dataclass(frozen=True)
class _CodecSpec:
    encode: Callable[[NDArray[np.uint8], int], bytes]
    decode: Callable[[bytes], NDArray[np.uint8]]
    qualities: tuple[int, int]
    min_bpp: float
    """Below this many bits per *small* pixel the codec is not worth trying."""


_CODECS: dict[ReferenceCodec, _CodecSpec] = {
    ReferenceCodec.AVIF: _CodecSpec(_pil_encoder("AVIF", speed=6), _pil_decode, (0, 95), 0.05),
    ReferenceCodec.HEVC: _CodecSpec(_pil_encoder("HEIF"), _pil_decode, (0, 95), 0.05),
    ReferenceCodec.WEBP: _CodecSpec(_pil_encoder("WEBP", method=6), _pil_decode, (0, 95), 0.1),
    ReferenceCodec.JPEGXL: _CodecSpec(_jxl_encode, _jxl_decode, (0, 100), 0.25),
    ReferenceCodec.JPEG: _CodecSpec(
        _pil_encoder("JPEG", optimize=True, subsampling=2), _pil_decode, (1, 95), 0.3
    ),
}

_TEMPLATE_QUALITY = 50


def encode_file(codec: ReferenceCodec, image: NDArray[np.uint8], quality: int) -> bytes:
    """A standard file of ``image`` in ``codec`` (what the classical baselines send whole)."""
    return _CODECS[codec].encode(np.ascontiguousarray(image), quality)


def decode_file(codec: ReferenceCodec, data: bytes) -> NDArray[np.uint8]:
    return _CODECS[codec].decode(data)


def _coded_data_offset(codec: ReferenceCodec, data: bytes) -> int:
    """Where the coded pixels start: everything before it is container and headers."""
    if codec in (ReferenceCodec.AVIF, ReferenceCodec.HEVC):
        offset = 0
        while offset + 8 <= len(data):  # walk top-level ISOBMFF boxes to 'mdat'
            size = int.from_bytes(data[offset : offset + 4], "big")
            if data[offset + 4 : offset + 8] == b"mdat":
                return offset + 8
            if size < 8:
                break
            offset += size
        return 0
    if codec == ReferenceCodec.WEBP:
        return min(len(data), 30)  # RIFF + VP8 chunk header + frame header
    if codec == ReferenceCodec.JPEG:
        sos = data.find(b"\xff\xda")
        return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big") if sos >= 0 else 0
    return 0  # JPEG-XL codestreams carry no container


@lru_cache(maxsize=256)
def _template_container(codec: ReferenceCodec, width: int, height: int) -> bytes:
    """Container bytes of the codec applied to flat grey at this size: the shared dictionary."""
    grey = np.full((height, width, 3), 128, dtype=np.uint8)
    data = encode_file(codec, grey, _TEMPLATE_QUALITY)
    return data[: _coded_data_offset(codec, data)]


def pack_file(codec: ReferenceCodec, k: int, data: bytes, width: int, height: int) -> bytes:
    """Reference payload for a codec file of the image scaled by ``k``/256."""
    split = _coded_data_offset(codec, data)
    template = _template_container(codec, *small_size(width, height, k))
    container = b""
    if split:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, template)
        container = compressor.compress(data[:split]) + compressor.flush()
    return bytes([k]) + write_varint(len(container)) + container + data[split:]


def unpack_file(
    codec: ReferenceCodec, payload: bytes, width: int, height: int
) -> tuple[int, bytes]:
    """Inverse of :func:`pack_file`: the scale and the codec's standard file."""
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
        template = _template_container(codec, *small_size(width, height, k))
        decompressor = zlib.decompressobj(-15, template)
        try:
            container = decompressor.decompress(payload[offset : offset + length], 1 << 16)
        except zlib.error as exc:
            raise PacketFormatError(f"reference container does not inflate: {exc}") from exc
    return k, container + payload[offset + length :]


def decode_reference(
    codec: int, payload: bytes, width: int, height: int, learned: Sequence[LearnedCodec] = ()
) -> NDArray[np.uint8]:
    """Decode a reference layer to its small image (not yet upsampled).

    ``learned`` are the learned codecs the decoder holds (the profile's fingerprint
    guarantees they are the encoder's)."""
    try:
        which = ReferenceCodec(codec)
    except ValueError as exc:
        raise PacketFormatError(
            f"reference codec id {codec} is unknown; known: {[c.value for c in ReferenceCodec]}"
        ) from exc
    if which in LEARNED:
        k, image = _decode_learned(which, payload, width, height, learned)
    else:
        k, data = unpack_file(which, payload, width, height)
        try:
            image = decode_file(which, data)
        except Exception as exc:  # codec libraries raise many types on corrupt input
            raise PacketFormatError(
                f"reference layer is not a valid {which.name} stream: {exc}"
            ) from exc
    expected = small_size(width, height, k)
    if (image.shape[1], image.shape[0]) != expected:
        raise PacketFormatError(
            f"reference decodes to {image.shape[1]}x{image.shape[0]}, "
            f"expected {expected[0]}x{expected[1]}"
        )
    return image


def _models_of(codec: ReferenceCodec, learned: Sequence[LearnedCodec]) -> list[LearnedCodec]:
    return [m for m in learned if m.config.architecture == LEARNED[codec]]


def pack_learned(k: int, index: int, z: bytes, y: bytes) -> bytes:
    """Learned reference payload: scale byte, model index byte, varint len(z), z, y."""
    return bytes([k, index]) + write_varint(len(z)) + z + y


def _decode_learned(
    codec: ReferenceCodec,
    payload: bytes,
    width: int,
    height: int,
    learned: Sequence[LearnedCodec],
) -> tuple[int, NDArray[np.uint8]]:
    if len(payload) < 3:
        raise PacketFormatError("learned reference layer is shorter than its 3-byte header")
    k, index = payload[0], payload[1]
    if k == 0:
        raise PacketFormatError("reference layer has scale 0; scales are 1..255 (x 1/256)")
    models = _models_of(codec, learned)
    if index >= len(models) and codec is ReferenceCodec.TAEF2_LATENT:
        from semlink.models.weights import WeightsError

        raise WeightsError(
            "this packet's reference is coded in the TAEF2 latent space and this decoder has "
            "no TAEF2 weights: set SEMLINK_WEIGHTS_DIR to the directory holding taef2/"
        )
    if index >= len(models):
        raise PacketFormatError(
            f"reference layer uses {LEARNED[codec]} model #{index}, but this decoder holds "
            f"{len(models)} such model(s): set SEMLINK_REFERENCE_MODELS to the encoder's set"
        )
    length, offset = read_varint(payload, 2, "learned reference z length")
    if offset + length > len(payload):
        raise PacketFormatError("learned reference layer is cut short inside its hyper-latents")
    sw, sh = small_size(width, height, k)
    try:
        image = models[index].decompress(
            payload[offset : offset + length], payload[offset + length :], sw, sh
        )
    except Exception as exc:  # the rANS decoder rejects some corrupt strings
        raise PacketFormatError(
            f"reference layer is not a valid {codec.name} stream: {exc}"
        ) from exc
    return k, image


def search_learned(
    image: NDArray[np.uint8],
    max_bytes: int,
    learned: Sequence[LearnedCodec],
    scales: Sequence[int] = SCALES,
) -> Candidate | None:
    """Best-PSNR learned candidate: per model, the largest scale whose payload fits."""
    height, width = image.shape[:2]
    best: Candidate | None = None
    for codec in LEARNED:
        for index, model in enumerate(_models_of(codec, learned)):

            def attempt(
                k: int, model: LearnedCodec = model, index: int = index
            ) -> tuple[bytes, NDArray[np.uint8]] | None:
                sw, sh = small_size(width, height, k)
                z, y = model.compress(resize(image, sw, sh))
                payload = pack_learned(k, index, z, y)
                if len(payload) > max_bytes:
                    return None
                return payload, model.decompress(z, y, sw, sh)

            fits: tuple[int, bytes, NDArray[np.uint8]] | None = None
            too_big = 256
            for k in sorted(scales, reverse=True):
                found = attempt(k)
                if found is not None:
                    fits = (k, *found)
                    break
                too_big = k
            if fits is None:
                continue
            lo, hi = fits[0] + 1, min(255, too_big - 1)
            while lo <= hi:  # refine the scale between the fitting and the failing one
                k = (lo + hi) // 2
                found = attempt(k)
                if found is not None:
                    fits, lo = (k, *found), k + 1
                else:
                    hi = k - 1
            k, payload, small = fits
            recon = resize(small, width, height)
            candidate = Candidate(codec, k, index, payload, len(payload), psnr(recon, image), recon)
            if best is None or candidate.psnr > best.psnr:
                best = candidate
    return best


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


@dataclass(frozen=True)
class Candidate:
    """One way to spend the reference budget."""

    codec: ReferenceCodec
    k: int
    quality: int
    """Codec quality (learned codecs: index of the model)."""
    data: bytes
    """The codec's standard file (learned codecs: the layer payload)."""
    size: int
    """Bytes this candidate costs (packed payload, or the whole file for baselines)."""
    psnr: float
    reconstruction: NDArray[np.uint8]


def search(
    image: NDArray[np.uint8],
    max_bytes: int,
    *,
    codecs: Iterable[ReferenceCodec] = CLASSICAL,
    scales: Sequence[int] = SCALES,
    packed: bool = True,
    fill: float = 0.97,
) -> Candidate | None:
    """Best-PSNR candidate of at most ``max_bytes``; None if nothing fits.

    ``packed`` counts the stream payload (container deflated); otherwise whole files, as
    a classical codec would send them. When the winner leaves more than ``1 - fill`` of the
    budget unused, its scale is nudged up while it still fits.
    """
    height, width = image.shape[:2]
    codecs = tuple(codecs)

    def cost(codec: ReferenceCodec, k: int, data: bytes) -> int:
        return len(pack_file(codec, k, data, width, height)) if packed else len(data)

    def evaluate(codec: ReferenceCodec, k: int, quality: int, data: bytes) -> Candidate:
        recon = resize(decode_file(codec, data), width, height)
        return Candidate(codec, k, quality, data, cost(codec, k, data), psnr(recon, image), recon)

    def best_of_codec(codec: ReferenceCodec) -> Candidate | None:
        spec = _CODECS[codec]
        best: Candidate | None = None
        floor = spec.qualities[0]
        for k in sorted(scales, reverse=True):
            sw, sh = small_size(width, height, k)
            if not spec.min_bpp <= 8 * max_bytes / (sw * sh) <= MAX_SMALL_BPP:
                continue
            small = resize(image, sw, sh)
            # Largest quality that fits. Smaller pictures fit at least the quality that the
            # previous (larger) scale fitted, so the search starts from there.
            lo, hi = floor, spec.qualities[1]
            fitting: tuple[int, bytes] | None = None
            while lo <= hi:
                q = (lo + hi) // 2
                data = spec.encode(small, q)
                if cost(codec, k, data) <= max_bytes:
                    fitting, lo = (q, data), q + 1
                else:
                    hi = q - 1
            if fitting is None:
                continue
            floor = fitting[0]
            candidate = evaluate(codec, k, *fitting)
            if best is None or candidate.psnr > best.psnr:
                best = candidate
        return best

    # The codec libraries release the GIL while they code: one thread per codec.
    with ThreadPoolExecutor(max_workers=min(len(list(codecs)), os.cpu_count() or 1)) as pool:
        results = [c for c in pool.map(best_of_codec, codecs) if c is not None]
    best = max(results, key=lambda c: c.psnr, default=None)
    if best is None or best.size >= fill * max_bytes:
        return best
    # Fill the budget: codecs step in coarse byte increments, so for the winner's quality
    # and the nearest qualities that really change the bitstream (several quality values
    # map to one quantizer in x265/libaom), find the largest scale that still fits, and
    # keep the best of those that fill the budget unless filling would cost real quality.
    spec = _CODECS[best.codec]
    small_best = resize(image, *small_size(width, height, best.k))

    def next_distinct(step: int) -> int | None:
        q = best.quality + step
        while spec.qualities[0] <= q <= spec.qualities[1] and abs(q - best.quality) <= 10:
            if spec.encode(small_best, q) != best.data:
                return q
            q += step
        return None

    def largest_fitting(quality: int, lo: int, hi: int) -> Candidate | None:
        def fits(k: int) -> bytes | None:
            data = spec.encode(resize(image, *small_size(width, height, k)), quality)
            return data if cost(best.codec, k, data) <= max_bytes else None

        found: tuple[int, bytes] | None = None
        while lo <= hi:
            k = (lo + hi) // 2
            data = fits(k)
            if data is not None:
                found, lo = (k, data), k + 1
            else:
                hi = k - 1
        if found is None:
            return None
        # Size is not monotonic in scale (coding-unit alignment): look a little further.
        for k in range(found[0] + 1, min(255, found[0] + 4) + 1):
            data = fits(k)
            if data is not None:
                found = (k, data)
        return evaluate(best.codec, found[0], quality, found[1])

    qualities = [best.quality, *(q for q in (next_distinct(-1), next_distinct(1)) if q is not None)]
    options = [
        largest_fitting(q, max(1, int(best.k * 0.7)), min(255, int(best.k * 1.4) + 1))
        for q in qualities
    ]
    found = [best, *(c for c in options if c is not None)]
    full = [c for c in found if c.size >= fill * max_bytes]
    if full and max(c.psnr for c in full) >= best.psnr - 0.15:
        return max(full, key=lambda c: c.psnr)
    return max(found, key=lambda c: c.psnr)  # the codec cannot fill it: best quality


def encode_reference(
    image: NDArray[np.uint8], max_bytes: int, learned: Sequence[LearnedCodec] = ()
) -> tuple[int, bytes, NDArray[np.uint8]] | None:
    """(codec id, payload, full-size reconstruction) of the best reference within ``max_bytes``.

    Classical codecs always compete; ``learned`` codecs join when the profile holds them.
    """
    height, width = image.shape[:2]
    found = [search(image, max_bytes)]
    if learned:
        found.append(search_learned(image, max_bytes, learned))
    best = max((c for c in found if c is not None), key=lambda c: c.psnr, default=None)
    if best is None:
        return None
    payload = (
        best.data
        if best.codec in LEARNED
        else pack_file(best.codec, best.k, best.data, width, height)
    )
    return int(best.codec), payload, best.reconstruction
