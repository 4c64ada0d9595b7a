"""Learned restorer in the TAEF2 latent space: decoded reference -> latent -> TAEF2 decoder.

A classical reference at 0.01-0.05 bpp is a small, blurred picture. Upsampling it
(Lanczos) cannot invent texture. TAEF2's decoder can: it was trained adversarially to turn
32-channel latents at H/8 x W/8 into sharp images. The restorer predicts that latent from
the reference, working at H/8 x W/8 only (cheap on a CPU):

  reference (any small size) -> Lanczos to H/4 x W/4 -> space-to-depth 2 (12 ch at H/8)
  -> residual CNN -> 32-ch latent -> TAEF2 decoder -> full-size image.

Trained by ``semlink train restorer`` (``semlink.train.restorer``) on BSDS500 references
coded the way lite codes them; never on Kodak.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from semlink.models.taef2 import LATENT_CHANNELS, TAEF2
from semlink.restore.resample import resize


class LatentRestorer(nn.Module):
    def __init__(self, width: int = 64, blocks: int = 6) -> None:
        super().__init__()
        self.width, self.blocks = width, blocks
        self.head = nn.Conv2d(12, width, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.tail = nn.Conv2d(width, LATENT_CHANNELS, 3, padding=1)

    def forward(self, quarter: torch.Tensor) -> torch.Tensor:
        """``quarter``: N x 3 x H/4 x W/4 in [0, 1] -> N x 32 x H/8 x W/8 latents."""
        x = F.relu(self.head(F.pixel_unshuffle(quarter, 2)))
        for block in self.body:
            x = F.relu(x + block(x))
        return self.tail(x)


def quarter_input(reference: NDArray[np.uint8], width: int, height: int) -> torch.Tensor:
    """The restorer's input for a full size of ``width`` x ``height`` (multiples of 8)."""
    quarter = resize(reference, width // 4, height // 4)
    return torch.from_numpy(np.array(quarter, copy=True)).permute(2, 0, 1)[None].float() / 255.0


@torch.no_grad()
def restore(
    reference: NDArray[np.uint8],
    width: int,
    height: int,
    restorer: LatentRestorer,
    taef2: TAEF2,
) -> NDArray[np.uint8]:
    """Full-size image from a decoded small reference."""
    work_w, work_h = -(-width // 8) * 8, -(-height // 8) * 8
    latent = restorer(quarter_input(reference, work_w, work_h))
    image = taef2.decode(latent)[0].permute(1, 2, 0)
    pixels = (image * 255).round().to(torch.uint8).numpy()
    return pixels if (work_w, work_h) == (width, height) else resize(pixels, width, height)
