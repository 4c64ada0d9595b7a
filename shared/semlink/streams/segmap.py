"""Segmentation maps (label images): lossless, three codecs, the smallest one is kept.

* ``CONTEXT``: per pixel, "same label as the left neighbour?", then "same as the one
  above?", each an adaptive bit whose context is which of the causal neighbours
  (left, up, up-left, up-right) agree; a new label is coded with an adaptive
  categorical over the label set. Rows equal to the row above cost one flag.
* ``PNG`` and ``JPEGXL_LOSSLESS``: the general-purpose lossless image codecs, as the
  baseline a specialised coder must beat.

Payload: varint width, varint height, varint number of labels, coded data.
"""

from __future__ import annotations

import io
from enum import IntEnum

import imagecodecs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.entropy import (
    AdaptiveBinaryModel,
    AdaptiveCategoricalModel,
    ArithmeticDecoder,
    ArithmeticEncoder,
)
from semlink.packet.errors import PacketFormatError, PacketLimitError
from semlink.streams._varint import read_varint, write_varint

MAX_SEGMAP_PIXELS = 4096 * 4096
MAX_LABELS = 4096


class SegmapCodec(IntEnum):
    CONTEXT = 0
    PNG = 1
    JPEGXL_LOSSLESS = 2


def _neighbour_context(left: int, up: int, upleft: int, upright: int) -> int:
    return (left == up) | (left == upleft) << 1 | (up == upright) << 2 | (up == upleft) << 3


def _encode_context(labels: NDArray[np.int64], n_labels: int) -> bytes:
    height, width = labels.shape
    rows = labels.tolist()
    coder = ArithmeticEncoder()
    row_model = AdaptiveBinaryModel(1)
    left_model = AdaptiveBinaryModel(16)
    up_model = AdaptiveBinaryModel(16)
    new_model = AdaptiveCategoricalModel(np.ones(n_labels, dtype=np.int64), 4)
    previous = [-1] * width
    for y in range(height):
        row = rows[y]
        same = int(row == previous and y > 0)
        coder.encode_bit(same, row_model.p_one(0))
        row_model.update(0, same)
        if same:
            previous = row
            continue
        for x in range(width):
            value = row[x]
            left = row[x - 1] if x else -1
            up = previous[x]
            ctx = _neighbour_context(
                left, up, previous[x - 1] if x else -1, previous[x + 1] if x + 1 < width else -1
            )
            if x:
                bit = int(value == left)
                coder.encode_bit(bit, left_model.p_one(ctx))
                left_model.update(ctx, bit)
                if bit:
                    continue
            if y and up != left:
                bit = int(value == up)
                coder.encode_bit(bit, up_model.p_one(ctx))
                up_model.update(ctx, bit)
                if bit:
                    continue
            coder.encode_symbol(value, new_model.probabilities())
            new_model.update(value)
        previous = row
    return coder.finish()


def _decode_context(data: bytes, width: int, height: int, n_labels: int) -> NDArray[np.int64]:
    coder = ArithmeticDecoder(data)
    row_model = AdaptiveBinaryModel(1)
    left_model = AdaptiveBinaryModel(16)
    up_model = AdaptiveBinaryModel(16)
    new_model = AdaptiveCategoricalModel(np.ones(n_labels, dtype=np.int64), 4)
    rows: list[list[int]] = []
    previous = [-1] * width
    for y in range(height):
        if coder.decode_bit(row_model.p_one(0)):
            row_model.update(0, 1)
            rows.append(list(previous))
            continue
        row_model.update(0, 0)
        row = [0] * width
        for x in range(width):
            left = row[x - 1] if x else -1
            up = previous[x]
            ctx = _neighbour_context(
                left, up, previous[x - 1] if x else -1, previous[x + 1] if x + 1 < width else -1
            )
            if x:
                bit = coder.decode_bit(left_model.p_one(ctx))
                left_model.update(ctx, bit)
                if bit:
                    row[x] = left
                    continue
            if y and up != left:
                bit = coder.decode_bit(up_model.p_one(ctx))
                up_model.update(ctx, bit)
                if bit:
                    row[x] = up
                    continue
            value = coder.decode_symbol(new_model.probabilities())
            new_model.update(value)
            row[x] = value
        rows.append(row)
        previous = row
    return np.array(rows, dtype=np.int64)


