"""The lite demo: scikit-image's sample photos through encode and decode at 0.03 bpp."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
from numpy.typing import NDArray
from PIL import Image

from semlink.codec import decode, encode
from semlink.quality import all_metrics

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


@dataclass
class DemoRow:
    name: str
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float
    layers: str


def sample_images() -> dict[str, NDArray[np.uint8]]:
    """The photos that ship inside scikit-image (no download)."""
    return {name: getattr(skimage.data, name)() for name in SAMPLES}


def run_demo(out: Path, bpp: float = 0.03) -> list[DemoRow]:
    """Encode and decode each sample; write reconstructions and side-by-side PNGs to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, image in sample_images().items():
        start = time.perf_counter()
        encoded = encode(image, "lite", target_bpp=bpp)
        encode_ms = 1000 * (time.perf_counter() - start)
        (out / f"{name}.slk").write_bytes(encoded.data)
        start = time.perf_counter()
        decoded = decode(encoded.data)
        decode_ms = 1000 * (time.perf_counter() - start)
        metrics = all_metrics(image, decoded.image, with_niqe=False)
        Image.fromarray(decoded.image).save(out / f"{name}-decoded.png")
        Image.fromarray(np.concatenate([image, decoded.image], axis=1)).save(
            out / f"{name}-side-by-side.png"
        )
        rows.append(
            DemoRow(
                name,
                len(encoded.data),
                encoded.bits_per_pixel,
                metrics["psnr"],
                metrics["ms_ssim"],
                encode_ms,
                decode_ms,
                "+".join(decoded.layers_used) or "none",
            )
        )
    return rows
