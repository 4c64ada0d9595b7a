"""Recipe a: a slim compressai scale hyperprior (bmshj2018) for the reference layer at
extreme rates.

lite sends a downscaled picture (scale 0.16-0.5 of the original) and spends all of a
0.01-0.05 bpp budget on it, so the codec works at roughly 0.3-1.5 bits per *small*
pixel. The recipe trains on exactly such pictures: BSDS500 train+test (never Kodak)
downscaled by a random factor in that range with the same resampler the encoder uses,
random 64x64 crops. Loss: compressai's ``lambda * 255^2 * MSE + bpp`` (bpp of the small
picture); ``lambda`` 0.0067 is compressai's quality-3 point, which lands in that range.

Shipped as a learned-codec directory (``codecs.json`` + ``manifest.json``), the format
:func:`semlink.models.codecs.load_codecs` reads; rate control then lets it compete with
the classical codecs per image.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

from semlink.imaging import resize
from semlink.models.codecs import CODECS_FILE, LearnedCodecConfig, build
from semlink.models.weights import write_manifest
from semlink.train.common import (
    RunState,
    bsds_photos,
    hardware,
    load_checkpoint,
    run,
    save_fp16,
)

NAME = "ref_codec"


@dataclass
class RefCodecRecipe:
    n: int = 64
    m: int = 96
    lam: float = 0.0067
    """compressai's lambda: weight of MSE (on a 0..255 scale) against bits per pixel."""
    batch: int = 8
    crop: int = 64
    scales: tuple[float, float] = (0.2, 0.5)
    """Downscale factor range (lite's reference scales; BSDS's 321 px side stays >= 64)."""
    lr: float = 2e-4
    seed: int = 0

    @property
    def config(self) -> LearnedCodecConfig:
        return LearnedCodecConfig(
            architecture="bmshj2018-hyperprior",
            quality=1,
            N=self.n,
            M=self.m,
            file=f"{NAME}.safetensors",
        )


def load_photos(
    bsds: Path, splits: tuple[str, ...], limit: int | None = None
) -> list[NDArray[np.uint8]]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in bsds_photos(bsds, splits)[:limit]]


def random_batch(
    photos: list[NDArray[np.uint8]], recipe: RefCodecRecipe, rng: random.Random
) -> torch.Tensor:
    """``batch`` crops of photos downscaled by a random factor in ``recipe.scales``."""
    crops = []
    for _ in range(recipe.batch):
        image = photos[rng.randrange(len(photos))]
        height, width = image.shape[:2]
        s = max(rng.uniform(*recipe.scales), recipe.crop / min(height, width))
        small = resize(
            image, max(recipe.crop, round(width * s)), max(recipe.crop, round(height * s))
        )
        top = rng.randrange(small.shape[0] - recipe.crop + 1)
        left = rng.randrange(small.shape[1] - recipe.crop + 1)
        crop = small[top : top + recipe.crop, left : left + recipe.crop]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crops.append(torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 255.0)
    return torch.stack(crops)


def rd_loss(model: Any, x: torch.Tensor, lam: float) -> tuple[torch.Tensor, float, float]:
    """(loss, bits per pixel, PSNR in dB) for a batch of images in [0, 1]."""
    out = model(x)
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bits = torch.stack([-torch.log2(lik).sum() for lik in out["likelihoods"].values()]).sum()
    bpp = bits / pixels
    mse = F.mse_loss(out["x_hat"], x)
    psnr = float(10 * torch.log10(1 / mse.detach().clamp_min(1e-10)))
    return lam * 255**2 * mse + bpp, float(bpp.detach()), psnr


def optimizers(model: Any, lr: float) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """compressai's split: the entropy bottleneck's quantiles learn from the aux loss only."""
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return torch.optim.Adam(main, lr=lr), torch.optim.Adam(aux, lr=1e-3)


def training_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    aux_optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], tuple[torch.Tensor, float, float]],
) -> tuple[float, float, float]:
    """One rate-distortion step (``loss_fn`` runs the model) plus one aux step."""
    model.train()
    optimizer.zero_grad()
    aux_optimizer.zero_grad()
    loss, bpp, distortion = loss_fn()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    aux = model.aux_loss()
    aux.backward()
    aux_optimizer.step()
    return float(loss.detach()), bpp, distortion


