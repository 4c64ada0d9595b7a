"""What the codec's calls take and give: hints an encoder is handed, the encoded packet, the
decoded picture, and one packet of a batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from semlink.packet import Packet, bits_per_pixel
from semlink.streams import LayerKind


@dataclass(frozen=True)
class ObjectHint:
    """An object the caller knows about: a short description and optionally a mask."""

    description: str
    mask: NDArray[np.bool_] | None = None
    """Boolean mask at any resolution; it is coded at the mask grid the encoder is given."""


@dataclass
class EncodeResult:
    data: bytes
    """The serialized packet: what goes on the link."""
    packet: Packet
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bits_per_pixel(self) -> float:
        return bits_per_pixel(self.data)

    def layer_bytes(self) -> list[tuple[str, int]]:
        """(layer kind name, serialized bytes incl. framing and CRC) per layer."""
        return [
            (LayerKind(layer.kind).name.lower(), size)
            for layer, size in zip(self.packet.layers, self.packet.layer_bytes(), strict=True)
        ]


@dataclass
class DecodeResult:
    image: NDArray[np.uint8]
    """RGB, original width x height."""
    layers_used: list[str]
    caption: str | None = None
    objects: list[tuple[str, NDArray[np.bool_] | None]] = field(default_factory=list)
    segmap: NDArray[np.int64] | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    """Diffusion steps the generative decoder took (0 for classical profiles)."""
    realism: float | None = None
    """The realism lite's restorer ran at (None: no learned restorer ran)."""


@dataclass(frozen=True)
class DecodeCall:
    """One packet of a batch decode (:meth:`semlink.codec.Codec.decode_batch`) with its own
    options, as ``decode`` takes them."""

    data: bytes | Packet
    realism: float | None = None
    steps: int | None = None
    seed: int | None = None
    check: Callable[[], None] | None = None
