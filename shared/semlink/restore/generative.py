"""Run a packet's decoded layers through the diffusion decoder (profiles with the
``diffusion`` role)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from semlink.imaging import resize
from semlink.models.registry import DecoderModels
from semlink.restore.dyndiff import choose_steps, step_range
from semlink.restore.orag import ObjectPrompt, ORAGPipeline


class GenerativeDecoder:
    """The diffusion stack: decoder models and the ORAG pipeline built on them, once (the
    resolver's ``Models.generative`` holds one per process)."""

    def __init__(self, models: DecoderModels) -> None:
        self.models = models
        self.pipeline = ORAGPipeline(models.components)

    def __call__(
        self,
        reference: NDArray[np.uint8],
        caption: str,
        objects: Sequence[tuple[str, NDArray[np.bool_] | None]],
        *,
        bpp: float,
        seed: int,
        steps: int | None = None,
        check: Callable[[], None] | None = None,
    ) -> tuple[NDArray[np.uint8], int]:
        """The image at the reference's size, and the number of diffusion steps it took."""
        height, width = reference.shape[:2]
        c = self.models.components
        multiple = c.vae_scale * 2 ** (len(c.unet.config.block_out_channels) - 1)
        work_w, work_h = (-(-width // multiple) * multiple, -(-height // multiple) * multiple)
        work = resize(reference, work_w, work_h)
        n_steps = steps or choose_steps(reference, bpp, *step_range(self.models.max_steps))
        prompts = [ObjectPrompt(description, mask) for description, mask in objects]
        out = self.pipeline(work, caption, prompts, steps=n_steps, seed=seed, check=check)
        image = resize(out.image, width, height)
        return image, n_steps
