"""Per-step cost of an ORAG-guided denoising step vs a plain one, on the tiny model.

A guided step adds one UNet+ControlNet forward with the attention maps kept and a
backward pass to the latent. Prints per-step times and their ratio (SEDIC's goal for a
whole decode: <= 1.25x a plain decoder), plus the whole-decode ratio with guidance on
the first half of the steps, all measured in this run.

Run: ``.venv/bin/python bench/bench_orag.py [--size 256] [--reps 5] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from semlink.models.diffusion import DiffusionComponents
from semlink.restore.orag import ObjectPrompt, ORAGPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    pipe = ORAGPipeline(DiffusionComponents.tiny().to(args.device))
    size = args.size
    reference = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    text, tokens = pipe.encode_prompt("a green parrot")
    control = torch.from_numpy(reference).permute(2, 0, 1)[None].float().to(args.device) / 255
    latent = torch.randn(1, 4, size // 8, size // 8, device=args.device)
    latent_mask = pipe._latent_mask(mask, (size // 8, size // 8))
    t = torch.tensor(500, device=args.device)

    def plain() -> None:
        with torch.no_grad():
            pipe.predict_noise(latent, t, text, control)

    def guided() -> None:
        z, _ = pipe.guide(latent, t, text, latent_mask, tokens, eta=1.0)
        with torch.no_grad():
            pipe.predict_noise(z, t, text, control)

    plain(), guided()  # warm up
    sync = torch.cuda.synchronize if torch.cuda.is_available() else None
    p, g = median_seconds(plain, args.reps, sync), median_seconds(guided, args.reps, sync)
    print(
        f"{args.device}, {size}x{size}: plain step {p * 1000:.1f} ms, "
        f"guided step {g * 1000:.1f} ms, ratio {g / p:.2f}"
    )
    objects = [ObjectPrompt("a green parrot", mask)]
    steps = 10
    whole_plain = median_seconds(
        lambda: pipe(reference, "a bird", objects, steps=steps, guided_fraction=0.0), 2, sync
    )
    whole_guided = median_seconds(
        lambda: pipe(reference, "a bird", objects, steps=steps, guided_fraction=0.5), 2, sync
    )
    print(
        f"whole decode, 1 object, {steps} steps: unguided {whole_plain:.2f} s, "
        f"guided on half the steps {whole_guided:.2f} s, "
        f"ratio {whole_guided / whole_plain:.2f} (goal <= 1.25)"
    )


if __name__ == "__main__":
    main()
