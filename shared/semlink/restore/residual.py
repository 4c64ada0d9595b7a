"""What lite's decoder keeps of a restorer network's residual: no fixed 4-pixel grid
pattern (:func:`degrid`), no change of an area's mean colour (:func:`detail_only`), and
nothing on areas the reference shows flat (:func:`activity`). The realism network trains
through the same three (:func:`semlink.train.perceptual_restorer.decoded`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from semlink.restore.network import GRID

DEGRID_CELLS = 5
"""Side, in grid cells, of the area over which :func:`degrid` takes a pattern as fixed. 15
(60 pixels) let the realism network's dots through on skimage's coffee at 0.03 bpp once the
size-model rate control picked its reference (1.65x the original's energy at the 4-pixel
period in its smoothest block), and 9 did once VVC configuration 3 coded it (1.88x; 7:
1.32x); at 5 it is 0.83x (realism 0: 1.03x). On 20 BSDS500 val photos at 0.03 bpp, 5
instead of 9 moved realism 0 / 1 by -0.004 / +0.002 dB, MS-SSIM and HaarPSI by <= 0.0001,
NIQE by -0.14 / +0.07."""


def degrid(residual: torch.Tensor) -> torch.Tensor:
    """``residual`` without its slowly varying GRID-periodic part.

    Depth-to-space makes each of the 16 pixel phases of a 4x4 cell its own output channel:
    a network trained adversarially learns small per-phase offsets that, over a smooth
    area, print a dot pattern repeating every 4 pixels (energy at the 4-pixel period many
    times the original's). Here each phase's deviation from its cell's mean, averaged over
    DEGRID_CELLS x DEGRID_CELLS cells, is taken out: what stays is texture that changes from
    cell to cell, not a fixed grid."""
    n, c, h, w = residual.shape
    cells = F.pixel_unshuffle(residual, GRID).reshape(n, c, GRID * GRID, h // GRID, w // GRID)
    deviation = (cells - cells.mean(dim=2, keepdim=True)).reshape(n, -1, h // GRID, w // GRID)
    fixed = F.avg_pool2d(
        deviation, DEGRID_CELLS, 1, DEGRID_CELLS // 2, count_include_pad=False
    ).reshape(cells.shape)
    return F.pixel_shuffle((cells - fixed).reshape(n, -1, h // GRID, w // GRID), GRID)


TINT_CELL = 32
"""Side, in pixels, of the areas over which the realism network's residual has its mean
taken out (:func:`detail_only`)."""


def detail_only(residual: torch.Tensor) -> torch.Tensor:
    """``residual`` without its local mean colour: its mean over each TINT_CELL x TINT_CELL
    area, interpolated smoothly, is subtracted. The realism network invents detail (edges,
    texture); the colour and brightness of each area stay the reference's. An adversary
    left free shifted a BSDS500 photo's mean blue by 5 levels and darkened areas it
    re-drew with more contrast."""
    means = F.avg_pool2d(residual, TINT_CELL, ceil_mode=True)
    return residual - F.interpolate(means, size=residual.shape[2:], mode="bilinear")


FLAT = 3.0 / 255
"""Local contrast (standard deviation over a 12x12-pixel area) below which an area counts
as flat: the restorer's texture fades out there (:func:`activity`)."""


def activity(picture: torch.Tensor) -> torch.Tensor:
    """Per pixel, 0 (flat) .. 1 (structured): the local standard deviation of ``picture``
    (N x 3 x H x W, H and W multiples of GRID) over 3 x 3 grid cells, divided by
    :data:`FLAT` and clipped, upsampled bilinearly (no grid steps). A reference that is flat
    somewhere gives no evidence of texture there; an invented one is what shows as noise
    on skies and walls."""
    gray = picture.mean(dim=1, keepdim=True)
    mean = F.avg_pool2d(gray, 3 * GRID, GRID, GRID, count_include_pad=False)
    square = F.avg_pool2d(gray * gray, 3 * GRID, GRID, GRID, count_include_pad=False)
    std = (square - mean * mean).clamp(min=0).sqrt()
    gate = (std / FLAT).clamp(max=1.0)
    return F.interpolate(gate, size=picture.shape[2:], mode="bilinear", align_corners=False)
