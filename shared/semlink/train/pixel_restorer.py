"""Recipe c: lite's restorer (:mod:`semlink.restore.pixel`), trained on VVC references.

Data (:mod:`semlink.train.restorer_data`): BSDS500 train + test (400 photos; val's 100
are held out), each coded the way lite codes its reference, by the VVC rate control (the
scales and QPs lite picks) at two budgets drawn from 0.015-0.055 bpp (the fidelity recipe
adds one from 0.055-0.2 bpp: the larger references lite picks on larger photos). Cached
once (``cache.pt``): the original (cropped to a multiple of 4), the Lanczos upsampling of
the decoded reference, its side share, and the first human segmentation's boundaries on
the H/4 grid. Never Kodak. Judged and shipped by :mod:`semlink.train.restorer_ship`.

Loss, per crop with its realism r drawn from [0, 1] (a quarter of the crops at r = 0):
(1 - r/2) x [L1 + 0.5 (1 - MS-SSIM)] against the original, plus r x ``adv_weight`` x a
hinge GAN loss from a spectral-norm PatchGAN discriminator (trained in the same step, its
loss on each fake weighted by that fake's r). At r = 0 the network is a plain fidelity
(L1/MS-SSIM) restorer; towards r = 1 it trades fidelity for texture.

The fidelity recipe (``--fidelity``, :data:`FIDELITY`) trains the network lite decodes
realism 0 with: every crop at r = 0, MSE (optionally + ``--ms-ssim-weight`` x (1 -
MS-SSIM), :func:`mse_loss`), no adversary.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from semlink.restore.network import PixelRestorer
from semlink.train.common import (
    CHECKPOINT,
    Adversary,
    RunState,
    cosine_lr,
    init_from,
    load_adversary,
    load_checkpoint,
    run,
    save_adversary,
)
from semlink.train.growth import grow
from semlink.train.restorer_data import build_cache, make_batch

RECIPE = "recipe.json"
"""The run directory's record of the recipe it was trained with (the manifest copies it)."""
MS_SSIM_MIN_CROP = 96
"""pytorch_msssim refuses pictures of this side or less with 7-pixel windows (it checks
room for 5 scales, whatever the weights ask)."""
MS_SSIM_SCALES = [0.3, 0.4, 0.3]
"""Weights of the fidelity network's MS-SSIM term at full, half and quarter size."""


@dataclass
class PixelRestorerRecipe:
    width: int = 48
    blocks: int = 8
    batch: int = 8
    crop: int = 96
    """Pixel crop side (a multiple of 4)."""
    lr: float = 5e-4
    edges: bool = True
    edge_share: float = 0.5
    """Share of crops that see the segmentation boundaries (the rest see zeros)."""
    adv_weight: float = 0.08
    disc_lr: float = 2e-4
    adv_start: int = 0
    """Steps of fidelity training before the discriminator joins (cheaper steps first)."""
    fidelity_share: float = 0.25
    """Share of crops trained at realism 0 exactly."""
    seed: int = 0
    fidelity_only: bool = False
    """The fidelity restorer (:data:`FIDELITY`): MSE at realism 0 on every crop, no
    adversary; lite decodes realism 0 with it."""
    decay_steps: int = 0
    """Cosine learning-rate decay to 0 over this many steps (0: constant)."""
    vflip: bool = False
    """Also flip crops vertically (at random)."""
    scale_input: bool = False
    """The fidelity network's FiLM input is each reference's side share instead of the
    realism (:attr:`PixelRestorer.scale_input`)."""
    high_budgets: int = 0
    """References per photo at :data:`~semlink.train.restorer_data.HIGH_BPP_RANGE`
    besides the two at :data:`~semlink.train.restorer_data.BPP_RANGE`."""
    fine_width: int = 0
    """Channels of the H/2 stage (:attr:`PixelRestorer.fine_width`; 0: none)."""
    fine_blocks: int = 0
    """Residual blocks of the H/2 stage."""
    ms_ssim_weight: float = 0.0
    """With :attr:`fidelity_only`: the loss is MSE + this x (1 - MS-SSIM) (:func:`mse_loss`)
    instead of MSE alone; needs crops over :data:`MS_SSIM_MIN_CROP` pixels."""

    def network(self) -> PixelRestorer:
        """A new network of this recipe's shape."""
        return PixelRestorer.from_recipe(asdict(self))

    def __post_init__(self) -> None:
        if self.ms_ssim_weight and self.crop <= MS_SSIM_MIN_CROP:
            raise ValueError(
                f"an MS-SSIM term needs crops over {MS_SSIM_MIN_CROP} pixels "
                f"(7-pixel windows); this recipe crops {self.crop}"
            )


FIDELITY = PixelRestorerRecipe(
    crop=128,
    lr=1e-3,
    adv_weight=0.0,
    fidelity_only=True,
    decay_steps=12000,
    vflip=True,
    scale_input=True,
    high_budgets=1,
)
"""Recipe of the fidelity restorer (``semlink train restorer --fidelity``)."""


