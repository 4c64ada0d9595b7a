"""Reports of an evaluation: CSV tables, an RD plot and an HTML gallery."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from semlink.eval.harness import Row, rows_as_dicts

METRICS = ("bpp", "psnr", "ms_ssim", "haarpsi", "gmsd", "niqe")


def write_reports(rows: Sequence[Row], out: Path) -> pd.DataFrame:
    """Write results.csv, summary.csv, rd.png and index.html into ``out``; return the summary."""
    frame = pd.DataFrame(rows_as_dicts(rows))
    frame.to_csv(out / "results.csv", index=False)
    summary = (
        frame.groupby(["target_bpp", "method"])[list(METRICS)]
        .mean()
        .reset_index()
        .sort_values(["target_bpp", "method"])
    )
    summary.to_csv(out / "summary.csv", index=False)
    _plot(summary, out / "rd.png")
    _gallery(frame, out)
    return summary


LITE_METHODS = ("lite", "lite_r0", "lite_r1", "lite_lanczos")


def comparison_lines(frame: pd.DataFrame, method: str = "lite") -> list[str]:
    """Per rate: how often ``method`` beats the best baseline image by image, budget use,
    codecs, time."""
    lines = []
    lite = frame[frame.method == method].set_index(["image", "target_bpp"])
    base = frame[frame.method == "best_baseline"].set_index(["image", "target_bpp"])
    for rate, group in lite.groupby(level="target_bpp"):
        other = base.loc[group.index]
        n = len(group)
        wins = []
        for metric in ("psnr", "ms_ssim", "haarpsi", "niqe"):
            lower_is_better = metric in ("gmsd", "niqe")
            better = (
                group[metric] < other[metric] if lower_is_better else group[metric] > other[metric]
            )
            wins.append(f"{metric} {int(better.sum())}/{n}")
        fill = group["bytes"] / group["budget"]
        names = group["detail"].str.split(" ").str[0]
        codecs = ", ".join(f"{c} {k}" for c, k in names.value_counts().items())
        rebuilt = group["detail"].str.extract(r"(\d+) B rebuilt")[0].astype(float)
        if rebuilt.notna().any():
            codecs += f" (parameter sets rebuilt: {rebuilt.mean():.0f} B per image)"
        lines.append(
            f"{rate} bpp: {method} better than the best baseline on {', '.join(wins)} images; "
            f"budget used min {fill.min():.1%}, {int((fill < 0.97).sum())}/{n} under 97%; "
            f"reference codecs {codecs}; lite encode {group['encode_s'].mean():.2f} s, "
            f"decode {1000 * group['decode_s'].mean():.0f} ms on average"
        )
    return lines


def bytes_to_match(
    summary: pd.DataFrame, metric: str = "ms_ssim", method: str = "lite"
) -> list[str]:
    """Per rate: the bits ``method`` needs to reach the best baseline's mean ``metric`` there,
    interpolating its measured curve linearly in bpp (no extrapolation)."""
    lite = summary[summary.method == method].sort_values("bpp")
    base = summary[summary.method == "best_baseline"].sort_values("bpp")
    xs, ys = lite["bpp"].to_numpy(), lite[metric].to_numpy()
    lines = []
    for _, row in base.iterrows():
        target = row[metric]
        if pd.isna(target) or len(xs) < 2:
            continue
        head = (
            f"{row.target_bpp} bpp: best baseline {metric} {target:.4f} at {row.bpp:.4f} bpp; "
            f"{method}"
        )
        if target < ys[0]:
            saved = 1 - xs[0] / row.bpp
            lines.append(
                f"{head} is above it already at its lowest rate {xs[0]:.4f} bpp "
                f"(>= {saved:.1%} fewer bytes)"
            )
            continue
        for x0, y0, x1, y1 in zip(xs, ys, xs[1:], ys[1:], strict=False):
            if y0 <= target <= y1 and y1 > y0:
                needed = x0 + (target - y0) * (x1 - x0) / (y1 - y0)
                saved = 1 - needed / row.bpp
                lines.append(f"{head} reaches it at {needed:.4f} bpp ({saved:.1%} fewer bytes)")
                break
        else:
            lines.append(f"{head} does not reach it within its measured rates")
    return lines


def _plot(summary: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    palette = plt.get_cmap("Dark2")
    for index, (method, group) in enumerate(summary.groupby("method")):
        style = {
            "lite": "o-",
            "lite_r0": "o-",
            "lite_r1": "o:",
            "lite_lanczos": "o-",
            "best_baseline": "s--",
            "vvc": "d-",
        }.get(str(method), ".:")
        width = 2.5 if method in ("lite", "lite_r0", "lite_lanczos", "best_baseline") else 1.0
        color = {
            "lite": "tab:red",
            "lite_r0": "tab:purple",
            "lite_r1": "tab:pink",
            "lite_lanczos": "tab:orange",
            "best_baseline": "black",
            "vvc": "tab:blue",
        }.get(str(method), palette(index))
        for ax, metric in zip(axes, ("psnr", "ms_ssim", "haarpsi"), strict=True):
            if group[metric].notna().any():
                ax.plot(
                    group["bpp"],
                    group[metric],
                    style,
                    color=color,
                    label=str(method),
                    linewidth=width,
                )
    for ax, metric in zip(axes, ("PSNR (dB)", "MS-SSIM", "HaarPSI"), strict=True):
        ax.set_xlabel("bits per pixel (real packet/file bytes)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "semlink lite vs standard codecs incl. VVC (each with a downscale search), mean over images"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _gallery(frame: pd.DataFrame, out: Path) -> None:
    parts = [
        "<!doctype html><meta charset=utf-8><title>semlink eval</title>",
        "<style>body{font-family:sans-serif} img{width:19%;margin:2px}</style>",
        "<h1>semlink lite vs the best standard codec (VVC included)</h1>",
        "<p>Each row: original | best baseline | VVC | lite at realism 0 | lite (default "
        "realism), at equal byte budgets; below, 2x crops of the image's smoothest 96x96 area. "
        "<a href=summary.csv>summary.csv</a> <a href=results.csv>results.csv</a></p>",
        "<img src=rd.png style='width:100%'>",
    ]
    for (image, rate), group in frame.groupby(["image", "target_bpp"]):
        by_method = {row.method: row for row in group.itertuples()}
        lite, base = by_method.get("lite"), by_method.get("best_baseline")
        if lite is None or base is None:
            continue
        caption = (
            f"{html.escape(str(image))} @ {rate} bpp - "
            f"baseline {html.escape(str(base.detail))}: {base.bpp:.4f} bpp "
            f"{base.psnr:.2f} dB MS-SSIM {base.ms_ssim:.3f} | "
            f"lite ({html.escape(str(lite.detail))}): {lite.bpp:.4f} bpp "
            f"{lite.psnr:.2f} dB MS-SSIM {lite.ms_ssim:.3f}"
        )
        parts.append(f"<h3>{caption}</h3>")
        parts.append(f"<img src='images/{image}-original.png'>")
        for name in ("best_baseline", "vvc", "lite_r0", "lite"):
            parts.append(f"<img src='images/{image}-{rate}-{name}.png' alt='{name}'>")
        crops = out / "images" / f"{image}-{rate}-crops.png"
        if crops.exists():
            parts.append(f"<br><img src='images/{crops.name}' style='width:95%'>")
    (out / "index.html").write_text("\n".join(parts))
