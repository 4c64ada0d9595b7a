"""Recipe b: a compressai-style scale hyperprior over TAEF2 latents (the HSC / generative
latent coding idea), decoded by the TAEF2 decoder.

TAEF2 turns an image into 32 channels at H/8 x W/8 and back with sharp texture. Coding
those latents instead of pixels spends the bits where the pretrained decoder needs them.
At 0.03 bpp there are about 2 bits per latent position (all 32 channels together), so the
analysis transform halves the resolution again and the hyperprior decides what survives.

Loss: lambda * 255^2 * MSE in pixels + bits per image pixel (from the likelihoods), plus
compressai's auxiliary loss for the entropy bottleneck's quantiles. The pixels are the
frozen TAEF2 decoder's picture of the decoded latent against its picture of the true one.
(MSE in latent space is the wrong distortion: TAEF2 latents are mostly texture, and a
first run with it learned to send almost nothing: its latent MSE stayed at 0.66 against
a latent variance of 0.70.) Data: the TAEF2 latents of BSDS500 train+test cached by the
restorer recipe (``cache.pt``); never Kodak.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from semlink.models.codecs import latent_hyperprior
from semlink.models.taef2 import TAEF2, frozen_taef2
from semlink.train import ref_codec
from semlink.train.common import RunState, load_checkpoint


@dataclass
class LatentCodecRecipe:
    n: int = 96
    m: int = 64
    lam: float = 0.0018
    """compressai's lambda: weight of pixel MSE (0..255 scale) against bits per pixel."""
    batch: int = 4
    crop: int = 16
    """Latent crop side (x 8 pixels); a multiple of 8."""
    lr: float = 1e-4
    seed: int = 0


def rd_loss(
    model: Any, latent: torch.Tensor, lam: float, taef2: TAEF2 | None = None
) -> tuple[torch.Tensor, float, float]:
    """(loss, bits per image pixel, MSE) for a batch of latents. With ``taef2`` the MSE is
    in pixels (0..1) through its decoder, weighted by lam * 255^2; else in latent space."""
    out = model(latent)
    pixels = latent.shape[0] * latent.shape[2] * latent.shape[3] * 64
    bits = torch.stack([-torch.log2(lik).sum() for lik in out["likelihoods"].values()]).sum()
    bpp = bits / pixels
    if taef2 is None:
        mse = F.mse_loss(out["z_hat"], latent)
        return lam * mse + bpp, float(bpp.detach()), float(mse.detach())
    with torch.no_grad():
        target = taef2.decode(latent)
    mse = F.mse_loss(taef2.decoder(out["z_hat"]).clamp(0, 1), target)
    return lam * 255**2 * mse + bpp, float(bpp.detach()), float(mse.detach())


def training_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    aux_optimizer: torch.optim.Optimizer,
    latent: torch.Tensor,
    lam: float,
    taef2: TAEF2 | None = None,
) -> tuple[float, float, float]:
    """One rate-distortion step on a batch of latents: (loss, bpp, MSE)."""
    return ref_codec.training_step(
        model, optimizer, aux_optimizer, lambda: rd_loss(model, latent, lam, taef2)
    )


def train(
    cache_path: Path,
    taef2_dir: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: LatentCodecRecipe | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> RunState:
    """Train on cached TAEF2 latents (the restorer recipe's ``cache.pt``); resumable.
    ``report`` gets a line of bpp (of the image the latents came from) every 200 steps."""
    recipe = recipe or LatentCodecRecipe()
    torch.manual_seed(recipe.seed)
    latents = torch.load(cache_path, weights_only=True)["latents"]
    taef2 = frozen_taef2(taef2_dir)
    model = latent_hyperprior(recipe.n, recipe.m)

    def batch(rng: random.Random) -> torch.Tensor:
        crops = []
        for _ in range(recipe.batch):
            z = latents[rng.randrange(len(latents))]
            top = rng.randrange(z.shape[1] - recipe.crop + 1)
            left = rng.randrange(z.shape[2] - recipe.crop + 1)
            crops.append(z[:, top : top + recipe.crop, left : left + recipe.crop].float())
        return torch.stack(crops)

    return ref_codec.train_rate_distortion(
        model,
        out,
        lr=recipe.lr,
        seed=recipe.seed,
        batch=batch,
        loss=lambda x: rd_loss(model, x, recipe.lam, taef2),
        describe=lambda bpp, mse: (
            f"{bpp:.4f} bpp, {10 * np.log10(1 / mse):.2f} dB against TAEF2's own picture"
        ),
        title=f"TAEF2 latent hyperprior, lambda {recipe.lam}: lambda*255^2*pixel MSE + bpp",
        steps=steps,
        minutes=minutes,
        progress=progress,
        report=report,
    )


def ship_latent_codec(
    out: Path, dest: Path, bsds: Path, taef2_dir: Path, recipe: LatentCodecRecipe | None = None
) -> Path:
    """A learned-codec directory for the TAEF2 latent path, pinned to these TAEF2 weights."""
    from semlink.models.codecs import LearnedCodecConfig
    from semlink.models.weights import sha256_of

    recipe = recipe or LatentCodecRecipe()
    config = LearnedCodecConfig(
        architecture="taef2-latent-hyperprior",
        quality=1,
        N=recipe.n,
        M=recipe.m,
        file="latent_codec.safetensors",
        taef2_sha256=":".join(
            sha256_of(taef2_dir / f"taef2_{p}.pth") for p in ("encoder", "decoder")
        ),
    )
    model = latent_hyperprior(recipe.n, recipe.m)
    optimizer, _ = ref_codec.optimizers(model, recipe.lr)
    state = load_checkpoint(out, model, optimizer)
    return ref_codec.write_codec_dir(
        model,
        config,
        state,
        dest,
        {**asdict(recipe), "recipe": "latent-codec"},
        "TAEF2 latents of BSDS500 train+test (400 photos), 32x32 latent crops",
        bsds,
        taef2_dir,
    )
