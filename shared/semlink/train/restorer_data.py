"""The restorers' training data: BSDS500 photos, each with the VVC reference lite would
send at a budget (its own rate control), Lanczos-upsampled, cached once; random crops of
them. Never Kodak."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from semlink.imaging import resize
from semlink.restore.network import segment_edges
from semlink.restore.pixel import side_share
from semlink.streams.reference.base import small_size
from semlink.streams.reference.ratecontrol import fit_vvc
from semlink.streams.reference.vvc import VVC
from semlink.train.common import bsds_photos

BPP_RANGE = (0.015, 0.055)
HIGH_BPP_RANGE = (0.055, 0.2)
"""Budgets of the extra references a scale-aware network also learns from: on BSDS500's
481x321 photos these give the 1/2 to full-side references lite picks on larger, smoother
pictures at lower rates (Kodak at 0.03 bpp: 0.28-0.84 of the side)."""
OVERHEAD = 40
"""Bytes of a lite packet besides the reference layer (header, framing, short text)."""


def coded_reference(image: NDArray[np.uint8], bpp: float) -> NDArray[np.uint8] | None:
    """The decoded small reference lite would send at ``bpp`` (VVC rate control)."""
    height, width = image.shape[:2]
    budget = int(bpp * width * height / 8) - OVERHEAD
    found = fit_vvc(image, budget)
    if found is None:
        return None
    return VVC.decode(found.data, small_size(width, height, found.k))


def _labels(bsds: Path, photo: Path) -> NDArray[np.integer]:
    from scipy.io import loadmat

    mat = bsds / "groundTruth" / photo.parent.name / f"{photo.stem}.mat"
    labels: NDArray[np.integer] = loadmat(mat)["groundTruth"][0, 0]["Segmentation"][0, 0]
    return labels


Cache = dict[str, list[torch.Tensor]]


def build_cache(
    bsds: Path,
    path: Path,
    splits: tuple[str, ...] = ("train", "test"),
    per_photo: int = 2,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    high: int = 0,
) -> Cache:
    """Originals, Lanczos-upsampled VVC references (both uint8, H x W x 3), segment
    boundaries (uint8, H/4 x W/4) and the references' side shares, ``per_photo`` budgets
    per photo from :data:`BPP_RANGE` and ``high`` more from :data:`HIGH_BPP_RANGE`; cached
    at ``path``. Resumes a partial cache (``path`` + ``.part``) left by an interrupted run."""
    if path.exists():
        cached: Cache = torch.load(path, weights_only=True)
        return cached
    part = path.with_suffix(".part")
    cache: Cache = {"originals": [], "lanczos": [], "edges": [], "bpp": [], "scale": []}
    done = 0
    if part.exists():
        saved = torch.load(part, weights_only=True)
        cache, done = saved["cache"], int(saved["done"])
    photos = bsds_photos(bsds, splits)[:limit]
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(photos):
        if i < done:
            continue
        rng = random.Random(seed * 1_000_003 + i)
        image = np.asarray(Image.open(photo).convert("RGB"))
        height, width = (image.shape[0] // 4) * 4, (image.shape[1] // 4) * 4
        image = np.ascontiguousarray(image[:height, :width])
        edges = segment_edges(_labels(bsds, photo), width // 4, height // 4)
        budgets = [rng.uniform(*BPP_RANGE) for _ in range(per_photo)]
        budgets += [rng.uniform(*HIGH_BPP_RANGE) for _ in range(high)]
        for bpp in budgets:
            small = coded_reference(image, bpp)
            if small is None:
                continue
            cache["originals"].append(torch.from_numpy(image.copy()))
            cache["lanczos"].append(torch.from_numpy(resize(small, width, height).copy()))
            cache["edges"].append(torch.from_numpy(edges.astype(np.uint8)))
            cache["bpp"].append(torch.tensor(bpp))
            cache["scale"].append(torch.tensor(side_share(small, width, height)))
        if (i + 1) % 20 == 0:
            torch.save({"cache": cache, "done": i + 1}, part)
        if progress:
            progress(i + 1, len(photos))
    torch.save(cache, path)
    part.unlink(missing_ok=True)
    return cache


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def make_batch(
    cache: Cache,
    size: int,
    crop: int,
    rng: random.Random,
    edge_share: float,
    fidelity: float,
    vflip: bool = False,
    scales: bool = False,
) -> Batch:
    """(Lanczos crops, original crops, edges at H/4, realism per crop) of ``size`` random
    crops, randomly flipped (left-right; with ``vflip`` also upside down); ``edge_share``
    see their edges, the rest zeros. With ``scales`` the last is each crop's reference side
    share instead (a scale-aware fidelity network's FiLM input)."""
    xs, ys, es, rs = [], [], [], []
    for _ in range(size):
        i = rng.randrange(len(cache["originals"]))
        original, lanczos, edges = cache["originals"][i], cache["lanczos"][i], cache["edges"][i]
        h, w = original.shape[:2]
        top, left = 4 * rng.randrange((h - crop) // 4 + 1), 4 * rng.randrange((w - crop) // 4 + 1)
        x = lanczos[top : top + crop, left : left + crop].permute(2, 0, 1).float() / 255.0
        y = original[top : top + crop, left : left + crop].permute(2, 0, 1).float() / 255.0
        e = torch.zeros(1, crop // 4, crop // 4)
        if rng.random() < edge_share:
            e[0] = edges[top // 4 : (top + crop) // 4, left // 4 : (left + crop) // 4].float()
        if rng.random() < 0.5:
            x, y, e = x.flip(-1), y.flip(-1), e.flip(-1)
        if vflip and rng.random() < 0.5:
            x, y, e = x.flip(-2), y.flip(-2), e.flip(-2)
        xs.append(x)
        ys.append(y)
        es.append(e)
        r = 0.0 if rng.random() < fidelity else rng.random()  # drawn either way: same crops
        rs.append(float(cache["scale"][i]) if scales else r)
    return torch.stack(xs), torch.stack(ys), torch.stack(es), torch.tensor(rs)
