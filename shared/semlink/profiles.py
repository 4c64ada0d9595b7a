"""Named profiles: which streams an encoder writes and which models both ends must hold.

A profile's id travels in the packet header; its model fingerprint (a CRC32C over the
profile name and the hashes of every model or table it depends on) too, so a decoder
holding different models refuses the packet instead of decoding garbage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING

import google_crc32c
import imagecodecs
import PIL
import pillow_heif

if TYPE_CHECKING:
    from semlink.models.codecs import LearnedCodec


@dataclass(frozen=True)
class Profile:
    """A composition of streams and decoder stages."""

    id: int
    name: str
    description: str
    data_files: tuple[str, ...] = ()
    """Package data files both ends must hold identically (e.g. the text model)."""
    diffusion: bool = False
    """Whether the decoder runs the diffusion pipeline (and so needs its weights)."""
    learned_upscale: bool = False
    """Whether the decoder upsamples the reference with the shipped learned restorer."""
    extracts: bool = False
    """Whether the encoder extracts caption and objects itself when given no hints."""
    learned_reference: bool = False
    """Whether learned reference codecs (``SEMLINK_REFERENCE_MODELS``) compete in rate control."""
    shipped_reference: bool = False
    """Whether the project-trained reference codecs shipped in the package compete in rate
    control (and the decoder holds them)."""

    @property
    def fingerprint(self) -> int:
        """32-bit fingerprint of the model set: profile name, data, codecs, and model weights."""
        parts = self._static_parts
        if self.diffusion:
            from semlink.models.registry import decoder_models_digest

            parts = [*parts, f"diffusion={decoder_models_digest()}"]
        if self.learned_reference:
            from semlink.models.codecs import reference_codecs_digest

            parts = [*parts, f"reference={reference_codecs_digest()}"]
        if self.shipped_reference:
            from semlink.models.codecs import shipped_codecs_digest

            shipped = shipped_codecs_digest()
            if shipped is not None:
                parts = [*parts, f"shipped={shipped}"]
        return int(google_crc32c.value("|".join(parts).encode()))

    def learned_codecs(self) -> Sequence[LearnedCodec]:
        """The learned reference codecs this profile's ends hold (loads them)."""
        if self.shipped_reference:
            from semlink.models.codecs import shipped_codecs

            return shipped_codecs()
        if not self.learned_reference:
            return ()
        from semlink.models.codecs import reference_codecs

        return reference_codecs()

    @cached_property
    def _static_parts(self) -> list[str]:
        parts = [self.name]
        for name in self.data_files:
            data = resources.files("semlink").joinpath(name).read_bytes()
            parts.append(f"{name}={hashlib.sha256(data).hexdigest()}")
        # Classical codecs are models too: a reference layer decodes with the library
        # family that wrote it. Major versions only, so bug-fix releases interoperate.
        parts.append(f"pillow={PIL.__version__.split('.')[0]}")
        parts.append(f"pillow_heif={pillow_heif.__version__.split('.')[0]}")
        parts.append(f"imagecodecs={imagecodecs.__version__.split('.')[0]}")
        # VVC's parameter sets are rebuilt by the decoder's own vvenc: same configuration
        # and the same build (imageio-ffmpeg pins ffmpeg, vvenc and the VVC decoder).
        from semlink.streams.reference.vvc import CURRENT, ffmpeg_version

        parts.append(f"vvc={CURRENT.version}:{ffmpeg_version()}")
        return parts


LITE = Profile(
    id=0,
    name="lite",
    description="Offline CPU profile: a VVC reference with decoder-rebuilt parameter sets "
    "and predicted scale/QP, entropy-coded text, masks and segmentation maps, decoded with "
    "the learned restorer.",
    data_files=("data/english_words.txt.gz",),
    learned_upscale=True,
    shipped_reference=True,
)

SEDIC = Profile(
    id=1,
    name="sedic",
    description="SEDIC-class: reference + caption + objects with masks, rebuilt by a "
    "ControlNet diffusion decoder with object-wise attention guidance (ORAG) and DynDiff steps.",
    data_files=("data/english_words.txt.gz",),
    diffusion=True,
    extracts=True,
    learned_reference=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (LITE, SEDIC)}
_BY_ID: dict[int, Profile] = {p.id: p for p in PROFILES.values()}


def get_profile(name_or_id: str | int) -> Profile:
    """Look a profile up by name or header id; ``KeyError`` names the known ones."""
    table: dict = _BY_ID if isinstance(name_or_id, int) else PROFILES
    try:
        return table[name_or_id]
    except KeyError:
        known = ", ".join(f"{p.name} ({p.id})" for p in PROFILES.values())
        raise KeyError(f"unknown profile {name_or_id!r}; known profiles: {known}") from None
