"""Decoder stages that turn decoded layers into the output image."""

from semlink.restore.resample import resize

__all__ = ["resize"]
