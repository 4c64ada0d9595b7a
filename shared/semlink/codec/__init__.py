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
refuses in :mod:`.checks`, what it takes and gives in :mod:`.results`. Scripts that want
the calls as functions have ``semlink.encode`` and ``semlink.decode``
(:mod:`semlink.default_codecs`).
"""

from __future__ import annotations

from semlink.budget import DEFAULT_BPP, Budget
from semlink.codec.batch import BATCH_PIXELS
from semlink.codec.checks import check_hint_size, check_picture_size, check_realism
from semlink.codec.codecs import Codec, Codecs
from semlink.codec.encoder import EXTRACTED_SEMANTIC_SHARE
from semlink.codec.results import DecodeCall, DecodeResult, EncodeResult, ObjectHint
from semlink.errors import BudgetError
from semlink.packet import PacketLimitError
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
]
