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

METRICS = ("bpp", "psnr", "ms_ssim", "haarpsi", "gmsd", "niqe", "lpips", "dists")
LOWER_IS_BETTER = ("gmsd", "niqe", "lpips", "dists")


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
    _plot_realism(summary, out / "realism.png")
    _gallery(frame, out)
    return summary


LITE_METHODS = ("lite", "lite_r0", "lite_r1", "lite_lanczos")
"""The lite decodes the command line reports on (the realism curve's middle points are in
the CSVs and ``realism.png``)."""


def comparison_lines(frame: pd.DataFrame, method: str = "lite") -> list[str]:
    """Per rate: how often ``method`` beats the best baseline image by image, budget use,
    codecs, time."""
    lines: list[str] = []
    lite = frame[frame.method == method].set_index(["image", "target_bpp"])
    base = frame[frame.method == "best_baseline"].set_index(["image", "target_bpp"])
    if base.empty:  # no baseline ran (``--methods`` without one)
        return lines
    for rate, group in lite.groupby(level="target_bpp"):
        other = base.reindex(group.index)  # NaN (never beaten) where no baseline fitted
        n = len(group)
        wins = []
        for metric in ("psnr", "ms_ssim", "haarpsi", "niqe", "lpips", "dists"):
            lower_is_better = metric in LOWER_IS_BETTER
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
    summary: pd.DataFrame,
    metric: str = "ms_ssim",
    method: str = "lite",
    baseline: str = "best_baseline",
) -> list[str]:
    """Per rate: the bits ``method`` needs to reach ``baseline``'s mean ``metric`` there,
    interpolating its measured curve linearly in bpp (no extrapolation)."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0  # compare as "higher is better"
    lite = summary[summary.method == method].sort_values("bpp")
    base = summary[summary.method == baseline].sort_values("bpp")
    xs, ys = lite["bpp"].to_numpy(), sign * lite[metric].to_numpy()
    lines = []
    for _, row in base.iterrows():
        target = sign * row[metric]
        if pd.isna(target) or len(xs) < 2:
            continue
        head = (
            f"{row.target_bpp} bpp: {baseline} {metric} {sign * target:.4f} at {row.bpp:.4f} "
            f"bpp; {method}"
        )
        if target < ys[0]:
            saved = 1 - xs[0] / row.bpp
            lines.append(
                f"{head} is past it already at its lowest rate {xs[0]:.4f} bpp "
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


RD_STYLES = {
    "lite": ("o-", "tab:red", 2.5),
    "lite_r0": ("o-", "tab:purple", 1.5),
    "lite_r1": ("o--", "tab:pink", 2.0),
    "lite_lanczos": ("o:", "tab:orange", 1.0),
    "best_baseline": ("s--", "black", 1.5),
    "vvc": ("d-", "tab:blue", 2.5),
}


def _plot(summary: pd.DataFrame, path: Path) -> None:
    panels = (
        ("psnr", "PSNR (dB), higher is better"),
        ("ms_ssim", "MS-SSIM, higher is better"),
        ("haarpsi", "HaarPSI, higher is better"),
        ("lpips", "LPIPS (AlexNet), lower is better"),
        ("dists", "DISTS, lower is better"),
    )
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    palette = plt.get_cmap("Dark2")
    for index, (method, group) in enumerate(summary.groupby("method")):
        name = str(method)
        if name.startswith("lite_r") and name not in RD_STYLES:
            continue  # the realism curve's middle points: realism.png
        style, color, width = RD_STYLES.get(name, (".:", palette(index), 1.0))
        for ax, (metric, _) in zip(axes.flat, panels, strict=False):
            if metric in group and group[metric].notna().any():
                ax.plot(group["bpp"], group[metric], style, color=color, label=name, lw=width)
    for ax, (_, label) in zip(axes.flat, panels, strict=False):
        ax.set_xlabel("bits per pixel (real packet/file bytes)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[5].axis("off")
    axes.flat[5].legend(handles, labels, loc="center", fontsize=10)
    fig.suptitle(
        "semlink lite vs standard codecs (VVC included, each with a downscale search), "
        "mean over the evaluated images"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def realism_curve(summary: pd.DataFrame) -> pd.DataFrame:
    """Per rate, lite's decodes along the realism control (``lite_r0`` ... ``lite_r1``) with
    their realism as a column, sorted."""
    curve = summary[summary.method.str.fullmatch(r"lite_r[0-9.]+")].copy()
    curve["realism"] = curve.method.str[len("lite_r") :].astype(float)
    return curve.sort_values(["target_bpp", "realism"])


def _plot_realism(summary: pd.DataFrame, path: Path) -> None:
    curve = realism_curve(summary)
    vvc = summary[summary.method == "vvc"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, metric in zip(axes, ("lpips", "dists"), strict=True):
        for index, (rate, group) in enumerate(curve.groupby("target_bpp")):
            color = plt.get_cmap("tab10")(index)
            ax.plot(group[metric], group["psnr"], "o-", color=color, label=f"lite {rate} bpp")
            for row in group.itertuples():
                ax.annotate(f"{row.realism:g}", (getattr(row, metric), row.psnr), fontsize=8)
            base = vvc[vvc.target_bpp == rate]
            if len(base):
                ax.plot(base[metric], base["psnr"], "d", color=color, ms=9, label=f"VVC {rate}")
        ax.set_xlabel(f"{'LPIPS (AlexNet)' if metric == 'lpips' else 'DISTS'}, lower is better")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # nothing to plot without lite_r* and vvc
            ax.legend(fontsize=8)
    fig.suptitle("lite's realism control: the same packets decoded at realism 0 ... 1 (labels)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _gallery(frame: pd.DataFrame, out: Path) -> None:
    parts = [
        "<!doctype html><meta charset=utf-8><title>semlink eval</title>",
        "<style>body{font-family:sans-serif} img{width:19%;margin:2px}</style>",
        "<h1>semlink lite vs the best standard codec (VVC included)</h1>",
        "<p>Each row: original | best baseline | VVC | lite at realism 0 | lite (default "
        "realism), those the run had, at equal byte budgets; below, 2x crops of the image's "
        "most textured and smoothest 96x96 areas: original | VVC | lite realism 0 | lite "
        "realism 1. "
        "<a href=summary.csv>summary.csv</a> <a href=results.csv>results.csv</a></p>",
        "<img src=rd.png style='width:100%'>",
        "<img src=realism.png style='width:80%'>",
    ]
    for (image, rate), group in frame.groupby(["image", "target_bpp"]):
        by_method = {row.method: row for row in group.itertuples()}
        shown = [name for name in ("best_baseline", "vvc", "lite_r0", "lite") if name in by_method]
        if not shown:
            continue
        captions = []
        for name, label in (("best_baseline", "baseline"), ("lite", "lite")):
            row = by_method.get(name)
            if row is not None:
                captions.append(
                    f"{label} ({html.escape(str(row.detail))}): {row.bpp:.4f} bpp "
                    f"{row.psnr:.2f} dB MS-SSIM {row.ms_ssim:.3f} LPIPS {row.lpips:.3f}"
                )
        parts.append(f"<h3>{html.escape(str(image))} @ {rate} bpp - {' | '.join(captions)}</h3>")
        parts.append(f"<img src='images/{image}-original.png'>")
        for name in shown:
            parts.append(f"<img src='images/{image}-{rate}-{name}.png' alt='{name}'>")
        for kind in ("crops", "smooth"):
            crops = out / "images" / f"{image}-{rate}-{kind}.png"
            if crops.exists():
                parts.append(f"<br><img src='images/{crops.name}' style='width:95%'>")
    (out / "index.html").write_text("\n".join(parts))
