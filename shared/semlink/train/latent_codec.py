"""Recipe b: a compressai-style scale hyperprior over TAEF2 latents (the HSC / generative
latent coding idea), decoded by the TAEF2 decoder.

TAEF2 turns an image into 32 channels at H/8 x W/8 and back with sharp texture. Coding
those latents instead of pixels spends the bits where the pretrained decoder needs them.
At 0.03 bpp there are about 2 bits per latent position (all 32 channels together), so the
analysis transform halves the resolution again and the hyperprior decides what survives.

Loss: lambda * MSE(latent, decoded latent) + bits per image pixel (from the likelihoods),
plus compressai's auxiliary loss for the entropy bottleneck's quantiles. Data: the TAEF2
latents of BSDS500 train+test cached by the restorer recipe (``cache.pt``); never Kodak.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semlink.models.taef2 import LATENT_CHANNELS
from semlink.train.common import RunState, load_checkpoint, run


def latent_hyperprior(n: int = 96, m: int = 64) -> Any:
    """A scale hyperprior whose input is a TAEF2 latent (32 channels) instead of RGB."""
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN
    from compressai.models import CompressionModel
    from compressai.models.utils import conv, deconv

    class LatentHyperprior(CompressionModel):
        def __init__(self) -> None:
            super().__init__()
            self.entropy_bottleneck = EntropyBottleneck(n)
            self.gaussian_conditional = GaussianConditional(None)
            self.g_a = nn.Sequential(conv(LATENT_CHANNELS, n, 3, 1), GDN(n), conv(n, m, 5, 2))
            self.g_s = nn.Sequential(
                deconv(m, n, 5, 2), GDN(n, inverse=True), conv(n, LATENT_CHANNELS, 3, 1)
            )
            self.h_a = nn.Sequential(
                conv(m, n, 3, 1), nn.ReLU(), conv(n, n, 5, 2), nn.ReLU(), conv(n, n, 5, 2)
            )
            self.h_s = nn.Sequential(
                deconv(n, n, 5, 2),
                nn.ReLU(),
                deconv(n, n, 5, 2),
                nn.ReLU(),
                conv(n, m, 3, 1),
                nn.ReLU(),
            )

        def forward(self, z: torch.Tensor) -> dict[str, Any]:
            y = self.g_a(z)
            h = self.h_a(torch.abs(y))
            h_hat, h_likelihoods = self.entropy_bottleneck(h)
            y_hat, y_likelihoods = self.gaussian_conditional(y, self.h_s(h_hat))
            return {
                "z_hat": self.g_s(y_hat),
                "likelihoods": {"y": y_likelihoods, "h": h_likelihoods},
            }

    return LatentHyperprior()


@dataclass
class LatentCodecRecipe:
    n: int = 96
    m: int = 64
    lam: float = 4.0
    """Weight of the latent MSE against bits per pixel (larger: more bits)."""
    batch: int = 8
    crop: int = 32
    """Latent crop side (x 8 pixels); a multiple of 8."""
    lr: float = 1e-4
    seed: int = 0


def rd_loss(model: Any, latent: torch.Tensor, lam: float) -> tuple[torch.Tensor, float, float]:
    """(loss, bits per image pixel, latent MSE) for a batch of latents."""
    out = model(latent)
    pixels = latent.shape[0] * latent.shape[2] * latent.shape[3] * 64
    bits = torch.stack([-torch.log2(lik).sum() for lik in out["likelihoods"].values()]).sum()
    bpp = bits / pixels
    mse = F.mse_loss(out["z_hat"], latent)
    return lam * mse + bpp, float(bpp.detach()), float(mse.detach())


def training_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    aux_optimizer: torch.optim.Optimizer,
    latent: torch.Tensor,
    lam: float,
) -> tuple[float, float, float]:
    model.train()
    optimizer.zero_grad()
    aux_optimizer.zero_grad()
    loss, bpp, mse = rd_loss(model, latent, lam)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    aux = model.aux_loss()
    aux.backward()
    aux_optimizer.step()
    return float(loss.detach()), bpp, mse


def _optimizers(model: Any, lr: float) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return torch.optim.Adam(main, lr=lr), torch.optim.Adam(aux, lr=1e-3)


def train(
    cache_path: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: LatentCodecRecipe | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunState:
    """Train on cached TAEF2 latents (the restorer recipe's ``cache.pt``); resumable."""
    recipe = recipe or LatentCodecRecipe()
    torch.manual_seed(recipe.seed)
    latents = torch.load(cache_path, weights_only=True)["latents"]
    model = latent_hyperprior(recipe.n, recipe.m)
    optimizer, aux_optimizer = _optimizers(model, recipe.lr)
    state = load_checkpoint(out, model, optimizer)
    rng = random.Random(recipe.seed * 1_000_003 + state.step)
    title = f"TAEF2 latent hyperprior, lambda {recipe.lam}: lambda*MSE + bpp"

    def step() -> float | None:
        crops = []
        for _ in range(recipe.batch):
            z = latents[rng.randrange(len(latents))]
            top = rng.randrange(z.shape[1] - recipe.crop + 1)
            left = rng.randrange(z.shape[2] - recipe.crop + 1)
            crops.append(z[:, top : top + recipe.crop, left : left + recipe.crop].float())
        loss, _, _ = training_step(model, optimizer, aux_optimizer, torch.stack(crops), recipe.lam)
        return loss

    return run(
        step,
        state,
        steps=steps,
        minutes=minutes,
        out=out,
        model=model,
        optimizer=optimizer,
        title=title,
        progress=progress,
    )
