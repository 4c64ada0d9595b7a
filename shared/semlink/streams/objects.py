"""Object layer: a short description and, optionally, its mask on the mask grid.

Payload: varint length of the entropy-coded description, the description
(``streams.text``), then the mask (``streams.masks``) or nothing when the object has none.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.packet.errors import PacketFormatError
from semlink.streams._varint import read_varint, write_varint
from semlink.streams.masks import decode_mask, encode_mask
from semlink.streams.text import decode_text, encode_text


def mask_grid(
    mask: NDArray[np.bool_], width: int, height: int, mask_scale: int
) -> NDArray[np.bool_]:
    """``mask`` (any resolution) on the W/mask_scale x H/mask_scale grid the layer codes."""
    gw, gh = max(1, round(width / mask_scale)), max(1, round(height / mask_scale))
    if mask.shape == (gh, gw):
        return mask.astype(bool)
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((gw, gh), Image.Resampling.BOX)
    return np.asarray(resized) >= 128


def encode_object(
    description: str,
    mask: NDArray[np.bool_] | None,
    width: int,
    height: int,
    mask_scale: int,
) -> bytes:
    text = encode_text(description)
    coded = b"" if mask is None else encode_mask(mask_grid(mask, width, height, mask_scale))
    return write_varint(len(text)) + text + coded


def decode_object(payload: bytes, max_pixels: int) -> tuple[str, NDArray[np.bool_] | None]:
    """Inverse of :func:`encode_object`; ``max_pixels`` bounds the mask grid."""
    length, offset = read_varint(payload, 0, "object description length")
    if offset + length > len(payload):
        raise PacketFormatError("object layer is cut short inside its description")
    description = decode_text(payload[offset : offset + length])
    rest = payload[offset + length :]
    return description, decode_mask(rest, max_pixels=max_pixels) if rest else None
