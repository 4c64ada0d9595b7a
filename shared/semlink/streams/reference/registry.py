"""The one table the reference layer's codec ids come from."""

from __future__ import annotations

from semlink.packet.errors import PacketFormatError
from semlink.streams.reference import classical, vvc
from semlink.streams.reference.base import VVC_IDS, Codec, ReferenceCodec
from semlink.streams.reference.learned import LEARNED

CODECS: dict[ReferenceCodec, Codec] = {
    ReferenceCodec.AVIF: classical.AVIF,
    ReferenceCodec.HEVC: classical.HEVC,
    ReferenceCodec.WEBP: classical.WEBP,
    ReferenceCodec.JPEGXL: classical.JPEGXL,
    ReferenceCodec.JPEG: classical.JPEG,
    # every VVC configuration version, under its codec id
    **{ReferenceCodec(config.codec_id): vvc.VvcCodec(config) for config in vvc.CONFIGS.values()},
}
"""Codecs that code a standard file (learned codecs are in ``learned.LEARNED``). VVC is vvenc's
default configuration (the baselines'); lite codes with its own (:data:`vvc.VVC`)."""

CLASSICAL = (
    ReferenceCodec.AVIF,
    ReferenceCodec.HEVC,
    ReferenceCodec.WEBP,
    ReferenceCodec.JPEGXL,
    ReferenceCodec.JPEG,
)
"""The pre-VVC still-image codecs (AVIF, HEVC, WebP, JPEG-XL, JPEG)."""

STANDARD = (*CLASSICAL, ReferenceCodec.VVC)
"""Every standard codec: what ``semlink eval`` compares against."""


def codec(codec_id: int) -> Codec:
    """The codec of a layer's codec id (standard codecs; learned ones are looked up apart)."""
    if codec_id in VVC_IDS:
        return vvc.codec_for(codec_id)  # refuses configuration versions it does not know
    try:
        return CODECS[ReferenceCodec(codec_id)]
    except (ValueError, KeyError) as exc:
        known = sorted({*(c.value for c in ReferenceCodec), *LEARNED})
        raise PacketFormatError(
            f"reference codec id {codec_id} is unknown; known: {known}"
        ) from exc
