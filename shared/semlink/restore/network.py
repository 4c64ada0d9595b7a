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
        cells = 3 * GRID * GRID
        self.head = nn.Conv2d(cells + self.edge_channels, width, 3, padding=1)
        self.body = nn.ModuleList(Block(width) for _ in range(blocks))
        self.film = _film(width, blocks)
        self.tail = _silent(width, cells)  # starts as Lanczos
        if fine_width:
            if width % (GRID // FINE_GRID) ** 2:
                raise ValueError(f"a fine stage needs a width divisible by 4, not {width}")
            fine_cells = 3 * FINE_GRID * FINE_GRID
            context = width // (GRID // FINE_GRID) ** 2
            self.fine_head = nn.Conv2d(fine_cells + context, fine_width, 3, padding=1)
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
        )

    def forward(
        self, lanczos: torch.Tensor, realism: torch.Tensor, edges: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``lanczos``: N x 3 x H x W in [0, 1] (H, W multiples of 4); ``realism``: N values
        in [0, 1] (with :attr:`scale_input`, each reference's side share); ``edges``: N x
        1 x H/4 x W/4 segment boundaries (None: no segmentation map) -> N x 3 x H x W
        restored, not clamped."""
        parts = [F.pixel_unshuffle(lanczos, GRID)]
        if self.edge_channels:
            if edges is None:
                edges = lanczos.new_zeros(lanczos.shape[0], self.edge_channels, *parts[0].shape[2:])
            parts.append(edges)
        x = _through(self.body, self.film, F.relu(self.head(torch.cat(parts, dim=1))), realism)
        coarse = lanczos + F.pixel_shuffle(self.tail(x), GRID)
        if not self.fine_width:
            return coarse
        parts = [F.pixel_unshuffle(coarse, FINE_GRID), F.pixel_shuffle(x, GRID // FINE_GRID)]
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
