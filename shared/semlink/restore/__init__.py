"""Decoder stages that turn decoded layers into the output image."""

from semlink.restore.upsample import upsample

__all__ = ["upsample"]