def train_rate_distortion(
    model: Any,
    out: Path,
    *,
    lr: float,
    seed: int,
    batch: Callable[[random.Random], torch.Tensor],
    loss: Callable[[torch.Tensor], tuple[torch.Tensor, float, float]],
    describe: Callable[[float, float], str],
    title: str,
    steps: int,
    minutes: float | None,
    progress: Callable[[str, int, int], None] | None,
    report: Callable[[str], None] | None,
) -> RunState:
    """The loop both codec recipes share: resume, draw ``batch(rng)``, one RD step on
    ``loss(x)`` -> (loss, bpp, distortion), and every 200 steps ``report`` the line
    ``describe(mean bpp, mean distortion)``."""
    optimizer, aux_optimizer = optimizers(model, lr)
    state = load_checkpoint(out, model, optimizer)
    rng = random.Random(seed * 1_000_003 + state.step)
    window: list[tuple[float, float]] = []

    def step() -> float | None:
        x = batch(rng)
        value, bpp, distortion = training_step(model, optimizer, aux_optimizer, lambda: loss(x))
        window.append((bpp, distortion))
        if report and len(window) == 200:
            bpps, distortions = zip(*window, strict=True)
            report(f"step {state.step + 1}: {describe(np.mean(bpps), np.mean(distortions))}")
            window.clear()
        return value

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


def train(
    bsds: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: RefCodecRecipe | None = None,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> RunState:
    """Train on BSDS500 train+test (resuming from ``out``); ``report`` gets a line of bpp
    and PSNR every 200 steps."""
    recipe = recipe or RefCodecRecipe()
    torch.manual_seed(recipe.seed)
    photos = load_photos(bsds, ("train", "test"), limit)
    model = build(recipe.config)
    return train_rate_distortion(
        model,
        out,
        lr=recipe.lr,
        seed=recipe.seed,
        batch=lambda rng: random_batch(photos, recipe, rng),
        loss=lambda x: rd_loss(model, x, recipe.lam),
        describe=lambda bpp, psnr: f"{bpp:.3f} bpp (small picture), {psnr:.2f} dB",
        title=f"slim hyperprior, lambda {recipe.lam}: lambda*255^2*MSE + bpp",
        steps=steps,
        minutes=minutes,
        progress=progress,
        report=report,
    )


def evaluate(
    codec_dir: Path,
    bsds: Path,
    taef2_dir: Path | None = None,
    limit: int = 10,
    bpps: tuple[float, ...] = (0.02, 0.03, 0.05),
) -> dict[str, Any]:
    """On held-out BSDS500 val photos: the classical codecs' best reference vs the trained
    codec's at the same byte budgets (PSNR of the reference upsampled to full size)."""
    from semlink.models.codecs import load_codecs
    from semlink.streams.reference import search, search_learned

    codecs = load_codecs(codec_dir, taef2_dir)
    photos = load_photos(bsds, ("val",), limit)
    rows: dict[str, Any] = {}
    for bpp in bpps:
        classical, learned, wins = [], [], 0
        for image in photos:
            budget = int(bpp * image.shape[0] * image.shape[1] / 8) - 40
            c, ell = search(image, budget), search_learned(image, budget, codecs)
            if c is None or ell is None:
                continue
            classical.append(c.psnr)
            learned.append(ell.psnr)
            wins += ell.psnr > c.psnr
        rows[f"{bpp}"] = {
            "classical_psnr": round(float(np.mean(classical)), 3),
            "learned_psnr": round(float(np.mean(learned)), 3),
            "learned_wins": f"{wins}/{len(learned)}",
        }
    return rows


def write_codec_dir(
    model: Any,
    config: LearnedCodecConfig,
    state: RunState,
    dest: Path,
    recipe: dict[str, Any],
    data: str,
    bsds: Path,
    taef2_dir: Path | None = None,
) -> Path:
    """Write ``dest/`` as a learned-codec directory: fp16 weights (integer CDF buffers as
    they are), ``codecs.json``, ``training.json`` (recipe, data, steps, wall time, hardware,
    held-out results) and ``manifest.json`` (sha256 of each)."""
    model.update(force=True)
    dest.mkdir(parents=True, exist_ok=True)
    save_fp16(model, dest / config.file)
    (dest / CODECS_FILE).write_text(json.dumps([config.model_dump()], indent=2) + "\n")
    write_manifest(dest)  # evaluation loads through the manifest, like a deployment
    record = {
        "recipe": recipe,
        "data": data,
        "steps": state.step,
        "wall_seconds": round(state.seconds, 1),
        "hardware": hardware(),
        "results": {"bsds500_val_10": evaluate(dest, bsds, taef2_dir)},
    }
    (dest / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    write_manifest(dest)
    return dest / "training.json"


def ship_ref_codec(out: Path, dest: Path, bsds: Path, recipe: RefCodecRecipe | None = None) -> Path:
    recipe = recipe or RefCodecRecipe()
    model = build(recipe.config)
    optimizer, _ = optimizers(model, recipe.lr)
    state = load_checkpoint(out, model, optimizer)
    return write_codec_dir(
        model,
        recipe.config,
        state,
        dest,
        {**asdict(recipe), "recipe": "ref-codec"},
        "BSDS500 train+test (400 photos), downscaled 0.2-0.5, 64x64 crops",
        bsds,
    )
