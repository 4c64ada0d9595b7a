"""The sedic decoder in the bench's process: a denoising step's cost part by part (plain vs
ORAG-guided, ControlNet, UNet, the energy pass) and one whole decode, at each size."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.timing import median_seconds

from .common import peak_rss_mib, photo


@contextlib.contextmanager
def first_level_only(pipe: Any) -> Iterator[None]:
    """Hook only down_blocks.0's cross-attention for the energy (restored on exit)."""
    processors = pipe.c.unet.attn_processors
    saved = {name: p.capture for name, p in processors.items()}
    needed = pipe.store.needed
    try:
        for name, p in processors.items():
            p.capture = saved[name] and name.startswith("down_blocks.0.")
        pipe.store.needed = sum(p.capture for p in processors.values())
        yield
    finally:
        for name, p in processors.items():
            p.capture = saved[name]
        pipe.store.needed = needed


def measure_size(
    decoder: Any, size: int, reps: int, device: str, dtype: Any, sync: Callable[[], None]
) -> dict[str, Any]:
    """Step costs part by part, then one whole decode, at ``size`` x ``size``."""
    import torch

    pipe = decoder.pipeline
    components = pipe.c
    reference = photo(size)
    mask = np.zeros((size, size), bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    text, tokens = pipe.encode_prompt("a green parrot on a branch")
    control = torch.from_numpy(reference.copy()).permute(2, 0, 1)[None].to(device, dtype) / 255
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(1, 4, size // 8, size // 8, generator=generator).to(device, dtype)
    latent_mask = pipe._latent_mask(mask, (size // 8, size // 8))
    t = torch.tensor(500, device=device)

    def plain(z: torch.Tensor = latent) -> None:
        with torch.no_grad():
            pipe.predict_noise(z, t, text, control)

    def guided() -> None:
        z, _ = pipe.guide(latent, t, text, latent_mask, tokens, eta=1.0)
        plain(z)

    def controlnet() -> None:
        with torch.no_grad():
            components.controlnet(
                latent,
                t,
                encoder_hidden_states=text,
                controlnet_cond=control,
                return_dict=False,
            )

    def unet() -> None:
        with torch.no_grad():
            components.unet(latent, t, encoder_hidden_states=text)

    def energy_forward() -> None:
        with torch.no_grad():
            pipe.energy(latent, t, text, latent_mask, tokens)

    def energy_backward() -> None:
        with torch.enable_grad():
            z = latent.detach().requires_grad_(True)
            torch.autograd.grad(pipe.energy(z, t, text, latent_mask, tokens), z)

    plain(), guided()  # warm up
    row: dict[str, Any] = {"size": size}
    for name, fn in (
        ("plain", plain),
        ("guided", guided),
        ("controlnet", controlnet),
        ("unet", unet),
        ("energy_fwd", energy_forward),
        ("energy_fwd_bwd", energy_backward),
    ):
        row[name] = median_seconds(fn, reps, sync)
    # What-if, not what the decoder does: the energy from the first (highest-resolution)
    # level's maps only, so the energy pass stops after down_blocks.0.
    with first_level_only(pipe):
        row["energy_first_level"] = median_seconds(energy_backward, reps, sync)
    start = time.perf_counter()
    objects = [("a green parrot on a branch", mask)]
    _, steps = decoder(reference, "a bird in a tree", objects, bpp=0.03, seed=1)
    sync()
    row["decode_s"] = time.perf_counter() - start
    row["decode_steps"] = steps
    row["rss"] = peak_rss_mib()
    if device == "cuda":
        row["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def decoder_rows(
    root: Path, sizes: list[int], reps: int, max_steps: int, device: str, fp16: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import torch

    from semlink.models.diffusion import DiffusionComponents
    from semlink.models.registry import DecoderModels
    from semlink.models.synth import SynthPaths
    from semlink.models.weights import MANIFEST
    from semlink.restore.generative import GenerativeDecoder

    dtype = torch.float16 if fp16 else torch.float32
    sedic = SynthPaths(root).sedic
    start = time.perf_counter()
    components = DiffusionComponents.from_pretrained(sedic, dtype).to(device, dtype)
    load_s = time.perf_counter() - start
    models = DecoderModels(str(sedic), components, (sedic / MANIFEST).read_text(), max_steps)
    decoder = GenerativeDecoder(models)
    hooked = [
        name
        for name, proc in components.unet.attn_processors.items()
        if getattr(proc, "capture", False)
    ]
    cross = [n for n in components.unet.attn_processors if ".attn2." in n]

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    rows = []
    for size in sizes:
        row = measure_size(decoder, size, reps, device, dtype, sync)
        rows.append(row)
        print(f"  decoder {size}: {json.dumps(row)}", flush=True)
    info = {"load_s": load_s, "hooked": hooked, "cross": cross}
    return rows, info
