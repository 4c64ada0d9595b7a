"""lite's restorer: a small CNN at quarter resolution with a realism control.

A VVC reference at 0.01-0.05 bpp is a small picture (1/4 to 1/2 of each side) with coding
artifacts. Lanczos brings it to full size; this network adds what Lanczos cannot, working on
the H/4 x W/4 grid only (space-to-depth of the Lanczos picture, 48 channels), so it costs a
few tens of GMAC per 768x512 picture:

  reference -> Lanczos to H x W (x0) -> space-to-depth(4) ++ segment edges (H/4)
  -> conv -> residual blocks (FiLM by the realism r) -> conv -> depth-to-space(4) -> x0 + it

The realism r in [0, 1] is one scalar for the whole picture (Agustsson et al., CVPR 2023,
"Multi-Realism Image Compression with a Conditional Generator"): the network is trained
with r as input (FiLM), r = 0 for fidelity alone (L1 + MS-SSIM), larger r with a growing
adversarial weight. Its texture is mixed by r with the picture of a second network of the
same shape trained for fidelity alone (MSE, then MSE + 0.02 (1 - MS-SSIM); ``semlink
train restorer --fidelity``), so r = 0 is the fidelity network's picture (Lanczos when the
package has none) and r = 1 the realism network's (see :func:`restore`). The encoder
writes its choice into the packet header; a decoder may override it; the packet is the
same.

Trained by ``semlink train restorer`` (:mod:`semlink.train.pixel_restorer`) on BSDS500
references coded the way lite codes them (VVC rate control); never on Kodak.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from semlink import calls
from semlink.imaging import resize
from semlink.restore import SHIPPED_RESTORER

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


FIDELITY_MAX_SCALE = 0.7
"""A fidelity network without :attr:`PixelRestorer.scale_input` corrects references up to
this share of the picture's side: on BSDS500 val (photos 20-39, at 0.03 and 0.05 bpp) the
one trained on references of 1/4 to 1/2 the side gained on every reference up to 0.61
(+0.02 to +0.44 dB) but lost up to 0.37 dB on most of those above 0.7 (0.74, 0.92, 0.98,
1.0): blind to the scale, it over-sharpens nearly full-size ones."""


DOMAIN_BPP = (0.2, 0.4)
"""Reference bits per picture pixel over which the restorer's correction fades out (full
below the first, none from the second). Its networks learned from references of 0.015 to
0.2 bits per pixel; past that a reference is better than anything they saw, and they
degrade it. Lite's realism-0 gain over Lanczos on 20 BSDS500 val photos (40-59; scratch
gainsweep.py, before the fade), by packet budget: 0.05 bpp +0.151 dB, 0.1 +0.080, 0.2
+0.020, 0.4 -0.095, 0.7 -0.259, 1.0 -0.358 (realism 1 lost 0.03 to 1.31 dB at 0.4-1 bpp)."""


def strength(bits: int | None, width: int, height: int) -> float:
    """How much of the restorer's correction a reference of ``bits`` (its layer's payload;
    None: unknown, full) gets on a ``width`` x ``height`` picture (:data:`DOMAIN_BPP`)."""
    if bits is None:
        return 1.0
    low, high = DOMAIN_BPP
    return min(1.0, max(0.0, (high - bits / (width * height)) / (high - low)))


def side_share(reference: NDArray[np.uint8], width: int, height: int) -> float:
    """The reference's larger side share of the picture's (its scale, 0..1)."""
    return max(reference.shape[1] / width, reference.shape[0] / height)


def upscales(reference: NDArray[np.uint8], width: int, height: int, network: PixelRestorer) -> bool:
    """Whether the fidelity ``network`` works on this reference: always when it knows the
    reference's scale, else up to :data:`FIDELITY_MAX_SCALE` of the picture's side."""
    return network.scale_input or side_share(reference, width, height) <= FIDELITY_MAX_SCALE


def restore(
    reference: NDArray[np.uint8],
    width: int,
    height: int,
    network: PixelRestorer,
    realism: float,
    segmap: NDArray[np.integer] | None = None,
    fidelity: PixelRestorer | None = None,
    bits: int | None = None,
) -> NDArray[np.uint8]:
    """Full-size ``width`` x ``height`` image from a decoded small reference (and the
    packet's segmentation map) at ``realism`` in [0, 1].

    The output is the Lanczos picture plus ``(1 - realism) x degrid(fidelity(0) -
    lanczos) x activity + realism x degrid(network(realism) - lanczos) x activity``: the
    fidelity end is the fidelity-trained ``fidelity`` network's picture (Lanczos itself without
    one, or, when that network is blind to the scale, for a reference larger than
    :data:`FIDELITY_MAX_SCALE` of the picture), the realism end the realism network's
    texture, both scaled by :func:`strength` of the reference's ``bits`` (none past the
    references the networks learned from), faded out on flat areas (:func:`activity`)
    and without the fixed 4-pixel grid pattern depth-to-space leaves
    (:func:`degrid`; the MSE network prints one too: 11x the originals' energy on smooth
    areas of five photos without degrid, 3x on chelsea and coffee without the fade). A
    network whose weight is 0 does not run; a scale-aware fidelity network
    (:attr:`PixelRestorer.scale_input`) gets the reference's :func:`side_share` instead of
    0."""
    return restore_batch(
        [reference], width, height, network, [realism], [segmap], fidelity, [bits]
    )[0]


@torch.no_grad()
def restore_batch(
    references: Sequence[NDArray[np.uint8]],
    width: int,
    height: int,
    network: PixelRestorer,
    realisms: Sequence[float],
    segmaps: Sequence[NDArray[np.integer] | None],
    fidelity: PixelRestorer | None = None,
    bits: Sequence[int | None] | None = None,
) -> list[NDArray[np.uint8]]:
    """:func:`restore` for several pictures of one size: each network runs once on the
    stacked pictures that need it (each picture its own realism and segmentation map; at
    realism 0 the realism network stays out, at 1 the fidelity network). Every layer works
    on each picture apart, so a picture's result does not depend on its neighbours
    (tests/test_decode_batch.py checks it is the same as restoring it alone)."""
    bits = [None] * len(references) if bits is None else bits
    if not len(references) == len(realisms) == len(segmaps) == len(bits):
        raise ValueError("one realism, segmentation map and bit count (or None) per reference")
    for realism in realisms:
        if not 0.0 <= realism <= 1.0 or math.isnan(realism):
            raise ValueError(f"realism is {realism}; it must be between 0 and 1")
    pictures = [resize(reference, width, height) for reference in references]
    weights = [strength(b, width, height) for b in bits]
    textured = [r != 0.0 and w > 0 for r, w in zip(realisms, weights, strict=True)]
    faithful = [
        fidelity is not None and r != 1.0 and w > 0 and upscales(reference, width, height, fidelity)
        for reference, r, w in zip(references, realisms, weights, strict=True)
    ]
    live = [i for i in range(len(references)) if textured[i] or faithful[i]]
    if not live:
        return pictures
    work_w, work_h = -(-width // GRID) * GRID, -(-height // GRID) * GRID
    # Sizes off the grid: the edge rows/columns repeat into the padding, cropped off after.
    pad = ((0, work_h - height), (0, work_w - width), (0, 0))
    padded = np.stack([np.pad(pictures[i], pad, mode="edge") for i in live])
    x = torch.from_numpy(padded).permute(0, 3, 1, 2).float() / 255.0
    edges = None
    reads_edges = any(net is not None and net.edge_channels for net in (network, fidelity))
    if reads_edges and any(segmaps[i] is not None for i in live):
        # A picture without a segmentation map gets zeros, as the network gives it alone.
        grids = np.zeros((len(live), 1, work_h // GRID, work_w // GRID), np.float32)
        for row, i in enumerate(live):
            segmap = segmaps[i]
            if segmap is not None:
                grids[row, 0] = segment_edges(segmap, work_w // GRID, work_h // GRID)
        edges = torch.from_numpy(grids)
    scales = torch.tensor([realisms[i] for i in live])
    out = x.clone()

    def run(net: PixelRestorer, rows: list[int], r: torch.Tensor) -> torch.Tensor:
        part = x[rows]
        return net(part, r, None if edges is None else edges[rows]) - part

    # per picture: the same for a row alone or in the batch
    gate = activity(x) * torch.tensor([weights[i] for i in live])[:, None, None, None]

    def condition(net: PixelRestorer, rows: list[int], realism: torch.Tensor) -> torch.Tensor:
        """A network's FiLM input: the realism, or each reference's side share."""
        if not net.scale_input:
            return realism
        return torch.tensor([side_share(references[live[row]], width, height) for row in rows])

    rows = [row for row, i in enumerate(live) if textured[i]]
    if rows:
        residual = detail_only(degrid(run(network, rows, condition(network, rows, scales[rows]))))
        out[rows] += scales[rows, None, None, None] * residual * gate[rows]
    rows = [row for row, i in enumerate(live) if faithful[i]]
    if rows and fidelity is not None:
        residual = run(fidelity, rows, condition(fidelity, rows, torch.zeros(len(rows))))
        out[rows] += (1 - scales[rows, None, None, None]) * degrid(residual) * gate[rows]
    out = out[:, :, :height, :width]
    restored = (out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for row, i in enumerate(live):
        pictures[i] = restored[row]
    return pictures


SHIPPED = SHIPPED_RESTORER
"""The package data :func:`load_shipped` reads (:data:`semlink.restore.SHIPPED_RESTORER`)."""


FIDELITY = "fidelity_restorer"
"""Package data of the fidelity network (``semlink train restorer --fidelity``): lite's
realism-0 picture. Optional: without it realism 0 is Lanczos."""


class ShippedRestorer(NamedTuple):
    """The project-trained restorer and the realism chosen for it on held-out photos."""

    network: PixelRestorer
    realism: float
    fidelity: PixelRestorer | None = None
    """The fidelity network, when the package has one (realism 0 is Lanczos without)."""


def load_network(
    name: str, data: Traversable | None = None
) -> tuple[PixelRestorer, dict[str, Any]] | None:
    """A shipped network and its manifest from ``data`` (default: the package's data),
    checked against the manifest's sha256; None when there is no manifest of that name."""
    from safetensors.torch import load

    from semlink.models.weights import WeightsError, load_strict

    data = data or resources.files("semlink").joinpath("data")
    manifest_file = data.joinpath(f"{name}.json")
    if not manifest_file.is_file():
        return None
    manifest = json.loads(manifest_file.read_text())
    raw = data.joinpath(f"{name}.safetensors").read_bytes()
    if hashlib.sha256(raw).hexdigest() != manifest["files"][f"{name}.safetensors"]:
        raise WeightsError(f"shipped {name}.safetensors does not match its manifest")
    model = PixelRestorer.from_recipe(manifest["recipe"])
    load_strict(model, {k: v.float() for k, v in load(raw).items()}, what=name)
    return model.eval(), manifest


def load_shipped() -> ShippedRestorer | None:
    """The package's restorer (with its fidelity network when packaged), or None
    (Lanczos) when the package has none."""
    from semlink.models.weights import say_once

    found = load_network(SHIPPED)
    if found is None:
        say_once(
            f"lite: the package has no restorer (semlink/data/{SHIPPED}.json), so references "
            "are upsampled with Lanczos (`semlink train restorer --ship "
            "shared/semlink/data` writes it)"
        )
        return None
    model, manifest = found
    fidelity = load_network(FIDELITY)
    return ShippedRestorer(
        model,
        float(manifest["recipe"].get("realism", 0.0)),
        None if fidelity is None else fidelity[0],
    )


def shipped_restorer() -> ShippedRestorer | None:
    """The restorer lite decodes with by default: the process's default models' (loaded
    once, on first use), or None (Lanczos). ``decode`` without ``models=`` looks it up
    here, so replacing this function switches the default path (scripts, tests); callers
    that pass models in get theirs from :attr:`semlink.resolver.Models.restorer`."""
    from semlink.profiles import LITE
    from semlink.resolver import default_resolver

    return default_resolver().models(LITE).restorer


def upscale(
    reference: NDArray[np.uint8],
    width: int,
    height: int,
    segmap: NDArray[np.integer] | None = None,
    restorer: ShippedRestorer | None = None,
    realism: float | None = None,
    bits: int | None = None,
) -> NDArray[np.uint8]:
    """The lite decoder's last stage: the learned ``restorer`` at ``realism`` (default: the
    restorer's own default) when given, else Lanczos; ``bits``: the reference layer's
    payload (:func:`strength`)."""
    if restorer is None:
        return resize(reference, width, height)
    network, default, fidelity = restorer
    realism = default if realism is None else realism
    return restore(reference, width, height, network, realism, segmap, fidelity, bits)
