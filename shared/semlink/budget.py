"""The byte budget of a packet: one type from the edge (``--bpp``/``--max-bytes``, the
Encode RPC's ``target_bpp``/``max_bytes``) down to the codec.

A :class:`Budget` covers the **whole serialized packet**: header, every layer's framing and
CRC, and every payload, which is what goes on the link and what ``bits_per_pixel`` counts.
It is validated once, when it is made (:class:`~semlink.errors.BudgetError` otherwise), and
taken as it is below. The codec turns it into bytes for one picture
(:meth:`Budget.packet_bytes`) and hands the reference stream what is left for its layer's
*payload* (``payload_bytes``: no header, no framing), so every number below says which
bytes it counts. (Importing this module imports nothing else of note: the command line
reads :data:`DEFAULT_BPP` for its help.)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from semlink.errors import BudgetError

DEFAULT_BPP = 0.03
"""The budget when none is given (command line, Encode RPC): 0.03 bits per pixel of the
whole packet, a 768x512 photo in 1474 bytes."""


@dataclass(frozen=True)
class Budget:
    """A whole packet's byte budget: ``max_bytes`` bytes, or ``target_bpp`` bits per pixel
    of the picture (rounded down to whole bytes). Exactly one is given; ``max_bytes`` is a
    positive whole number, ``target_bpp`` positive and finite."""

    max_bytes: int | None = None
    """Bytes of the whole packet, header included."""
    target_bpp: float | None = None
    """Bits per pixel of the whole packet: ``target_bpp x width x height / 8`` bytes."""

    def __post_init__(self) -> None:
        max_bytes, target_bpp = self.max_bytes, self.target_bpp
        if (max_bytes is None) == (target_bpp is None):
            raise BudgetError("give exactly one of max_bytes and target_bpp")
        if max_bytes is not None:
            if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
                raise BudgetError(
                    f"max_bytes is {max_bytes!r}; it must be a whole number of bytes, at least 1"
                )
            if max_bytes <= 0:
                from semlink.packet import DEFAULT_LIMITS

                raise BudgetError(
                    f"max_bytes is {max_bytes}; it must be a positive number of bytes (the "
                    f"whole packet, header included; packets hold at most "
                    f"{DEFAULT_LIMITS.max_packet_bytes} bytes)"
                )
            object.__setattr__(self, "max_bytes", int(max_bytes))
            return
        if isinstance(target_bpp, bool) or not isinstance(target_bpp, numbers.Real):
            raise BudgetError(
                f"target_bpp is {target_bpp!r}; it must be a number of bits per pixel"
            )
        bpp = float(target_bpp)
        if not (math.isfinite(bpp) and bpp > 0):
            raise BudgetError(
                f"target_bpp is {bpp}; it must be positive and finite (bits per pixel of the "
                f"whole packet, e.g. {DEFAULT_BPP})"
            )
        object.__setattr__(self, "target_bpp", bpp)

    @classmethod
    def of(cls, *, max_bytes: int | None = None, target_bpp: float | None = None) -> Budget:
        """The budget an edge was asked for: ``max_bytes`` or ``target_bpp``, or neither
        (:data:`DEFAULT_BPP`); both is a :class:`BudgetError`."""
        if max_bytes is None and target_bpp is None:
            return cls(target_bpp=DEFAULT_BPP)
        return cls(max_bytes=max_bytes, target_bpp=target_bpp)

    def packet_bytes(self, width: int, height: int) -> int:
        """The whole packet's bytes for a ``width`` x ``height`` picture. A budget beyond
        the largest packet (``DEFAULT_LIMITS.max_packet_bytes``) is that size: no packet
        can be larger."""
        from semlink.packet import DEFAULT_LIMITS

        largest = DEFAULT_LIMITS.max_packet_bytes
        if self.max_bytes is not None:
            return min(self.max_bytes, largest)
        assert self.target_bpp is not None
        budget = self.target_bpp * width * height / 8  # float: may pass any integer size
        return largest if budget >= largest else int(budget)

    def __str__(self) -> str:
        if self.max_bytes is not None:
            return f"{self.max_bytes} bytes"
        return f"{self.target_bpp:g} bpp"
