"""Arguments the codec refuses before it works: a realism outside [0, 1], hints a profile
cannot carry or larger than their picture, and a header claiming a picture larger than the
decoder accepts."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from semlink.codec.results import ObjectHint
from semlink.packet import Packet, PacketLimitError
from semlink.profiles import Profile
from semlink.streams import LayerKind


def check_realism(realism: float) -> float:
    """``realism`` as a float in [0, 1], or ValueError with what to send instead."""
    if isinstance(realism, bool) or not isinstance(realism, numbers.Real):
        raise ValueError(f"realism is {realism!r}; it must be a number from 0 to 1")
    value = float(realism)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(
            f"realism is {value}; it must be from 0 (fidelity) to 1 (most realistic texture)"
        )
    return value


def check_streams(
    spec: Profile,
    caption: str | None,
    objects: Sequence[ObjectHint],
    segmap: NDArray[np.integer] | None,
) -> None:
    """Hints the profile's packets cannot carry are an error, not silently dropped."""
    given = {
        LayerKind.CAPTION: bool(caption),
        LayerKind.OBJECT: len(objects) > 0,
        LayerKind.SEGMAP: segmap is not None,
    }
    for kind in (kind for kind, wanted in given.items() if wanted):
        if kind not in spec.streams:
            raise ValueError(f"profile {spec.name} carries no {kind.name.lower()} layers")


def check_hint_sizes(
    width: int, height: int, objects: Sequence[ObjectHint], segmap: NDArray[np.integer] | None
) -> None:
    """Masks and maps are drawn on the image: one larger than it is a mistake, and refused
    before it costs memory (smaller ones are scaled up)."""
    for index, hint in enumerate(objects):
        if hint.mask is not None:
            mask_height, mask_width = np.shape(hint.mask)[:2]
            check_hint_size(f"object {index}'s mask", mask_width, mask_height, width, height)
    if segmap is not None:
        map_height, map_width = np.shape(segmap)[:2]
        check_hint_size("the segmentation map", map_width, map_height, width, height)


def check_hint_size(what: str, hint_width: int, hint_height: int, width: int, height: int) -> None:
    """ValueError when a ``hint_width`` x ``hint_height`` mask or map exceeds its image."""
    if hint_width > width or hint_height > height:
        raise ValueError(
            f"{what} is {hint_width}x{hint_height}, larger than the {width}x{height} image; "
            f"send it at the image's size or smaller"
        )


def check_picture_size(packet: Packet, max_pixels: int) -> None:
    """Raise :class:`PacketLimitError` when the header claims more than ``max_pixels`` pixels.

    A header of a few bytes can claim any size up to the format's limits: decode checks it
    against the decoder's own limit before it allocates anything for the picture."""
    pixels = packet.width * packet.height
    if pixels > max_pixels:
        raise PacketLimitError(
            f"packet header claims a {packet.width}x{packet.height} picture ({pixels} pixels, "
            f"{3 * pixels / 2**20:.0f} MiB as RGB); this decoder accepts at most {max_pixels} "
            f"pixels per packet: raise SEMLINK_MAX_DECODE_PIXELS (`semlink serve decoder "
            f"--max-pixels`) to decode larger pictures"
        )
