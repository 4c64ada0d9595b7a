"""Binary object masks: lossless, JBIG-style template-context arithmetic coding.

Each pixel is coded with an adaptive bit model chosen by the 10 causal neighbours of
JBIG's three-line template. A row equal to the one above costs one cheap flag
("typical prediction", JBIG's TPGDON), which is most rows of a low-resolution mask.
The mask travels at the resolution the caller chooses; the diffusion decoder wants
H/8 x W/8.

Payload: varint width, varint height, arithmetic-coded bits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from semlink.entropy import AdaptiveBinaryModel, ArithmeticDecoder, ArithmeticEncoder
from semlink.packet.errors import PacketFormatError, PacketLimitError
from semlink.streams._varint import read_varint, write_varint

MAX_MASK_PIXELS = 4096 * 4096

# (dy, dx) of the causal template, most significant context bit first.
_TEMPLATE = (
    (-2, -1),
    (-2, 0),
    (-2, 1),
    (-1, -2),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (-1, 2),
    (0, -2),
    (0, -1),
)


def _context(padded: list[list[int]], y: int, x: int) -> int:
    """Template context of pixel (y, x); ``padded`` has 2 rows/cols of zeros on top/left/right."""
    py, px = y + 2, x + 2
    ctx = 0
    for dy, dx in _TEMPLATE:
        ctx = (ctx << 1) | padded[py + dy][px + dx]
    return ctx


def _padded(height: int, width: int) -> list[list[int]]:
    return [[0] * (width + 4) for _ in range(height + 2)]


def encode_mask(mask: NDArray[np.bool_]) -> bytes:
    """Code a 2-D boolean mask losslessly."""
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {mask.shape}")
    height, width = mask.shape
    if height * width > MAX_MASK_PIXELS:
        raise ValueError(f"mask of {height}x{width} pixels exceeds {MAX_MASK_PIXELS}")
    bits = np.asarray(mask, dtype=bool).astype(np.uint8)
    rows = bits.tolist()
    padded = _padded(height, width)
    model = AdaptiveBinaryModel(1 << len(_TEMPLATE))
    row_model = AdaptiveBinaryModel(1)
    coder = ArithmeticEncoder()
    previous: list[int] = [0] * width
    for y in range(height):
        row = rows[y]
        same = int(row == previous)
        coder.encode_bit(same, row_model.p_one(0))
        row_model.update(0, same)
        if not same:
            for x in range(width):
                ctx = _context(padded, y, x)
                bit = row[x]
                coder.encode_bit(bit, model.p_one(ctx))
                model.update(ctx, bit)
                padded[y + 2][x + 2] = bit
        else:
            padded[y + 2][2 : width + 2] = row
        previous = row
    return write_varint(width) + write_varint(height) + coder.finish()


def decode_mask(payload: bytes, max_pixels: int = MAX_MASK_PIXELS) -> NDArray[np.bool_]:
    """Inverse of :func:`encode_mask`. Raises ``PacketFormatError`` on malformed input.

    ``max_pixels`` bounds the work a hostile payload can ask for (the decoder passes the
    image's own pixel count: a mask is never finer than its image).
    """
    width, offset = read_varint(payload, 0, "mask width")
    height, offset = read_varint(payload, offset, "mask height")
    if width < 1 or height < 1:
        raise PacketFormatError(f"mask is {width}x{height}; both sides must be at least 1")
    if width * height > min(max_pixels, MAX_MASK_PIXELS):
        raise PacketLimitError(
            f"mask of {width}x{height} pixels exceeds {min(max_pixels, MAX_MASK_PIXELS)}"
        )
    padded = _padded(height, width)
    model = AdaptiveBinaryModel(1 << len(_TEMPLATE))
    row_model = AdaptiveBinaryModel(1)
    coder = ArithmeticDecoder(payload[offset:])
    for y in range(height):
        same = coder.decode_bit(row_model.p_one(0))
        row_model.update(0, same)
        if same:
            padded[y + 2][2 : width + 2] = padded[y + 1][2 : width + 2]
            continue
        for x in range(width):
            ctx = _context(padded, y, x)
            bit = coder.decode_bit(model.p_one(ctx))
            model.update(ctx, bit)
            padded[y + 2][x + 2] = bit
    out = np.array([r[2 : width + 2] for r in padded[2:]], dtype=bool)
    return out
