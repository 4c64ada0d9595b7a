"""The README's rate-distortion figure: lite (its default realism and realism 0) against VVC
on Kodak, four panels (PSNR, MS-SSIM, LPIPS, DISTS), read from a `semlink eval` summary.

    .venv/bin/python tools/rd_figure.py out/eval-kodak/summary.csv docs/kodak-rd-readme.png

Only the three named lines, each labelled, Kodak and the rates in the title; lower-is-better
panels say so. (`semlink eval`'s own rd.png plots every method it ran.)
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LINES = {
    "vvc": ("VVC intra (vvenc medium, best downscale)", "tab:blue", "s", "-"),
    "lite_r0": ("lite, realism 0 (fidelity)", "tab:purple", "o", "--"),
    "lite": ("lite, default (realism 1)", "tab:red", "o", "-"),
}
PANELS = (
    ("psnr", "PSNR (dB), higher is better"),
    ("ms_ssim", "MS-SSIM, higher is better"),
    ("lpips", "LPIPS (AlexNet), lower is better"),
    ("dists", "DISTS, lower is better"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dataset", default="Kodak (24 photos)")
    args = parser.parse_args()
    points: dict[str, list[dict[str, float]]] = defaultdict(list)
    with args.summary.open() as handle:
        for row in csv.DictReader(handle):
            if row["method"] in LINES:
                points[row["method"]].append({k: float(v) for k, v in row.items() if k != "method"})
    figure, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for axis, (metric, label) in zip(axes, PANELS, strict=True):
        for method, (name, colour, marker, style) in LINES.items():
            rows = sorted(points[method], key=lambda r: r["bpp"])
            axis.plot(
                [r["bpp"] for r in rows],
                [r[metric] for r in rows],
                color=colour,
                marker=marker,
                linestyle=style,
                linewidth=2,
                label=name,
            )
        axis.set_ylabel(label)
        axis.set_xlabel("bits per pixel (real bytes)")
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    figure.suptitle(f"{args.dataset}: semlink lite against VVC at equal real bytes")
    figure.tight_layout(rect=(0, 0.08, 1, 0.95))
    figure.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
