"""What texture in the wrong place would buy lite's realism end (issue 31), measured.

LPIPS and DISTS at realism 1 on held-out BSDS500 val photos at 0.03 bpp, against the same
picture whose high frequencies (the part a Gaussian blur of ``sigma`` pixels removes) are
replaced by the *original's*, in place (an oracle no decoder has) and moved by (7, 11)
pixels (texture of the right local statistics in the wrong place: what a decoder that
invents texture from noise could deliver at best), and by Gaussian noise with the
original's local amplitude (its standard deviation over 16-pixel windows, per channel):
whether amplitude alone is what counts. A ceiling for the texture a generator could add,
not a decoder: it reads the original. LPIPS-VGG, recipe p's training loss, is
printed beside the reported LPIPS-AlexNet: whether the loss rewards that texture too.

Run: ``.venv/bin/python bench/texture_oracle.py [--photos 12] [--bpp 0.03]`` (about 2
minutes on 2 cores; needs ``../shared/data/train/bsds500``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, uniform_filter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semlink.quality.metrics import all_metrics
from semlink.quality.perceptual import lpips
from semlink.restore.pixel import load_shipped, restore
from semlink.train.common import bsds_photos
from semlink.train.restorer_data import coded_reference

MOVE = (7, 11)


def _high(picture: np.ndarray, sigma: float) -> np.ndarray:
    return picture - gaussian_filter(picture, (sigma, sigma, 0))


def _local_std(picture: np.ndarray, window: int = 16) -> np.ndarray:
    mean = uniform_filter(picture, (window, window, 0))
    return np.sqrt(np.maximum(uniform_filter(picture**2, (window, window, 0)) - mean**2, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--bpp", type=float, default=0.03)
    parser.add_argument("--bsds", type=Path, default=Path("../shared/data/train/bsds500"))
    args = parser.parse_args()
    shipped = load_shipped()
    if shipped is None:
        raise SystemExit("no packaged realism network: nothing to measure")
    rows: dict[str, list[dict[str, float]]] = {}
    rng = np.random.default_rng(0)
    for photo in bsds_photos(args.bsds, ("val",))[: args.photos]:
        original = np.asarray(Image.open(photo).convert("RGB"))
        h, w = original.shape[:2]
        small = coded_reference(original, args.bpp)
        r1 = restore(small, w, h, shipped.network, 1.0, None, shipped.fidelity).astype(np.float32)
        image = original.astype(np.float32)
        variants = {"realism 1": r1}
        for sigma in (1.0, 2.0):
            own = r1 - _high(r1, sigma)
            truth = _high(image, sigma)
            variants[f"sigma {sigma:g}: original's, moved"] = own + np.roll(truth, MOVE, (0, 1))
            variants[f"sigma {sigma:g}: original's, in place"] = own + truth
            noise = _high(rng.standard_normal(image.shape).astype(np.float32), sigma)
            noise *= _local_std(truth) / noise.std()
            variants[f"sigma {sigma:g}: noise, its amplitude"] = own + noise
        for name, picture in variants.items():
            out = np.clip(picture, 0, 255).round().astype(np.uint8)
            metrics = all_metrics(original, out, with_niqe=False)
            metrics["lpips_vgg"] = lpips(original, out, "vgg")
            rows.setdefault(name, []).append(metrics)
    print(f"BSDS500 val photos 0-{args.photos - 1} at {args.bpp} bpp, high frequencies replaced:")
    print(f"{'':36s} {'PSNR':>7s} {'LPIPS':>7s} {'DISTS':>7s} {'LPIPS-VGG':>10s}")
    for name, metrics in rows.items():
        keys = ("psnr", "lpips", "dists", "lpips_vgg")
        psnr, alex, dists, vgg = (float(np.mean([m[k] for m in metrics])) for k in keys)
        print(f"{name:36s} {psnr:7.2f} {alex:7.3f} {dists:7.3f} {vgg:10.3f}")


if __name__ == "__main__":
    main()
