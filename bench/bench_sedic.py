"""The sedic profile at its real size: components, decode steps, whole decode, encode.

Runs on the real-size weights with random values that ``semlink weights synth`` writes in
the publishers' layouts (written first into ``--root`` when missing), through semlink's own
loaders, and prints one table:

* per component: parameters, load time (semlink's loader, manifest check included) and the
  peak RSS of a fresh process that loaded it and read every weight once;
* per decode step at each size: a plain step (ControlNet + UNet) vs an ORAG-guided one
  (energy pass over the hooked cross-attention layers, gradient to the latent, then the
  plain step), their ratio (SEDIC's goal: guided <= 1.25x plain), and what the guidance
  costs part by part (ControlNet, UNet, energy forward, energy forward + backward);
* whole decode at each size (GenerativeDecoder: DynDiff's steps capped by ``--max-steps``,
  global pass + one object pass, guidance on the first half of the object's steps) and the
  decoder process's peak RSS (CUDA: peak allocated GPU memory too);
* the sedic encode at each size in a fresh process (captioner -> Grounding DINO -> SAM,
  then the reference's rate control), by stage, and that process's peak RSS.

Run: ``nice -n 10 .venv/bin/python bench/bench_sedic.py`` (CPU, fp32; ~25 min on 2 busy
cores). ``bench/gpu_check.sh`` runs it on a CUDA device in fp16. The pictures of random
weights mean nothing; parameters, memory and time are the real ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BSDS = REPO.parent / "shared" / "data" / "train" / "bsds500" / "images" / "test" / "100007.jpg"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def photo(size: int) -> np.ndarray:
    """A BSDS500 photo (test split), centre-cropped square and resized to ``size``; without
    BSDS500, scikit-image's astronaut."""
    from PIL import Image

    if BSDS.exists():
        image = Image.open(BSDS).convert("RGB")
    else:
        import skimage.data

        image = Image.fromarray(skimage.data.astronaut())
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))


def count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def touch(*modules: Any) -> None:
    """Read every weight once (loaders may map files lazily)."""
    import torch

    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                float(p.float().sum())


# -- child processes: one component, or the encoder ----------------------------------------
def child_component(name: str, root: Path) -> dict[str, Any]:
    from semlink.models.synth import SynthPaths

    paths = SynthPaths(root)
    start = time.perf_counter()
    modules: list[Any]
    if name == BASELINE:
        import diffusers  # noqa: F401
        import segment_anything  # noqa: F401
        import transformers  # noqa: F401

        modules = []
    elif name == "sd15+controlnet (decoder)":
        from semlink.models.diffusion import DiffusionComponents

        c = DiffusionComponents.from_pretrained(paths.sedic)
        modules = [c.unet, c.controlnet, c.vae, c.text_encoder]
    elif name in SD_PARTS:
        cls, sub = SD_PARTS[name]()
        kwargs = {"local_files_only": True, "use_safetensors": True}
        modules = [cls.from_pretrained(paths.sedic / sub, **kwargs)]
    elif name == "SAM ViT-B":
        from semlink.extract.segmenter import SamSegmenter

        modules = [SamSegmenter.from_checkpoint(paths.sam_checkpoint).predictor.model]
    elif name == "Grounding DINO tiny":
        from semlink.extract.grounding import GroundingDinoGrounder

        modules = [GroundingDinoGrounder.from_pretrained(paths.grounding).model]
    elif name == "BLIP captioning base":
        from semlink.extract.captioner import TransformersCaptioner

        modules = [TransformersCaptioner.from_pretrained(str(paths.blip)).model]
    elif name == "compressai codecs":
        from semlink.models.codecs import load_codecs

        modules = [c.model for c in load_codecs(paths.codecs)]
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - start
    touch(*modules)
    return {"params": sum(count(m) for m in modules), "load_s": seconds, "rss": peak_rss_mib()}


def _sd_part(cls_name: str, sub: str) -> Callable[[], tuple[Any, str]]:
    def get() -> tuple[Any, str]:
        import diffusers
        import transformers

        module = diffusers if hasattr(diffusers, cls_name) else transformers
        return getattr(module, cls_name), sub

    return get


SD_PARTS = {
    "SD1.5 UNet": _sd_part("UNet2DConditionModel", "unet"),
    "tile ControlNet": _sd_part("ControlNetModel", "controlnet"),
    "SD1.5 VAE": _sd_part("AutoencoderKL", "vae"),
    "CLIP text encoder": _sd_part("CLIPTextModel", "text_encoder"),
}
BASELINE = "(libraries imported, no model)"
COMPONENTS = [
    BASELINE,
    *SD_PARTS,
    "sd15+controlnet (decoder)",
    "SAM ViT-B",
    "Grounding DINO tiny",
    "BLIP captioning base",
    "compressai codecs",
]