def fidelity_loss(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per crop: L1 + 0.5 (1 - MS-SSIM) (3 scales, 3x3 windows: fits 64-pixel crops)."""
    from pytorch_msssim import ms_ssim

    ms = ms_ssim(
        image, target, data_range=1.0, win_size=3, weights=[0.3, 0.4, 0.3], size_average=False
    )
    l1: torch.Tensor = (image - target).abs().mean(dim=(1, 2, 3))
    return l1 + 0.5 * (1 - ms)


def mse_loss(
    image: torch.Tensor, target: torch.Tensor, ms_ssim_weight: float = 0.0
) -> torch.Tensor:
    """The fidelity network's loss over a batch: mean squared error, plus ``ms_ssim_weight``
    x (1 - MS-SSIM) of the picture clamped to [0, 1] as it is delivered (7-pixel windows,
    :data:`MS_SSIM_SCALES`). MSE alone is blind to the structure of what it cannot
    restore; the term moves the network's guesses towards the local contrast and
    structure MS-SSIM scores, at the cost of a little PSNR."""
    error = F.mse_loss(image, target)
    if not ms_ssim_weight:
        return error
    from pytorch_msssim import ms_ssim

    ms = ms_ssim(image.clamp(0, 1), target, data_range=1.0, win_size=7, weights=MS_SSIM_SCALES)
    return error + ms_ssim_weight * (1 - ms)


def training_step(
    model: PixelRestorer,
    optimizer: torch.optim.Optimizer,
    lanczos: torch.Tensor,
    original: torch.Tensor,
    edges: torch.Tensor,
    realism: torch.Tensor,
    adversary: Adversary | None = None,
    mse: bool = False,
    ms_ssim_weight: float = 0.0,
) -> float:
    """One generator step (then, with ``adversary``, one discriminator step); the mean
    fidelity loss at this batch (with ``mse``, :func:`mse_loss` with ``ms_ssim_weight`` is
    the loss)."""
    model.train()
    optimizer.zero_grad()
    image = model(lanczos, realism, edges)
    if mse:
        error = mse_loss(image, original, ms_ssim_weight)
        error.backward()
        optimizer.step()
        return float(error.detach())
    fid = fidelity_loss(image, original)
    loss = ((1 - realism / 2) * fid).mean()
    if adversary is not None:
        for p in adversary.net.parameters():
            p.requires_grad_(False)
        scores = adversary.net(image * 2 - 1).mean(dim=(1, 2, 3))
        loss = loss - adversary.weight * (realism * scores).mean()
    loss.backward()
    optimizer.step()
    if adversary is not None and float(realism.sum()) > 0:
        discriminator_step(adversary, original, image.detach(), realism)
    return float(fid.mean().detach())


def discriminator_step(
    adversary: Adversary, real: torch.Tensor, fake: torch.Tensor, realism: torch.Tensor
) -> float:
    """Hinge loss; each fake weighted by its realism (fakes at r = 0 are not its business)."""
    net = adversary.net
    for p in net.parameters():
        p.requires_grad_(True)
    adversary.optimizer.zero_grad()
    real_loss = F.relu(1 - net(real * 2 - 1)).mean()
    fake_scores = F.relu(1 + net(fake * 2 - 1)).mean(dim=(1, 2, 3))
    loss = real_loss + (realism * fake_scores).sum() / realism.sum()
    loss.backward()
    adversary.optimizer.step()
    return float(loss.detach())


def train(
    bsds: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: PixelRestorerRecipe | None = None,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    init: Path | None = None,
) -> RunState:
    """Train, resuming from ``out/checkpoint.pt`` when present, else starting from the
    weights of the checkpoint ``init`` (a fine-tune: fresh optimizer, steps counted from
    0); writes a loss curve."""
    recipe = recipe or PixelRestorerRecipe()
    out.mkdir(parents=True, exist_ok=True)
    (out / RECIPE).write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    cache = build_cache(
        bsds,
        out / "cache.pt",
        seed=recipe.seed,
        limit=limit,
        progress=None if progress is None else lambda i, n: progress("caching BSDS500", i, n),
        high=recipe.high_budgets,
    )
    if recipe.scale_input and "scale" not in cache:
        raise ValueError(
            f"{out / 'cache.pt'} was built without the references' scales; delete it "
            "(or train into a new directory) to rebuild it"
        )
    model = recipe.network()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    if init is not None and not (out / CHECKPOINT).exists():
        init_from(model, init, grow)
    state = load_checkpoint(out, model, optimizer)
    adversary = None
    if recipe.adv_weight > 0 and not recipe.fidelity_only:
        adversary = load_adversary(out, recipe.adv_weight, recipe.disc_lr)
    rng.seed(recipe.seed * 1_000_003 + state.step)  # resumed runs draw fresh crops

    def step() -> float | None:
        if recipe.decay_steps:
            cosine_lr(optimizer, recipe.lr, state.step, recipe.decay_steps)
        share = 1.0 if recipe.fidelity_only else recipe.fidelity_share
        batch = make_batch(
            cache,
            recipe.batch,
            recipe.crop,
            rng,
            recipe.edge_share,
            share,
            recipe.vflip,
            recipe.scale_input,
        )
        active = adversary if state.step >= recipe.adv_start else None
        loss = training_step(
            model,
            optimizer,
            *batch,
            active,
            mse=recipe.fidelity_only,
            ms_ssim_weight=recipe.ms_ssim_weight,
        )
        if active is not None and (state.step + 1) % 50 == 0:
            save_adversary(out, active, state)
        return loss

    state = run(
        step,
        state,
        steps=steps,
        minutes=minutes,
        out=out,
        model=model,
        optimizer=optimizer,
        title=(
            "lite fidelity restorer: MSE"
            + (f" + {recipe.ms_ssim_weight:g} (1 - MS-SSIM)" if recipe.ms_ssim_weight else "")
        )
        if recipe.fidelity_only
        else "lite restorer: fidelity loss (L1 + 0.5 (1 - MS-SSIM))",
        progress=progress,
    )
    if adversary is not None:
        save_adversary(out, adversary, state)
    return state
