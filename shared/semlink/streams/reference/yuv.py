"""Pictures as VVC's encoder and decoder take them: 10-bit 4:2:0 Y'CbCr, converted from and
to RGB in integer arithmetic (full-range BT.601, 2x2 box chroma average, bilinear chroma
upsampling), so a stream decodes to the same pixels on every machine; and the even,
padded size vvenc codes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from semlink import calls

MIN_SIDE = 16
"""vvenc refuses pictures with a side under 14 or so: smaller ones are padded to 16."""


def coded_size(width: int, height: int) -> tuple[int, int]:
    """The picture vvenc codes for a ``width`` x ``height`` reference: even sides (4:2:0),
    at least :data:`MIN_SIDE`; the padding (edge pixels) is cropped after decoding."""
    return max(MIN_SIDE, width + width % 2), max(MIN_SIDE, height + height % 2)


def padded(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    height, width = image.shape[:2]
    cw, ch = coded_size(width, height)
    return np.pad(image, ((0, ch - height), (0, cw - width), (0, 0)), mode="edge")


YUV_BAND_ROWS = 512
"""Rows converted at once (even): a large picture costs one band's int32 copies, and the
call's deadline is checked between bands. The bytes do not depend on it."""


def rgb_to_yuv420(image: NDArray[np.uint8]) -> bytes:
    """Planar 10-bit little-endian Y, Cb, Cr of an even-sized RGB picture."""
    planes: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
    for top in range(0, image.shape[0], YUV_BAND_ROWS):
        calls.check()
        for plane, band in zip(planes, _yuv420(image[top : top + YUV_BAND_ROWS]), strict=True):
            plane.append(band)
    return b"".join(b"".join(plane) for plane in planes)


def _yuv420(image: NDArray[np.uint8]) -> tuple[bytes, bytes, bytes]:
    """Y, Cb and Cr samples of rows of :func:`rgb_to_yuv420`'s picture (an even number)."""
    rgb = image.astype(np.int32)  # every sum below stays under 2^29
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Coefficients x 2^16 (x 4 for 10 bits); luma and chroma kept at that scale until
    # rounded. Chroma is linear in RGB, so the 2x2 box sum is taken on RGB first.
    y = 78380 * r + 153880 * g + 29884 * b + (1 << 15)

    def box(c: NDArray[np.int32]) -> NDArray[np.int32]:
        return c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]

    rs, gs, bs = box(r), box(g), box(b)
    offset = 4 * (512 << 16) + (1 << 17)  # four samples' 512 offset, and rounding
    cb = 4 * (-11059 * rs - 21709 * gs + 32768 * bs) + offset
    cr = 4 * (32768 * rs - 27439 * gs - 5329 * bs) + offset
    luma, blue, red = (
        np.clip(p, 0, 1023).astype("<u2").tobytes() for p in (y >> 16, cb >> 18, cr >> 18)
    )
    return luma, blue, red


def _upsample(c: NDArray[np.int32]) -> NDArray[np.int32]:
    """2x bilinear (centred siting) in both directions, x16 scale."""

    def axis(x: NDArray[np.int32], n: int) -> NDArray[np.int32]:
        prev = np.concatenate([x.take([0], n), x.take(range(x.shape[n] - 1), n)], n)
        nxt = np.concatenate([x.take(range(1, x.shape[n]), n), x.take([-1], n)], n)
        out = np.stack([3 * x + prev, 3 * x + nxt], n + 1)
        shape = list(x.shape)
        shape[n] *= 2
        return out.reshape(shape)

    return axis(axis(c, 0), 1)


def yuv420_to_rgb(data: bytes, width: int, height: int) -> NDArray[np.uint8]:
    """Inverse of :func:`rgb_to_yuv420` for an even ``width`` x ``height`` picture."""
    cw, ch = width // 2, height // 2
    # 10-bit samples (the clip only matters for a broken decoder): every sum below then
    # stays within +-2.03e9, so int32 holds it.
    planes = np.minimum(np.frombuffer(data, dtype="<u2"), 1023).astype(np.int32)
    y = planes[: width * height].reshape(height, width) << 20  # x16, x 2^16
    cb = _upsample(planes[width * height : width * height + cw * ch].reshape(ch, cw)) - (512 << 4)
    cr = _upsample(planes[width * height + cw * ch :].reshape(ch, cw)) - (512 << 4)
    # x 2^16 coefficients on x16 samples: shift 16 + 4 + 2 (10 -> 8 bit) = 22.
    y += 1 << 21  # rounding
    out = np.empty((height, width, 3), dtype=np.uint8)
    for channel, chroma in enumerate((91881 * cr, -22554 * cb - 46802 * cr, 116130 * cb)):
        chroma += y
        chroma >>= 22
        np.clip(chroma, 0, 255, out=chroma)
        out[..., channel] = chroma
    return out
