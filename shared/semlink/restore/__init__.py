"""Decoder stages that turn decoded layers into the output image (restorers, diffusion)."""
