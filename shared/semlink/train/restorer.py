"""Recipe c: the latent restorer (:mod:`semlink.restore.latent`).

Data: BSDS500 train + test (400 photos; val's 100 are held out), each coded the way lite
codes references: HEVC at a random scale in lite's range and the largest quality that
fits a random budget of 0.02-0.05 bpp. Cached once: the decoded reference at H/4 x W/4
and the TAEF2 latent of the original. Never Kodak.

Loss: L1 between predicted and true latents (cheap: everything at H/8), and every
``pixel_every`` steps a pixel-domain step through the frozen TAEF2 decoder on small crops:
L1 + 0.5 (1 - MS-SSIM) + ``adv_weight`` x a hinge GAN loss from a spectral-norm PatchGAN
discriminator (trained in the same step to tell TAEF2's decoding of the true latent from
the restorer's), so the restorer is pushed towards texture rather than the blur that
L1 and MS-SSIM alone favour.

The segmentation map: BSDS500's human segmentations (first annotator) give region
boundaries at H/8; half of the batches see them, half see zeros (no segmap layer), so one
network serves packets with and without a segmentation layer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

from semlink.imaging import resize
from semlink.models.taef2 import TAEF2, frozen_taef2
from semlink.restore.latent import LatentRestorer
from semlink.streams.reference import ReferenceCodec, decode_file, search, small_size
from semlink.train.common import (
    Adversary,
    RunState,
    bsds_photos,
    init_from,
    load_adversary,
    load_checkpoint,
    run,
    save_adversary,
    segment_edge_maps,
)

SCALES = (40, 48, 54, 64, 72)
BPPS = (0.02, 0.03, 0.05)


@dataclass
class RestorerRecipe:
    width: int = 64
    blocks: int = 6
    batch: int = 16
    crop: int = 32
    """Latent crop side (x 8 pixels)."""
    lr: float = 2e-4
    pixel_every: int = 4
    pixel_crop: int = 16
    pixel_batch: int = 4
    edges: bool = True
    edge_share: float = 0.5
    """Share of crops that see the segmentation boundaries (the rest see zeros)."""
    adv_weight: float = 0.05
    disc_lr: float = 2e-4
    seed: int = 0


def _coded_reference(image: NDArray[np.uint8], rng: random.Random) -> NDArray[np.uint8] | None:
    """The small decoded reference lite would send: HEVC at a random scale and budget."""
    height, width = image.shape[:2]
    budget = int(rng.choice(BPPS) * width * height / 8) - 40  # header, text, framing
    found = search(image, budget, codecs=(ReferenceCodec.HEVC,), scales=(rng.choice(SCALES),))
    if found is None:
        return None
    return decode_file(found.codec, found.data, small_size(width, height, found.k))


def build_cache(
    bsds: Path,
    taef2: TAEF2,
    path: Path,
    splits: tuple[str, ...],
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[torch.Tensor]]:
    """Decoded references (uint8, H/4) and TAEF2 latents (fp16, H/8) per photo; cached."""
    if path.exists():
        cached: dict[str, list[torch.Tensor]] = torch.load(path, weights_only=True)
        return cached
    rng = random.Random(seed)
    photos = bsds_photos(bsds, splits)[:limit]
    quarters, latents, bases = [], [], []
    for i, photo in enumerate(photos):
        image = np.asarray(Image.open(photo).convert("RGB"))
        height, width = (image.shape[0] // 8) * 8, (image.shape[1] // 8) * 8
        image = np.ascontiguousarray(image[:height, :width])
        small = _coded_reference(image, rng)
        if small is None:
            continue
        quarters.append(torch.from_numpy(resize(small, width // 4, height // 4).copy()))
        bases.append(_base(quarters[-1], taef2))
        with torch.no_grad():
            x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
            latents.append(taef2.encode(x)[0].half())
        if progress:
            progress(i + 1, len(photos))
    cache = {"quarters": quarters, "latents": latents, "bases": bases}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache, path)
    return cache


def _base(quarter: torch.Tensor, taef2: TAEF2) -> torch.Tensor:
    """TAEF2 latent of the quarter picture upsampled to full size (the restorer's start)."""
    height, width = quarter.shape[0] * 4, quarter.shape[1] * 4
    full = resize(quarter.numpy(), width, height)
    with torch.no_grad():
        x = torch.from_numpy(full.copy()).permute(2, 0, 1)[None].float() / 255.0
        return taef2.encode(x)[0].half()


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _batch(
    cache: dict[str, list[torch.Tensor]],
    size: int,
    crop: int,
    rng: random.Random,
    edge_share: float = 0.0,
) -> Batch:
    """(quarters, base latents, target latents, segment edges) of ``size`` random crops;
    ``edge_share`` of them see their edges (needs ``cache["edges"]``), the rest zeros."""
    xs, bs, ys, es = [], [], [], []
    for _ in range(size):
        i = rng.randrange(len(cache["latents"]))
        latent, quarter, base = cache["latents"][i], cache["quarters"][i], cache["bases"][i]
        h, w = latent.shape[1:]
        top, left = rng.randrange(h - crop + 1), rng.randrange(w - crop + 1)
        ys.append(latent[:, top : top + crop, left : left + crop].float())
        bs.append(base[:, top : top + crop, left : left + crop].float())
        q = quarter[2 * top : 2 * (top + crop), 2 * left : 2 * (left + crop)]
        xs.append(q.permute(2, 0, 1).float() / 255.0)
        edges = torch.zeros(1, crop, crop)
        if "edges" in cache and rng.random() < edge_share:
            edges[0] = cache["edges"][i][top : top + crop, left : left + crop].float()
        es.append(edges)
    return torch.stack(xs), torch.stack(bs), torch.stack(ys), torch.stack(es)


def training_step(
    model: LatentRestorer,
    optimizer: torch.optim.Optimizer,
    quarter: torch.Tensor,
    base: torch.Tensor,
    latent: torch.Tensor,
    edges: torch.Tensor | None = None,
    taef2: TAEF2 | None = None,
    adversary: Adversary | None = None,
) -> float:
    """One step: latent L1, or (with ``taef2``) pixel L1 + 0.5 (1 - MS-SSIM) through its
    decoder, plus (with ``adversary``) the hinge GAN loss, then one discriminator step."""
    model.train()
    optimizer.zero_grad()
    predicted = model(quarter, base, edges)
    if taef2 is None:
        loss = F.l1_loss(predicted, latent)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    from pytorch_msssim import ms_ssim

    target = taef2.decode(latent).detach()
    image = taef2.decoder(predicted).clamp(0, 1)
    ms = ms_ssim(image, target, data_range=1.0, win_size=3, weights=[0.3, 0.4, 0.3])
    loss = F.l1_loss(image, target) + 0.5 * (1 - ms)
    if adversary is not None:
        for p in adversary.net.parameters():
            p.requires_grad_(False)
        loss = loss - adversary.weight * adversary.net(image * 2 - 1).mean()
    loss.backward()
    optimizer.step()
    if adversary is not None:
        discriminator_step(adversary, target, image.detach())
    return float(loss.detach())


def hinge_loss(adversary: Adversary, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss on images in [0, 1]."""
    net = adversary.net
    return F.relu(1 - net(real * 2 - 1)).mean() + F.relu(1 + net(fake * 2 - 1)).mean()


def discriminator_step(adversary: Adversary, real: torch.Tensor, fake: torch.Tensor) -> float:
    for p in adversary.net.parameters():
        p.requires_grad_(True)
    adversary.optimizer.zero_grad()
    loss = hinge_loss(adversary, real, fake)
    loss.backward()
    adversary.optimizer.step()
    return float(loss.detach())


def train(
    bsds: Path,
    taef2_dir: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: RestorerRecipe | None = None,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    init: Path | None = None,
) -> RunState:
    """Train (resuming from ``out/checkpoint.pt`` when present, else starting from ``init``,
    another run's checkpoint, when given) and write a loss curve."""
    recipe = recipe or RestorerRecipe()
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    taef2 = frozen_taef2(taef2_dir)
    cache = build_cache(
        bsds,
        taef2,
        out / "cache.pt",
        ("train", "test"),
        recipe.seed,
        limit,
        None if progress is None else lambda i, n: progress("caching BSDS500", i, n),
    )
    if recipe.edges:
        photos = bsds_photos(bsds, ("train", "test"))[:limit]
        shapes = [tuple(z.shape[1:]) for z in cache["latents"]]
        cache["edges"] = segment_edge_maps(bsds, photos, shapes)  # type: ignore[arg-type]
    model = LatentRestorer(recipe.width, recipe.blocks, recipe.edges)
    if init is not None and not (out / "checkpoint.pt").exists():
        init_from(model, init)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    state = load_checkpoint(out, model, optimizer)
    adversary = None
    if recipe.adv_weight > 0:
        adversary = load_adversary(out, recipe.adv_weight, recipe.disc_lr)
    rng.seed(recipe.seed * 1_000_003 + state.step)  # resumed runs draw fresh crops

    def step() -> float | None:
        share = recipe.edge_share
        if recipe.pixel_every and (state.step + 1) % recipe.pixel_every == 0:
            batch = _batch(cache, recipe.pixel_batch, recipe.pixel_crop, rng, share)
            training_step(model, optimizer, *batch, taef2, adversary)
            if adversary is not None and (state.step + 1) % 200 == 0:
                save_adversary(out, adversary, state)
            return None  # the curve logs the latent loss only
        batch = _batch(cache, recipe.batch, recipe.crop, rng, share)
        return training_step(model, optimizer, *batch)

    state = run(
        step,
        state,
        steps=steps,
        minutes=minutes,
        out=out,
        model=model,
        optimizer=optimizer,
        title="latent restorer: latent L1",
        progress=progress,
    )
    if adversary is not None:
        save_adversary(out, adversary, state)
    return state
