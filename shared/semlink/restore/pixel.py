"""lite's restorer: one picture at a realism from two small networks.

A VVC reference at 0.01-0.05 bpp is a small picture (1/4 to 1/2 of each side) with coding
artifacts. Lanczos brings it to full size; two networks of the same shape
(:class:`~semlink.restore.network.PixelRestorer`) add what Lanczos cannot: the fidelity
network (MSE, then MSE + 0.02 (1 - MS-SSIM); ``semlink train restorer --fidelity``) and the
realism network (L1 + LPIPS-VGG + a conditional GAN; ``semlink train perceptual``). The
realism r in [0, 1] (Agustsson et al., CVPR 2023, "Multi-Realism Image Compression with a
Conditional Generator") mixes their residuals, so r = 0 is the fidelity network's picture
(Lanczos when the package has none) and r = 1 the realism network's (see :func:`restore`),
each residual shaped by :mod:`semlink.restore.residual`. The encoder writes its choice into
the packet header; a decoder may override it; the packet is the same.

Trained on BSDS500 references coded the way lite codes them (VVC rate control, recipes in
:mod:`semlink.train.pixel_restorer` and :mod:`semlink.train.perceptual_restorer`); never on
Kodak.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from semlink.imaging import resize
from semlink.restore import SHIPPED_RESTORER
from semlink.restore.network import GRID, PixelRestorer, segment_edges
from semlink.restore.residual import activity, degrid, detail_only

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


def load_shipped(data: Traversable | None = None) -> ShippedRestorer | None:
    """The package's restorer (with its fidelity network when packaged), or None
    (Lanczos) when the package has none; ``data``: another folder laid out as the
    package's data (default: the package's)."""
    from semlink.models.weights import say_once

    found = load_network(SHIPPED, data)
    if found is None:
        say_once(
            f"lite: the package has no restorer (semlink/data/{SHIPPED}.json), so references "
            "are upsampled with Lanczos (`semlink train restorer --ship "
            "shared/semlink/data` writes it)"
        )
        return None
    model, manifest = found
    fidelity = load_network(FIDELITY, data)
    return ShippedRestorer(
        model,
        float(manifest["recipe"].get("realism", 0.0)),
        None if fidelity is None else fidelity[0],
    )
