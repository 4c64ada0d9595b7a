"""Named profiles: which layers an encoder writes and which model roles both ends fill.

A profile is described by what it contains: the layer kinds its packets carry
(``streams``) and the model roles its ends fill (``roles``). It never loads anything:
which models fill the roles is :mod:`semlink.resolver`'s business (``Models``).

A profile's id travels in the packet header, and so does the fingerprint of the models
filling its roles (``Models.fingerprint``: a CRC32C over the profile name and the hashes
of every model or table it depends on), so a decoder holding different models refuses
the packet instead of decoding garbage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from semlink.streams import LayerKind


class Role(StrEnum):
    """A part a model plays in a profile."""

    SHIPPED_CODECS = "shipped-codecs"
    """Project-trained reference codecs shipped in the package (``semlink/data/<name>/``)
    compete with VVC in rate control, both ends holding them; none is shipped today (none
    beats VVC yet: docs/training.md), so lite's references are VVC's."""
    REFERENCE_CODECS = "reference-codecs"
    """Learned reference codecs from ``SEMLINK_REFERENCE_MODELS`` compete in rate control."""
    RESTORER = "restorer"
    """The decoder upsamples the reference with the shipped learned restorer."""
    DIFFUSION = "diffusion"
    """The decoder runs the diffusion pipeline (and so needs its weights)."""
    EXTRACTOR = "extractor"
    """The encoder captions, grounds and segments the image itself when given no hints."""


@dataclass(frozen=True)
class Profile:
    """A composition of layer kinds and model roles."""

    id: int
    name: str
    description: str
    streams: tuple[LayerKind, ...]
    """The layer kinds this profile's packets may carry."""
    roles: tuple[Role, ...] = ()
    """The model roles its ends fill."""
    data_files: tuple[str, ...] = ()
    """Package data files both ends must hold identically (e.g. the text model)."""

    def holds(self, role: Role) -> bool:
        return role in self.roles


_ALL_LAYERS = (LayerKind.REFERENCE, LayerKind.CAPTION, LayerKind.OBJECT, LayerKind.SEGMAP)

LITE = Profile(
    id=0,
    name="lite",
    description="Offline CPU profile: a VVC reference with decoder-rebuilt parameter sets "
    "and predicted scale/QP, entropy-coded text, masks and segmentation maps, decoded with "
    "the learned restorer.",
    streams=_ALL_LAYERS,
    roles=(Role.SHIPPED_CODECS, Role.RESTORER),
    data_files=("data/english_words.txt.gz",),
)

SEDIC = Profile(
    id=1,
    name="sedic",
    description="SEDIC-class: reference + caption + objects with masks, rebuilt by a "
    "ControlNet diffusion decoder with object-wise attention guidance (ORAG) and DynDiff steps.",
    streams=_ALL_LAYERS,
    roles=(Role.REFERENCE_CODECS, Role.DIFFUSION, Role.EXTRACTOR),
    data_files=("data/english_words.txt.gz",),
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
