"""Reference image stream: a downscaled picture coded with a real codec.

One module per codec family behind one interface (``base.Codec``): ``classical`` (AVIF,
HEVC, WebP, JPEG-XL, JPEG with their containers deflated against grey templates),
``vvc`` (H.266 intra with its parameter sets rebuilt by the decoder) and ``learned``
(compressai hyperpriors, TAEF2 latents). ``registry`` is the table the layer's codec ids
come from; ``search`` is the baselines' scale x quality search and ``ratecontrol`` lite's
VVC rate control, which predicts scale and QP instead of searching.

The codec id travels in the layer; the scale in the payload's first byte.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from semlink.packet.errors import PacketFormatError
from semlink.streams.reference.base import (
    MAX_SMALL_BPP,
    SCALES,
    VVC_IDS,
    Candidate,
    ReferenceCodec,
    small_size,
)
from semlink.streams.reference.learned import (
    LEARNED,
    LearnedCodec,
    decode_learned,
    pack_learned,
    search_learned,
)
from semlink.streams.reference.ratecontrol import fit_vvc, smallest_vvc
from semlink.streams.reference.registry import CLASSICAL, CODECS, STANDARD, codec
from semlink.streams.reference.search import search


def encode_file(which: ReferenceCodec, image: NDArray[np.uint8], quality: int) -> bytes:
    """A standard file of ``image`` in ``which`` (what the baselines send whole)."""
    return CODECS[which].encode(image, quality)


def decode_file(which: ReferenceCodec, data: bytes, size: tuple[int, int]) -> NDArray[np.uint8]:
    """Decode a standard file of ``which`` holding a ``size`` = (width, height) picture."""
    return CODECS[which].decode(data, size)


def pack_file(which: ReferenceCodec, k: int, data: bytes, width: int, height: int) -> bytes:
    """Reference payload for a standard file of the image scaled by ``k``/256."""
    return CODECS[which].pack(k, data, width, height)


def unpack_file(
    which: ReferenceCodec, payload: bytes, width: int, height: int
) -> tuple[int, bytes]:
    """Inverse of :func:`pack_file`: the scale and the codec's standard file."""
    return CODECS[which].unpack(payload, width, height)


def decode_reference(
    codec_id: int, payload: bytes, width: int, height: int, learned: Sequence[LearnedCodec] = ()
) -> NDArray[np.uint8]:
    """Decode a reference layer to its small image (not yet upsampled).

    ``learned`` are the learned codecs the decoder holds (the profile's fingerprint
    guarantees they are the encoder's)."""
    if codec_id in LEARNED:
        k, image = decode_learned(ReferenceCodec(codec_id), payload, width, height, learned)
    else:
        spec = codec(codec_id)
        k, data = spec.unpack(payload, width, height)
        image = spec.decode(data, small_size(width, height, k))
    expected = small_size(width, height, k)
    if (image.shape[1], image.shape[0]) != expected:
        raise PacketFormatError(
            f"reference decodes to {image.shape[1]}x{image.shape[0]}, "
            f"expected {expected[0]}x{expected[1]}"
        )
    return image


def smallest_reference(image: NDArray[np.uint8]) -> tuple[int, bytes]:
    """(codec id, payload) of the smallest reference layer lite can send of ``image``."""
    height, width = image.shape[:2]
    least = smallest_vvc(image)
    return int(least.codec), pack_file(least.codec, least.k, least.data, width, height)


def encode_reference(
    image: NDArray[np.uint8],
    payload_bytes: int,
    learned: Sequence[LearnedCodec] = (),
    codecs: Sequence[ReferenceCodec] = (ReferenceCodec.VVC,),
    reconstruct: bool = True,
) -> tuple[int, bytes, NDArray[np.uint8] | None] | None:
    """(codec id, payload, full-size reconstruction) of the best reference whose layer
    payload (no layer framing) takes at most ``payload_bytes``.

    VVC (predicted scale and QP, no search) is lite's codec; other standard ``codecs``
    join through the search, and ``learned`` codecs when the profile holds them. The
    candidate with the best full-size PSNR wins. With ``reconstruct=False`` and VVC alone
    (lite's encoder), nothing is decoded and the reconstruction is None.
    """
    height, width = image.shape[:2]
    others = [c for c in codecs if c != ReferenceCodec.VVC]
    measure = reconstruct or bool(others or learned)
    found: list[Candidate | None] = []
    if ReferenceCodec.VVC in codecs:
        found.append(fit_vvc(image, payload_bytes, measure=measure))
    if others:
        found.append(search(image, payload_bytes, codecs=others))
    if learned:
        found.append(search_learned(image, payload_bytes, learned))
    best = max((c for c in found if c is not None), key=lambda c: c.psnr, default=None)
    if best is None:
        return None
    recon = best.reconstruction if measure else None
    if best.codec in LEARNED:
        return int(best.codec), best.data, recon
    return int(best.codec), pack_file(best.codec, best.k, best.data, width, height), recon


__all__ = [
    "CLASSICAL",
    "CODECS",
    "LEARNED",
    "MAX_SMALL_BPP",
    "SCALES",
    "STANDARD",
    "VVC_IDS",
    "Candidate",
    "ReferenceCodec",
    "decode_file",
    "decode_reference",
    "encode_file",
    "encode_reference",
    "pack_file",
    "pack_learned",
    "search",
    "search_learned",
    "small_size",
    "smallest_reference",
    "unpack_file",
]
