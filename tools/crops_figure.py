"""A labelled figure of an evaluation's textured crops, for docs/.

`semlink eval` writes, per photo and rate, ``images/<photo>-<rate>-crops.png``: the photo's
most textured 96x96 area at 2x from the original, VVC, lite at realism 0 and lite at
realism 1, side by side. This stacks those rows for a few photos under column titles and
each method's LPIPS / DISTS / PSNR on that photo (from ``results.csv``):

    .venv/bin/python tools/crops_figure.py out/eval 0.03 kodim13 kodim15 kodim23 \\
        -o docs/kodak-0.03-textured-crops.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

COLUMNS = (("original", "original"), ("vvc", "VVC"), ("lite_r0", "lite realism 0"))
COLUMNS += (("lite_r1", "lite realism 1"),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("rate", type=float)
    parser.add_argument("photos", nargs="+")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    results = pd.read_csv(args.eval_dir / "results.csv")
    fig, axes = plt.subplots(len(args.photos), 1, figsize=(12, 3.3 * len(args.photos)))
    for ax, photo in zip(np.atleast_1d(axes), args.photos, strict=True):
        strip = np.asarray(Image.open(args.eval_dir / "images" / f"{photo}-{args.rate}-crops.png"))
        ax.imshow(strip)
        ax.set_xticks([])
        ax.set_yticks([])
        tile = (strip.shape[1] + 4) / len(COLUMNS)
        rows = results[(results.image == photo) & (results.target_bpp == args.rate)]
        for i, (method, title) in enumerate(COLUMNS):
            label = title
            row = rows[rows.method == method]
            if len(row):
                r = row.iloc[0]
                label += f"\nLPIPS {r.lpips:.3f}  DISTS {r.dists:.3f}  {r.psnr:.2f} dB"
            ax.text(i * tile + tile / 2 - 2, -6, label, ha="center", va="bottom", fontsize=9)
        ax.set_ylabel(photo)
    fig.suptitle(f"Most textured 96x96 area at 2x, {args.rate} bpp, equal real bytes")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()
