"""The codec: :class:`Codec` (one profile's encoder and decoder over its models) and
:class:`Codecs` (every profile's, for a process), built once where a program starts and
passed on.

``Codec(models).encode(image, budget, hints) -> EncodeResult`` builds a packet within the
byte budget (a :class:`~semlink.budget.Budget` of the whole packet: text, objects and
segmentation map are budgeted first; the reference image gets every remaining byte).
``.decode(bytes) -> DecodeResult`` rebuilds the image from whichever layers arrived;
``.decode_batch`` decodes several packets with one restorer run and ``.decode_preview``
gives a fast first look (what the decoder service streams first).

One module per step: :mod:`.encoder`, :mod:`.decoder`, :mod:`.batch`; the arguments it
refuses in :mod:`.checks`, what it takes and gives in :mod:`.results`. :func:`encode` and
:func:`decode` below are the same calls as functions of the models they run with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.budget import DEFAULT_BPP, Budget
from semlink.codec.batch import BATCH_PIXELS
from semlink.codec.checks import check_hint_size, check_picture_size, check_realism
from semlink.codec.codecs import Codec, Codecs
from semlink.codec.encoder import EXTRACTED_SEMANTIC_SHARE
from semlink.codec.results import DecodeCall, DecodeResult, EncodeResult, ObjectHint
from semlink.errors import BudgetError
from semlink.packet import Packet, PacketLimitError
from semlink.profiles import Profile, get_profile
from semlink.resolver import Models, Resolver


def codec_of(models: Models | Resolver, profile: str | Profile) -> Codec:
    """``profile``'s codec over ``models`` (one profile's, which must be ``profile``'s, or
    every profile's)."""
    spec = get_profile(profile) if isinstance(profile, str) else profile
    if isinstance(models, Resolver):
        return Codecs(models)[spec]
    if models.profile != spec:
        raise ValueError(f"the models given are {models.profile.name}'s, not {spec.name}'s")
    return Codec(models)


def encode(
    image: NDArray[np.generic] | Image.Image,
    profile: str | Profile = "lite",
    *,
    models: Models | Resolver,
    max_bytes: int | None = None,
    target_bpp: float | None = None,
    caption: str | None = None,
    objects: Sequence[ObjectHint] = (),
    segmap: NDArray[np.integer] | None = None,
    mask_scale: int = 8,
    realism: float | None = None,
    semantics_only: bool = False,
) -> EncodeResult:
    """:meth:`Codec.encode` of ``profile`` over ``models``, within ``max_bytes`` or
    ``target_bpp`` (exactly one: a :class:`Budget`, checked before any work)."""
    budget = Budget(max_bytes=max_bytes, target_bpp=target_bpp)
    return codec_of(models, profile).encode(
        image,
        budget,
        caption=caption,
        objects=objects,
        segmap=segmap,
        mask_scale=mask_scale,
        realism=realism,
        semantics_only=semantics_only,
    )


def decode(
    data: bytes | Packet,
    *,
    models: Models | Resolver,
    check: Callable[[], None] | None = None,
    steps: int | None = None,
    seed: int | None = None,
    restorer: bool | None = None,
    max_pixels: int | None = None,
    realism: float | None = None,
) -> DecodeResult:
    """:meth:`Codec.decode` over ``models`` (one profile's, or every profile's: the
    packet's header picks them)."""
    codecs = Codecs(models) if isinstance(models, Resolver) else Codec(models)
    return codecs.decode(
        data,
        check=check,
        steps=steps,
        seed=seed,
        restorer=restorer,
        max_pixels=max_pixels,
        realism=realism,
    )


__all__ = [
    "BATCH_PIXELS",
    "DEFAULT_BPP",
    "EXTRACTED_SEMANTIC_SHARE",
    "Budget",
    "BudgetError",
    "Codec",
    "Codecs",
    "DecodeCall",
    "DecodeResult",
    "EncodeResult",
    "ObjectHint",
    "PacketLimitError",
    "check_hint_size",
    "check_picture_size",
    "check_realism",
    "codec_of",
    "decode",
    "encode",
]
