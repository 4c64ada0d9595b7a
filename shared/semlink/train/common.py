"""What every recipe shares: BSDS500 photos and segmentations, checkpoints, loss curves, the
weights manifest."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from semlink.models.weights import sha256_of
from semlink.restore.network import segment_edges
from semlink.train.growth import listen

CHECKPOINT = "checkpoint.pt"


def discriminator(width: int = 32, channels: int = 3, extra: int = 0) -> nn.Module:
    """PatchGAN with spectral norm: one real/fake score per ~22-pixel patch; ``channels``
    input channels (6: a picture and its reference), ``extra`` more 3x3 layers before the
    score."""
    sn = nn.utils.spectral_norm
    layers: list[nn.Module] = [
        sn(nn.Conv2d(channels, width, 4, 2, 1)),
        nn.LeakyReLU(0.2),
        sn(nn.Conv2d(width, 2 * width, 4, 2, 1)),
        nn.LeakyReLU(0.2),
        sn(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)),
        nn.LeakyReLU(0.2),
    ]
    for _ in range(extra):
        layers += [sn(nn.Conv2d(4 * width, 4 * width, 3, 1, 1)), nn.LeakyReLU(0.2)]
    layers.append(sn(nn.Conv2d(4 * width, 1, 3, 1, 1)))
    return nn.Sequential(*layers)


def cosine_lr(optimizer: torch.optim.Optimizer, base: float, step: int, decay_steps: int) -> None:
    """Set ``optimizer``'s learning rate on a cosine from ``base`` at step 0 to 0 at
    ``decay_steps`` (and after)."""
    fraction = min(1.0, step / decay_steps)
    for group in optimizer.param_groups:
        group["lr"] = base * 0.5 * (1 + math.cos(math.pi * fraction))


@dataclass
class Adversary:
    """A discriminator, its optimizer and the generator's adversarial loss weight."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    weight: float


DISCRIMINATOR = "discriminator"
"""Sub-directory of a run that holds its discriminator's checkpoint."""


def load_adversary(out: Path, weight: float, lr: float) -> Adversary:
    """A PatchGAN discriminator with its Adam optimizer, resumed from ``out``'s
    discriminator checkpoint when there is one."""
    net = discriminator()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    load_checkpoint(out / DISCRIMINATOR, net, optimizer)
    return Adversary(net, optimizer, weight)


def save_adversary(out: Path, adversary: Adversary, state: RunState) -> None:
    save_checkpoint(out / DISCRIMINATOR, adversary.net, adversary.optimizer, state)


@dataclass
class RunState:
    step: int = 0
    seconds: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)
    """(step, mean training loss over the last logging interval)."""


def bsds_photos(bsds: Path, splits: tuple[str, ...]) -> list[Path]:
    """BSDS500 photos of the given splits (train, test, val), in a fixed order."""
    return sorted(p for s in splits for p in (bsds / "images" / s).glob("*.jpg"))


def segment_edge_maps(
    bsds: Path, photos: list[Path], shapes: list[tuple[int, int]]
) -> list[torch.Tensor]:
    """Boundaries of each photo's first human segmentation on its latent grid (uint8)."""
    from scipy.io import loadmat

    maps = []
    for photo, (h, w) in zip(photos, shapes, strict=True):
        mat = bsds / "groundTruth" / photo.parent.name / f"{photo.stem}.mat"
        labels = loadmat(mat)["groundTruth"][0, 0]["Segmentation"][0, 0]
        labels = labels[: (labels.shape[0] // 8) * 8, : (labels.shape[1] // 8) * 8]
        maps.append(torch.from_numpy(segment_edges(labels, w, h).astype(np.uint8)))
    return maps


def hardware() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def save_checkpoint(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: RunState
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (CHECKPOINT + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": state.step,
            "seconds": state.seconds,
            "losses": state.losses,
            "rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(directory / CHECKPOINT)  # atomic: a killed run never leaves half a file


def init_from(
    model: nn.Module,
    checkpoint: Path,
    adapt: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]] | None = None,
) -> int:
    """Start from another run's weights (e.g. one trained before the edge input existed:
    its missing input channels start at zero, so the output is unchanged:
    :func:`~semlink.train.growth.listen`);
    ``adapt`` maps them to ``model``'s shapes first (e.g.
    :func:`~semlink.train.growth.deepen`). ``checkpoint`` may also be shipped
    ``.safetensors`` weights (step 0). Returns its step."""
    step = 0
    if checkpoint.suffix == ".safetensors":
        from safetensors.torch import load_file

        weights = {k: v.float() for k, v in load_file(checkpoint).items()}
    else:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        weights, step = saved["model"], int(saved["step"])
    if adapt is not None:
        weights = adapt(weights, model)
    model.load_state_dict(listen(weights, model), strict=True)
    return step


def load_checkpoint(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> RunState:
    path = directory / CHECKPOINT
    if not path.exists():
        return RunState()
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(saved["model"], strict=True)
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng"])
    return RunState(saved["step"], saved["seconds"], [tuple(x) for x in saved["losses"]])


def plot_losses(state: RunState, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if state.losses:
        steps, values = zip(*state.losses, strict=True)
        ax.plot(steps, values)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_fp16(model: nn.Module, path: Path) -> None:
    """Weights as safetensors, floating tensors in fp16 (integer buffers, e.g. entropy
    coders' CDF tables, as they are)."""
    save_file(
        {
            k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
            for k, v in model.state_dict().items()
        },
        path,
    )


def ship(
    directory: Path,
    name: str,
    model: nn.Module,
    state: RunState,
    recipe: dict[str, Any],
    results: dict[str, Any],
) -> Path:
    """Write fp16 safetensors weights and a manifest (sha256, recipe, data, steps, hardware)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.safetensors"
    save_fp16(model, weights)
    manifest = {
        "name": name,
        "files": {weights.name: sha256_of(weights)},
        "recipe": recipe,
        "steps": state.step,
        "wall_seconds": round(state.seconds, 1),
        "hardware": hardware(),
        "results": results,
        "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def run(
    step: Callable[[], float | None],
    state: RunState,
    *,
    steps: int,
    minutes: float | None,
    out: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    title: str,
    progress: Callable[[str, int, int], None] | None = None,
    every: int = 50,
) -> RunState:
    """The loop every recipe shares: ``step()`` trains once and returns the loss to log (or
    None); every ``every`` steps the mean loss is logged, the checkpoint and loss curve written.
    Stops at ``steps`` or after ``minutes`` of wall time (a resumed run counts on)."""
    started, window = time.perf_counter() - state.seconds, []
    while state.step < steps:
        if minutes is not None and time.perf_counter() - started > 60 * minutes:
            break
        loss = step()
        if loss is not None and np.isfinite(loss):
            window.append(loss)
        state.step += 1
        state.seconds = time.perf_counter() - started
        if state.step % every == 0 or state.step == steps:
            if window:
                state.losses.append((state.step, float(np.mean(window))))
                window = []
            save_checkpoint(out, model, optimizer, state)
            plot_losses(state, out / "loss.png", title)
        if progress:
            progress("training", state.step, steps)
    save_checkpoint(out, model, optimizer, state)
    plot_losses(state, out / "loss.png", title)
    return state