def _encode_png(labels: NDArray[np.int64], n_labels: int) -> bytes:
    buffer = io.BytesIO()
    if n_labels <= 256:
        Image.fromarray(labels.astype(np.uint8)).save(buffer, "PNG", optimize=True)
    else:
        Image.fromarray(labels.astype(np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()


def _encode_jxl(labels: NDArray[np.int64], n_labels: int) -> bytes:
    dtype = np.uint8 if n_labels <= 256 else np.uint16
    return bytes(imagecodecs.jpegxl_encode(labels.astype(dtype), lossless=True, effort=9))


def encode_segmap(labels: NDArray[np.integer]) -> tuple[int, bytes]:
    """Code a label image losslessly; returns (codec id, payload) of the smallest codec."""
    if labels.ndim != 2 or labels.size == 0:
        raise ValueError(f"segmentation map must be a non-empty 2-D array, got {labels.shape}")
    if labels.size > MAX_SEGMAP_PIXELS:
        raise ValueError(f"segmentation map has {labels.size} pixels; at most {MAX_SEGMAP_PIXELS}")
    values = labels.astype(np.int64)
    if values.min() < 0 or values.max() >= MAX_LABELS:
        raise ValueError(f"labels must lie in 0..{MAX_LABELS - 1}")
    n_labels = int(values.max()) + 1
    height, width = values.shape
    header = write_varint(width) + write_varint(height) + write_varint(n_labels)
    options = {
        SegmapCodec.CONTEXT: _encode_context(values, n_labels),
        SegmapCodec.PNG: _encode_png(values, n_labels),
        SegmapCodec.JPEGXL_LOSSLESS: _encode_jxl(values, n_labels),
    }
    codec = min(options, key=lambda c: len(options[c]))
    return int(codec), header + options[codec]


def segmap_sizes(labels: NDArray[np.integer]) -> dict[str, int]:
    """Bytes each codec needs for ``labels`` (for reports comparing the codecs)."""
    values = labels.astype(np.int64)
    n_labels = int(values.max()) + 1
    return {
        "context": len(_encode_context(values, n_labels)),
        "png": len(_encode_png(values, n_labels)),
        "jpegxl": len(_encode_jxl(values, n_labels)),
    }


def decode_segmap(
    codec: int, payload: bytes, max_pixels: int = MAX_SEGMAP_PIXELS
) -> NDArray[np.int64]:
    """Inverse of :func:`encode_segmap`; ``max_pixels`` bounds a hostile payload's work."""
    width, offset = read_varint(payload, 0, "segmap width")
    height, offset = read_varint(payload, offset, "segmap height")
    n_labels, offset = read_varint(payload, offset, "segmap label count")
    limit = min(max_pixels, MAX_SEGMAP_PIXELS)
    if width < 1 or height < 1 or width * height > limit:
        raise PacketLimitError(f"segmap of {width}x{height} is outside 1..{limit} pixels")
    if not 1 <= n_labels <= MAX_LABELS:
        raise PacketFormatError(f"segmap declares {n_labels} labels; 1..{MAX_LABELS} allowed")
    data = payload[offset:]
    if codec == SegmapCodec.CONTEXT:
        labels = _decode_context(data, width, height, n_labels)
    elif codec in (SegmapCodec.PNG, SegmapCodec.JPEGXL_LOSSLESS):
        try:
            if codec == SegmapCodec.PNG:
                with Image.open(io.BytesIO(data)) as im:
                    labels = np.asarray(im).astype(np.int64)
            else:
                labels = np.asarray(imagecodecs.jpegxl_decode(data)).astype(np.int64)
        except Exception as exc:
            raise PacketFormatError(
                f"segmap layer is not a valid {SegmapCodec(codec).name} image: {exc}"
            ) from exc
    else:
        raise PacketFormatError(
            f"segmap codec id {codec} is unknown; known: {[c.value for c in SegmapCodec]}"
        )
    if labels.shape != (height, width) or labels.max(initial=0) >= n_labels:
        raise PacketFormatError("segmap layer decodes to the wrong size or label range")
    return labels
