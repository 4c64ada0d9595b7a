"""Image utilities at the bottom of the house: read, convert, resize, compare.

Everything above (streams, codecs, restorers, eval, services) takes its RGB arrays from
here, so one resampler and one PSNR serve both ends and the reports.
"""

from __future__ import annotations

import io
import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from semlink.packet import DEFAULT_LIMITS, Limits, PacketLimitError, check_dimensions

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


def as_rgb(image: NDArray[np.generic] | Image.Image) -> NDArray[np.uint8]:
    """Accept PIL images or arrays (gray, RGB, RGBA; uint8) and return contiguous RGB uint8."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be 8-bit (uint8), got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def read_image(data: bytes, max_pixels: int | None = None) -> NDArray[np.uint8]:
    """Decode an uploaded PNG, JPEG or WebP file to RGB, checking its size before decoding.

    Raises ``ValueError`` (wrong or broken file) or ``PacketLimitError`` (too large/small)
    with a message that says what would be accepted.
    """
    if not data:
        raise ValueError("image is empty; send a PNG, JPEG or WebP file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ACCEPTED_FORMATS:
                accepted = ", ".join(ACCEPTED_FORMATS)
                raise ValueError(
                    f"image format {im.format} is not accepted; send one of {accepted}"
                )
            width, height = im.size
            limits = DEFAULT_LIMITS if max_pixels is None else Limits(max_pixels=max_pixels)
            check_dimensions(width, height, limits)
            return as_rgb(im.convert("RGB"))
    except Image.DecompressionBombError as exc:  # the header alone claims too many pixels
        limits = DEFAULT_LIMITS if max_pixels is None else Limits(max_pixels=max_pixels)
        raise PacketLimitError(
            f"image refused before decoding: {exc} Send at most {limits.max_side} pixels a "
            f"side and {limits.max_pixels} in all"
        ) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(
            f"image is not a readable PNG, JPEG or WebP file ({type(exc).__name__}: {exc})"
        ) from exc


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an uploaded file's header, nothing decoded; None when
    :func:`read_image` refuses it (not a readable image, or past the size limits: it then
    says why)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        check_dimensions(width, height, DEFAULT_LIMITS)
    except Exception:
        return None
    return width, height


def resize(image: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """Lanczos-3 resampling to ``width`` x ``height`` (uint8 RGB in, uint8 RGB out)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def psnr(reference: NDArray[np.uint8], image: NDArray[np.uint8]) -> float:
    """PSNR in dB over RGB (8-bit peak); ``inf`` for identical images."""
    mse = float(np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
