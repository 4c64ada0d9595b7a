"""Learned restorer in the TAEF2 latent space: decoded reference -> latent -> TAEF2 decoder.

A classical reference at 0.01-0.05 bpp is a small, blurred picture. Upsampling it
(Lanczos) cannot invent texture. TAEF2's decoder can: it was trained adversarially to turn
32-channel latents at H/8 x W/8 into sharp images. The restorer predicts that latent from
the reference, working at H/8 x W/8 only (cheap on a CPU):

  reference (any small size) -> Lanczos to H/4 x W/4 (q) -> Lanczos to H x W -> TAEF2
  encoder -> base latent b (decodes to about the Lanczos picture)
  latent = b + CNN(space-to-depth(q) ++ b ++ e)   (the CNN's last layer starts at zero)
  -> TAEF2 decoder -> full-size image.

e is the segmentation map's region boundaries at H/8 x W/8 when the packet carries a
segmentation layer, zeros otherwise (training shows the network both cases).

Starting from the base latent, training begins at Lanczos quality and learns what to add.

Trained by ``semlink train latent-restorer`` (``semlink.train.restorer``) on BSDS500
references; never on Kodak. A research recipe, not what lite ships: TAEF2's encoder and
decoder alone take ~6 s per 768x512 picture on 2 CPU cores. lite ships the quarter-resolution
restorer of :mod:`semlink.restore.pixel`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from semlink.imaging import resize
from semlink.models.taef2 import LATENT_CHANNELS, TAEF2
from semlink.restore.network import segment_edges

EDGE_CHANNELS = 1


class LatentRestorer(nn.Module):
    def __init__(self, width: int = 64, blocks: int = 6, edges: bool = True) -> None:
        super().__init__()
        self.width, self.blocks = width, blocks
        self.edge_channels = EDGE_CHANNELS if edges else 0
        self.head = nn.Conv2d(12 + LATENT_CHANNELS + self.edge_channels, width, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.tail = nn.Conv2d(width, LATENT_CHANNELS, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]

    def forward(
        self, quarter: torch.Tensor, base: torch.Tensor, edges: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``quarter``: N x 3 x H/4 x W/4 in [0, 1]; ``base``: N x 32 x H/8 x W/8; ``edges``:
        N x 1 x H/8 x W/8 segment boundaries (None: no segmentation map) -> latents."""
        parts = [F.pixel_unshuffle(quarter, 2), base]
        if self.edge_channels:
            if edges is None:
                edges = base.new_zeros(base.shape[0], self.edge_channels, *base.shape[2:])
            parts.append(edges)
        x = F.relu(self.head(torch.cat(parts, dim=1)))
        for block in self.body:
            x = F.relu(x + block(x))
        return base + self.tail(x)


def inputs(
    reference: NDArray[np.uint8], width: int, height: int, taef2: TAEF2
) -> tuple[torch.Tensor, torch.Tensor]:
    """(quarter image, base latent) for a full size of ``width`` x ``height`` (multiples of 8)."""
    quarter = resize(reference, width // 4, height // 4)
    full = resize(quarter, width, height)

    def tensor(image: NDArray[np.uint8]) -> torch.Tensor:
        return torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255.0

    with torch.no_grad():
        base = taef2.encode(tensor(full))
    return tensor(quarter), base


@torch.no_grad()
def restore(
    reference: NDArray[np.uint8],
    width: int,
    height: int,
    restorer: LatentRestorer,
    taef2: TAEF2,
    blend: float = 1.0,
    segmap: NDArray[np.integer] | None = None,
) -> NDArray[np.uint8]:
    """Full-size image from a decoded small reference (and the packet's segmentation map).

    ``blend`` < 1 mixes in the Lanczos picture: lanczos + blend * (restored - lanczos),
    trading texture (NIQE) against fidelity (PSNR); the shipped manifest holds the value
    chosen on held-out BSDS500 photos.
    """
    work_w, work_h = -(-width // 8) * 8, -(-height // 8) * 8
    edges = None
    if segmap is not None:
        grid = segment_edges(segmap, work_w // 8, work_h // 8)
        edges = torch.from_numpy(grid)[None, None]
    latent = restorer(*inputs(reference, work_w, work_h, taef2), edges)
    image = taef2.decode(latent)[0].permute(1, 2, 0)
    pixels = (image * 255).round().to(torch.uint8).numpy()
    if (work_w, work_h) != (width, height):
        pixels = resize(pixels, width, height)
    if blend >= 1.0:
        return pixels
    return mix(resize(reference, width, height), pixels, blend)


def mix(lanczos: NDArray[np.uint8], restored: NDArray[np.uint8], blend: float) -> NDArray[np.uint8]:
    """lanczos + blend * (restored - lanczos), rounded to uint8."""
    base = lanczos.astype(np.float32)
    mixed = base + blend * (restored.astype(np.float32) - base)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)
