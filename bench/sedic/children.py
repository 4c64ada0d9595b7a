"""The sedic bench's fresh processes: one component loaded (its parameters, load time and the
peak RSS of a process holding it), or the sedic encoder run as a service runs it.

``run_child`` starts ``python -m bench.sedic.children --root R [--sizes S] [--bpp B] component
NAME`` or ``... encode``; the child prints one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import REPO, count, peak_rss_mib, photo, touch


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
    from semlink.budget import Budget
    from semlink.codec import Codec
    from semlink.config import settings
    from semlink.resolver import Resolver

    models = Resolver(settings()).models("sedic")
    codec = Codec(models)
    start = time.perf_counter()
    _ = models.extractor, models.reference_codecs, models.fingerprint
    out: dict[str, Any] = {"load_s": time.perf_counter() - start, "sizes": {}}
    for size in sizes:
        start = time.perf_counter()
        result = codec.encode(photo(size), Budget(target_bpp=bpp))
        out["sizes"][str(size)] = {
            "total_s": time.perf_counter() - start,
            "stages": result.stage_seconds,
            "layers": result.layer_bytes(),
            "bytes": len(result.data),
        }
    out["rss"] = peak_rss_mib()
    return out


def run_child(root: Path, sizes: list[int], bpp: float, *job: str) -> dict[str, Any]:
    """Run ``job`` (``component NAME`` or ``encode``) in a fresh process; its result."""
    path = os.environ.get("PYTHONPATH", "")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.sedic.children", "--root", str(root.resolve())),
            *("--sizes", ",".join(map(str, sizes)), "--bpp", str(bpp), *job),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), path) if p)},
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"child {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="synthesized weights")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--bpp", type=float, default=0.03)
    parser.add_argument("job", nargs="+", help="component NAME, or encode")
    args = parser.parse_args()
    kind, *rest = args.job
    if kind == "component":
        result = child_component(rest[0], args.root)
    else:
        result = child_encode(args.root, [int(s) for s in args.sizes.split(",")], args.bpp)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