def child_encode(root: Path, sizes: list[int], bpp: float) -> dict[str, Any]:
    """The sedic encoder as a service runs it: models from settings, extraction included."""
    from semlink.models.synth import SynthPaths

    os.environ.update(SynthPaths(root).environment())
    from semlink.codec import encode
    from semlink.config import settings
    from semlink.resolver import Resolver

    models = Resolver(settings()).models("sedic")
    start = time.perf_counter()
    _ = models.extractor, models.reference_codecs, models.fingerprint
    out: dict[str, Any] = {"load_s": time.perf_counter() - start, "sizes": {}}
    for size in sizes:
        start = time.perf_counter()
        result = encode(photo(size), "sedic", target_bpp=bpp, models=models)
        out["sizes"][str(size)] = {
            "total_s": time.perf_counter() - start,
            "stages": result.stage_seconds,
            "layers": result.layer_bytes(),
            "bytes": len(result.data),
        }
    out["rss"] = peak_rss_mib()
    return out


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# -- the decoder in this process -------------------------------------------------------------
def timed(fn: Callable[[], object], reps: int, sync: Callable[[], None]) -> float:
    times = []
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        row[name] = timed(fn, reps, sync)
    # What-if, not what the decoder does: the energy from the first (highest-resolution)
    # level's maps only, so the energy pass stops after down_blocks.0.
    with first_level_only(pipe):
        row["energy_first_level"] = timed(energy_backward, reps, sync)
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


# -- the table --------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="synthesized weights")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=4, help="DynDiff's cap (whole decode)")
    parser.add_argument("--bpp", type=float, default=0.03)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--fp16", action="store_true", help="half precision (CUDA)")
    parser.add_argument("--skip-components", action="store_true")
    parser.add_argument("--skip-encode", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from semlink.models.synth import cached, default_cache

    root = args.root or default_cache()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        kind, *rest = args.child
        result = (
            child_component(rest[0], root)
            if kind == "component"
            else child_encode(root, sizes, args.bpp)
        )
        print("RESULT " + json.dumps(result), flush=True)
        return

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"weights: {cached(root, log=lambda m: print('  synth ' + m, flush=True)).root}")
    print(
        f"device {device}, {'fp16' if args.fp16 else 'fp32'}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, sizes {sizes}, reps {args.reps}",
        flush=True,
    )
    components = []
    if not args.skip_components:
        for name in COMPONENTS:
            result = run_child("component", name)
            components.append((name, result))
            print(f"  component {name}: {json.dumps(result)}", flush=True)
    rows, info = decoder_rows(root, sizes, args.reps, args.max_steps, device, args.fp16)
    encoded = None if args.skip_encode else run_child("encode")

    print()
    if components:
        print("| component | parameters | load (s) | peak RSS of a process holding it (MiB) |")
        print("|---|---:|---:|---:|")
        for name, r in components:
            print(f"| {name} | {r['params'] / 1e6:.1f} M | {r['load_s']:.1f} | {r['rss']:.0f} |")
        print()
    print(
        "| size | plain step (s) | guided step (s) | guided / plain | ControlNet (s) | UNet (s) "
        "| energy fwd (s) | energy fwd+bwd (s) | same, first level only (s) "
        "| whole decode (s, steps) | whole decode / unguided (est.) | decoder peak RSS (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        gpu = f" (GPU {r['gpu_peak_mib']:.0f})" if "gpu_peak_mib" in r else ""
        # One object: guidance runs on round(steps / 2) of its steps; the rest is unguided.
        extra = round(r["decode_steps"] / 2) * (r["guided"] - r["plain"])
        whole_ratio = r["decode_s"] / max(r["decode_s"] - extra, 1e-9)
        print(
            f"| {r['size']}x{r['size']} | {r['plain']:.2f} | {r['guided']:.2f} | "
            f"{r['guided'] / r['plain']:.2f} | {r['controlnet']:.2f} | {r['unet']:.2f} | "
            f"{r['energy_fwd']:.2f} | {r['energy_fwd_bwd']:.2f} | {r['energy_first_level']:.2f} | "
            f"{r['decode_s']:.1f} ({r['decode_steps']}) | {whole_ratio:.2f} | {r['rss']:.0f}{gpu} |"
        )
    print(
        f"\nORAG hooks {len(info['hooked'])} of the UNet's {len(info['cross'])} cross-attention "
        f"layers (contracting path + middle block): {', '.join(info['hooked'])}"
    )
    if encoded:
        print(
            "\n| size | sedic encode (s) | caption | grounding | segmentation | reference "
            "| packet bytes (layers) |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for size, e in encoded["sizes"].items():
            s = e["stages"]
            layers = ", ".join(f"{k} {n}" for k, n in e["layers"])
            print(
                f"| {size}x{size} | {e['total_s']:.1f} | {s.get('extract_caption', 0):.1f} | "
                f"{s.get('extract_grounding', 0):.1f} | {s.get('extract_segmentation', 0):.1f} "
                f"| {s.get('reference', 0):.1f} | {e['bytes']} ({layers}) |"
            )
        print(
            f"encoder process: models loaded in {encoded['load_s']:.1f} s, "
            f"peak RSS {encoded['rss']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
