"""Learned reference codecs (compressai hyperpriors, TAEF2 latents) in the reference layer.

Payload (layer format 2, ``semlink.models.learned_codec.LAYER_FORMAT``): scale byte, model
index byte, 4-byte big-endian entropy-parameter check, varint len(z), z, y. The models
themselves live in ``semlink.models`` (this layer knows them by :class:`LearnedCodec`, what
it asks of one); the profile's fingerprint guarantees both ends hold the same, and the check
that both computed the same entropy parameters from them (a decoder whose floating-point
arithmetic differs refuses the layer: DATA_LOSS, never another picture).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

from semlink.errors import WeightsError
from semlink.imaging import psnr, resize
from semlink.packet.errors import EntropyMismatchError, PacketFormatError
from semlink.streams._varint import read_varint, write_varint
from semlink.streams.reference.base import SCALES, Candidate, ReferenceCodec, small_size

LEARNED: dict[ReferenceCodec, str] = {
    ReferenceCodec.HYPERPRIOR: "bmshj2018-hyperprior",
    ReferenceCodec.CHENG2020_ATTN: "cheng2020-attn",
    ReferenceCodec.TAEF2_LATENT: "taef2-latent-hyperprior",
}


CHECK_BYTES = 4
"""The entropy-parameter check: CRC32C, big-endian."""


class EntropyCoded(NamedTuple):
    """A learned codec's output: hyper-latent string, latent string, entropy-parameter check."""

    z: bytes
    y: bytes
    check: int
    """CRC32C over the CDF tables and every latent symbol's scale index (32 bits)."""


class Architecture(Protocol):
    @property
    def architecture(self) -> str: ...


class LearnedCodec(Protocol):
    """What the layer asks of a learned codec: its architecture (which codec id it codes
    under), ``compress`` and ``decompress``. :class:`semlink.models.codecs.LearnedCodec`
    is the one the models build; the layer never imports the models (torch)."""

    @property
    def config(self) -> Architecture: ...

    def compress(self, image: NDArray[np.uint8]) -> EntropyCoded: ...

    def decompress(self, coded: EntropyCoded, width: int, height: int) -> NDArray[np.uint8]: ...


def models_of(codec: ReferenceCodec, learned: Sequence[LearnedCodec]) -> list[LearnedCodec]:
    return [m for m in learned if m.config.architecture == LEARNED[codec]]


HEADER = 2 + CHECK_BYTES
"""Scale byte, model index byte, check."""


def pack_learned(k: int, index: int, z: bytes, y: bytes, check: int) -> bytes:
    """Learned reference payload: scale byte, model index byte, check, varint len(z), z, y."""
    return bytes([k, index]) + check.to_bytes(CHECK_BYTES, "big") + write_varint(len(z)) + z + y


def decode_learned(
    codec: ReferenceCodec,
    payload: bytes,
    width: int,
    height: int,
    learned: Sequence[LearnedCodec],
) -> tuple[int, NDArray[np.uint8]]:
    if len(payload) < HEADER + 1:
        raise PacketFormatError(
            f"learned reference layer is shorter than its {HEADER + 1}-byte header"
        )
    k, index = payload[0], payload[1]
    if k == 0:
        raise PacketFormatError("reference layer has scale 0; scales are 1..255 (x 1/256)")
    models = models_of(codec, learned)
    if index >= len(models) and codec is ReferenceCodec.TAEF2_LATENT:
        raise WeightsError(
            "this packet's reference is coded in the TAEF2 latent space and this decoder has "
            "no TAEF2 weights: set SEMLINK_WEIGHTS_DIR to the directory holding taef2/"
        )
    if index >= len(models):
        raise PacketFormatError(
            f"reference layer uses {LEARNED[codec]} model #{index}, but this decoder holds "
            f"{len(models)} such model(s): set SEMLINK_REFERENCE_MODELS to the encoder's set"
        )
    check = int.from_bytes(payload[2:HEADER], "big")
    length, offset = read_varint(payload, HEADER, "learned reference z length")
    if offset + length > len(payload):
        raise PacketFormatError("learned reference layer is cut short inside its hyper-latents")
    sw, sh = small_size(width, height, k)
    coded = EntropyCoded(payload[offset : offset + length], payload[offset + length :], check)
    try:
        image = models[index].decompress(coded, sw, sh)
    except EntropyMismatchError:
        raise
    except Exception as exc:  # the rANS decoder rejects some corrupt strings
        raise PacketFormatError(
            f"reference layer is not a valid {codec.name} stream: {exc}"
        ) from exc
    return k, image


def search_learned(
    image: NDArray[np.uint8],
    payload_bytes: int,
    learned: Sequence[LearnedCodec],
    scales: Sequence[int] = SCALES,
) -> Candidate | None:
    """Best-PSNR learned candidate: per model, the largest scale whose layer payload takes
    at most ``payload_bytes``."""
    height, width = image.shape[:2]
    best: Candidate | None = None
    for codec in LEARNED:
        for index, model in enumerate(models_of(codec, learned)):

            def attempt(
                k: int, model: LearnedCodec = model, index: int = index
            ) -> tuple[bytes, NDArray[np.uint8]] | None:
                sw, sh = small_size(width, height, k)
                coded = model.compress(resize(image, sw, sh))
                payload = pack_learned(k, index, *coded)
                if len(payload) > payload_bytes:
                    return None
                return payload, model.decompress(coded, sw, sh)

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
