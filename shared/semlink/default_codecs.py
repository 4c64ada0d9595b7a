"""``semlink.encode`` and ``semlink.decode`` for scripts and notebooks: the codec's
:meth:`~semlink.codec.Codec.encode` and :meth:`~semlink.codec.Codecs.decode` as functions,
on the process's codecs when given no models.

This module is an edge, like a command or a service's ``main``: it builds the process's
:class:`~semlink.codec.Codecs` from :func:`semlink.config.settings` on first use (and again
only when the settings were re-read since), and nothing in the library imports it
(tests/test_layers.py checks). Services, commands and tests build their codecs once and
pass them on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.budget import Budget
from semlink.codec import Codec, Codecs, DecodeResult, EncodeResult, ObjectHint, codec_of
from semlink.packet import Packet
from semlink.profiles import Profile
from semlink.resolver import Models, Resolver

_codecs: Codecs | None = None


def default_codecs() -> Codecs:
    """The process's codecs: every profile's, over the models the settings name."""
    global _codecs
    from semlink.config import settings

    current = settings()
    if _codecs is None or _codecs.settings is not current:
        _codecs = Codecs.from_settings(current)
    return _codecs


def encode(
    image: NDArray[np.generic] | Image.Image,
    profile: str | Profile = "lite",
    *,
    max_bytes: int | None = None,
    target_bpp: float | None = None,
    caption: str | None = None,
    objects: Sequence[ObjectHint] = (),
    segmap: NDArray[np.integer] | None = None,
    mask_scale: int = 8,
    models: Models | Resolver | None = None,
    realism: float | None = None,
    semantics_only: bool = False,
) -> EncodeResult:
    """Encode ``image`` into a packet of at most ``max_bytes`` (or ``target_bpp`` x pixels
    / 8), the whole packet: :meth:`semlink.codec.Codec.encode` of ``profile`` on ``models``
    (one profile's, which must be ``profile``'s, or every profile's; default: the
    process's, :func:`default_codecs`). The budget is checked before any work."""
    budget = Budget(max_bytes=max_bytes, target_bpp=target_bpp)
    codec = codec_of(default_codecs().resolver if models is None else models, profile)
    return codec.encode(
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
    check: Callable[[], None] | None = None,
    steps: int | None = None,
    seed: int | None = None,
    restorer: bool | None = None,
    models: Models | Resolver | None = None,
    max_pixels: int | None = None,
    realism: float | None = None,
) -> DecodeResult:
    """Rebuild the image from a packet: :meth:`semlink.codec.Codecs.decode` on ``models``
    (one profile's, or every profile's: the packet's header picks them; default: the
    process's, :func:`default_codecs`)."""
    codecs: Codec | Codecs
    if models is None:
        codecs = default_codecs()
    else:
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
