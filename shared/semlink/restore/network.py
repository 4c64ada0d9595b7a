"""lite's restorer network: a small CNN at quarter resolution with a FiLM input.

A VVC reference at 0.01-0.05 bpp is a small picture (1/4 to 1/2 of each side) with coding
artifacts. Lanczos brings it to full size; this network adds what Lanczos cannot, working on
the H/4 x W/4 grid (space-to-depth of the Lanczos picture), plus an optional stage on the
H/2 grid, so it costs a few tens of GMAC per 768x512 picture:

  reference -> Lanczos to H x W (x0) -> space-to-depth(4) ++ segment edges (H/4)
  -> conv -> residual blocks (FiLM by one scalar) -> conv -> depth-to-space(4) -> x0 + it

The FiLM scalar is the realism (Agustsson et al., CVPR 2023, "Multi-Realism Image
Compression with a Conditional Generator") or, for the fidelity and realism networks lite
ships, the reference's side share. What the decoder keeps of a network's residual is
:mod:`semlink.restore.residual`'s business; how the two shipped networks make one picture
at a realism, :mod:`semlink.restore.pixel`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from semlink import calls

EDGE_CHANNELS = 1
GRID = 4
"""The network works on the H/GRID x W/GRID grid."""
FINE_GRID = 2
"""The optional fine stage (:attr:`PixelRestorer.fine_width`) works on the H/2 x W/2 grid."""


def segment_edges(labels: NDArray[np.integer], width: int, height: int) -> NDArray[np.float32]:
    """Region boundaries of a label map (any resolution) on the ``width`` x ``height`` grid:
    1 where a cell's label differs from its right or lower neighbour's."""
    rows = np.minimum(np.arange(height) * labels.shape[0] // height, labels.shape[0] - 1)
    cols = np.minimum(np.arange(width) * labels.shape[1] // width, labels.shape[1] - 1)
    grid = np.asarray(labels)[rows][:, cols]
    edges = np.zeros((height, width), np.float32)
    edges[:, :-1] += grid[:, 1:] != grid[:, :-1]
    edges[:-1, :] += grid[1:, :] != grid[:-1, :]
    return np.minimum(edges, 1.0)


def hash_noise(count: int, channels: int, height: int, width: int) -> torch.Tensor:
    """``count`` x ``channels`` x ``height`` x ``width`` noise of zero mean and unit variance
    (uniform), the same for every picture of a size and on every machine: each value is an
    integer hash of its position (murmur3's finaliser), not a random generator's draw,
    so a packet decodes to the same picture whatever numpy or torch version, CPU or GPU."""
    index = torch.arange(channels * height * width, dtype=torch.int64)
    h = (index * 0x9E3779B1 + 0x85EBCA77) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    uniform = (h >> 8).to(torch.float32) / float(1 << 24)  # 24 bits: exact in float32
    noise = ((uniform - 0.5) * 12**0.5).reshape(1, channels, height, width)
    return noise.expand(count, -1, -1, -1)


class Block(nn.Module):
    """conv -> FiLM(r) -> ReLU -> conv, added to its input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        y = F.relu(y * (1 + scale[:, :, None, None]) + shift[:, :, None, None])
        return x + self.conv2(y)


class PixelRestorer(nn.Module):
    def __init__(
        self,
        width: int = 48,
        blocks: int = 8,
        edges: bool = True,
        scale_input: bool = False,
        fine_width: int = 0,
        fine_blocks: int = 0,
        noise: int = 0,
    ) -> None:
        super().__init__()
        self.width, self.blocks = width, blocks
        self.fine_width, self.fine_blocks = fine_width, fine_blocks
        """A second stage on the H/2 grid (0: none): it reads the first stage's picture
        (space-to-depth by 2) and its features (depth-to-space by 2) and adds a residual of
        its own. At a reference of half the picture's side the H/4 grid holds 2 x 2 of its
        pixels per cell; this stage works at the reference's own density."""
        self.scale_input = scale_input
        """The FiLM scalar is the reference's side share (:func:`side_share`) instead of the
        realism: the fidelity network, which only ever runs at realism 0, learns how much to
        sharpen a reference of each scale (``semlink train restorer --fidelity``)."""
        self.edge_channels = EDGE_CHANNELS if edges else 0
        self.noise = noise
        """Full-size noise maps the network reads (0: none), space-to-depth into each
        stage's input beside the picture: texture a reference lost cannot be computed from
        it, only invented, and a network of the picture alone can invent only what the
        picture's own structure seeds. The decoder gives :func:`hash_noise`; training, fresh
        noise every step."""
        cells = 3 * GRID * GRID
        self.head = nn.Conv2d(cells + self.edge_channels + noise * GRID * GRID, width, 3, padding=1)
        self.body = nn.ModuleList(Block(width) for _ in range(blocks))
        self.film = _film(width, blocks)
        self.tail = _silent(width, cells)  # starts as Lanczos
        if fine_width:
            if width % (GRID // FINE_GRID) ** 2:
                raise ValueError(f"a fine stage needs a width divisible by 4, not {width}")
            fine_cells = 3 * FINE_GRID * FINE_GRID
            context = width // (GRID // FINE_GRID) ** 2
            fine_noise = noise * FINE_GRID * FINE_GRID
            self.fine_head = nn.Conv2d(fine_cells + context + fine_noise, fine_width, 3, padding=1)
            self.fine_body = nn.ModuleList(Block(fine_width) for _ in range(fine_blocks))
            self.fine_film = _film(fine_width, fine_blocks)
            self.fine_tail = _silent(fine_width, fine_cells)  # starts as the first stage's

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any]) -> PixelRestorer:
        """A new network of a recipe's shape (``PixelRestorerRecipe`` fields, as a shipped
        manifest holds them; a field older manifests lack takes the value their networks
        were built with)."""
        return cls(
            recipe["width"],
            recipe["blocks"],
            recipe.get("edges", False),
            recipe.get("scale_input", False),
            recipe.get("fine_width", 0),
            recipe.get("fine_blocks", 0),
            recipe.get("noise", 0),
        )

    def forward(
        self,
        lanczos: torch.Tensor,
        realism: torch.Tensor,
        edges: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``lanczos``: N x 3 x H x W in [0, 1] (H, W multiples of 4); ``realism``: N values
        in [0, 1] (with :attr:`scale_input`, each reference's side share); ``edges``: N x
        1 x H/4 x W/4 segment boundaries (None: no segmentation map); ``noise``: N x
        :attr:`noise` x H x W (None: :func:`hash_noise`) -> N x 3 x H x W restored, not
        clamped."""
        parts = [F.pixel_unshuffle(lanczos, GRID)]
        if self.edge_channels:
            if edges is None:
                edges = lanczos.new_zeros(lanczos.shape[0], self.edge_channels, *parts[0].shape[2:])
            parts.append(edges)
        if self.noise:
            if noise is None:
                noise = hash_noise(lanczos.shape[0], self.noise, *lanczos.shape[2:])
            noise = noise.to(lanczos)
            parts.append(F.pixel_unshuffle(noise, GRID))
        else:
            noise = None  # a network without the input reads none, whatever it is given
        x = _through(self.body, self.film, F.relu(self.head(torch.cat(parts, dim=1))), realism)
        coarse = lanczos + F.pixel_shuffle(self.tail(x), GRID)
        if not self.fine_width:
            return coarse
        parts = [F.pixel_unshuffle(coarse, FINE_GRID), F.pixel_shuffle(x, GRID // FINE_GRID)]
        if noise is not None:
            parts.append(F.pixel_unshuffle(noise, FINE_GRID))
        y = F.relu(self.fine_head(torch.cat(parts, dim=1)))
        y = _through(self.fine_body, self.fine_film, y, realism)
        return coarse + F.pixel_shuffle(self.fine_tail(y), FINE_GRID)


def _film(width: int, blocks: int) -> nn.Sequential:
    """realism -> (scale, shift) per block and channel; starts at zero (no effect)."""
    last = nn.Linear(64, 2 * width * blocks)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Linear(1, 64), nn.ReLU(), last)


def _silent(width: int, cells: int) -> nn.Conv2d:
    """A stage's last convolution, zero: the stage adds nothing until it learns to."""
    conv = nn.Conv2d(width, cells, 3, padding=1, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


def _through(
    body: nn.ModuleList, film: nn.Module, x: torch.Tensor, realism: torch.Tensor
) -> torch.Tensor:
    """``x`` through the residual ``body``, each block modulated by ``film(realism)``."""
    modulation = film(realism.reshape(-1, 1).to(x.dtype)).chunk(2 * len(body), dim=1)
    for i, block in enumerate(body):
        calls.check()  # a stopped call's picture is not finished (a no-op outside calls)
        x = block(x, modulation[2 * i], modulation[2 * i + 1])
    return x
