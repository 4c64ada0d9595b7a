"""What every reference codec shares: the codec ids, the scale grid and the codec interface.

A reference codec codes a downscaled picture. It offers four operations, each for one
side of the link: ``encode`` (small picture and quality knob -> the codec's standard
file, what a user of that codec would send), ``decode`` (standard file -> picture),
``pack`` (standard file -> layer payload: containers and parameter sets the decoder can
rebuild are stripped) and ``unpack`` (layer payload -> scale and the standard file).
``semlink.streams.reference.registry`` maps the packet's codec ids onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class ReferenceCodec(IntEnum):
    """Codec ids of the reference layer (the layer's ``codec`` field)."""

    AVIF = 0
    HEVC = 1  # HEIF container, the BPG family
    WEBP = 2
    JPEGXL = 3
    JPEG = 4
    # Learned codecs (compressai), present when the profile's models include them.
    HYPERPRIOR = 5  # bmshj2018-hyperprior
    CHENG2020_ATTN = 6
    TAEF2_LATENT = 7  # scale hyperprior over TAEF2 latents, drawn by TAEF2's decoder
    VVC = 8
    """H.266 intra, encoder configuration version 1 (vvenc preset medium): what a standard
    user sends, and lite's codec until configuration version 2. Ids 8..15 are VVC
    configuration versions 1..8: a decoder refuses a version it does not know
    (FAILED_PRECONDITION)."""
    VVC_FAST = 9
    """H.266 intra, configuration version 2 (vvenc preset fast, 128x128 CTUs): lite's codec
    until version 3."""
    VVC_FAST_UNFILTERED = 10
    """H.266 intra, configuration version 3 (version 2 without vvenc's MCTF pre-filter and
    block-importance map): lite's codec."""


VVC_IDS = range(8, 16)
"""Codec ids reserved for VVC encoder configuration versions 1..8."""

SCALES = (128, 96, 72, 54, 40, 30)
"""Candidate scales in 1/256 units: 1/2, 3/8, 0.28, 0.21, 0.16, 0.12 (each ~3/4 of the last).
The fill step afterwards refines the winner's scale in 1/256 steps."""

MAX_SMALL_BPP = 2.0
"""Scales whose small picture would get more bits per pixel than this never win at
semlink's rates (a larger picture at lower quality does better): not tried."""


def small_size(width: int, height: int, k: int) -> tuple[int, int]:
    """Size of the coded reference for scale ``k``/256 of a ``width`` x ``height`` image.

    Payloads carry k in one byte: 1..255, and 0 for k = 256 (the full-size picture)."""
    return max(1, round(width * k / 256)), max(1, round(height * k / 256))


def scale_byte(k: int) -> int:
    """The payload byte of scale ``k`` (1..256)."""
    if not 1 <= k <= 256:
        raise ValueError(f"scale {k}/256 is outside 1..256")
    return k % 256


def scale_of(byte: int) -> int:
    """Inverse of :func:`scale_byte`."""
    return byte or 256


class Codec(Protocol):
    """One reference codec behind the four operations the layer needs."""

    @property
    def id(self) -> ReferenceCodec: ...

    @property
    def qualities(self) -> tuple[int, int]:
        """Range of the quality knob; higher is better (VVC: 63 - QP)."""
        ...

    @property
    def min_bpp(self) -> float:
        """Below this many bits per *small* pixel the codec is not worth trying."""
        ...

    def encode(self, image: NDArray[np.uint8], quality: int) -> bytes:
        """The codec's standard file of ``image`` (what a baseline sends whole)."""
        ...

    def decode(self, data: bytes, size: tuple[int, int]) -> NDArray[np.uint8]:
        """Decode a standard file that should hold a ``size`` = (width, height) picture."""
        ...

    def pack(self, k: int, data: bytes, width: int, height: int) -> bytes:
        """Layer payload for the standard file of the image scaled by ``k``/256."""
        ...

    def unpack(self, payload: bytes, width: int, height: int) -> tuple[int, bytes]:
        """Inverse of :meth:`pack`: the scale and the standard file."""
        ...


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
