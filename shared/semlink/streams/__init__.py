"""One module per stream kind. Each turns a value into a layer payload and back."""

from enum import IntEnum


class LayerKind(IntEnum):
    """Layer kinds, in priority order (the order layers appear in a packet)."""

    REFERENCE = 0
    CAPTION = 1
    OBJECT = 2
    SEGMAP = 3


__all__ = ["LayerKind"]
