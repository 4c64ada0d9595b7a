"""The ``eval`` command: lite against the standard codecs (VVC included) at equal real
bytes on a folder of images (CSV, RD plot and HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from semlink.cli._common import _fail, console


def eval_cmd(
    images: Annotated[Path, typer.Argument(help="Folder of images, e.g. ../shared/data/kodak.")],
    bpp: Annotated[str, typer.Option("--bpp", help="Comma-separated rates.")] = "0.02,0.03,0.05",
    out: Annotated[Path, typer.Option("-o", "--out", help="Report folder.")] = Path("out/eval"),
    workers: Annotated[int, typer.Option("--workers", help="Parallel image workers.")] = 2,
    baselines: Annotated[
        str | None,
        typer.Option(
            "--baselines",
            help="Comma-separated standard codecs to compare (default: all of avif, hevc, "
            "webp, jpegxl, jpeg, vvc). `--baselines vvc` is the quick run.",
        ),
    ] = None,
) -> None:
    """Compare lite with the standard codecs (VVC included) at equal real bytes; write CSV,
    RD plot and HTML."""
    import pandas as pd

    from semlink.eval.harness import EvalConfig, list_images, run_eval
    from semlink.eval.report import (
        LITE_METHODS,
        bytes_to_match,
        comparison_lines,
        realism_curve,
        write_reports,
    )
    from semlink.streams.reference import STANDARD

    known = tuple(c.name.lower() for c in STANDARD)
    chosen = known if baselines is None else tuple(b.strip().lower() for b in baselines.split(","))
    unknown = [b for b in chosen if b not in known]
    if unknown:
        raise _fail(f"unknown baseline {', '.join(unknown)}: choose from {', '.join(known)}")
    try:
        rates = tuple(float(r) for r in bpp.split(","))
        n = len(list_images(images))
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    config = EvalConfig(images=images, out=out, rates=rates, workers=workers, baselines=chosen)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("evaluating", total=n)
        rows = run_eval(config, lambda name: progress.update(task, advance=1, description=name))
    summary = write_reports(rows, out)
    table = Table(
        "bpp target",
        "method",
        "real bpp",
        "PSNR",
        "MS-SSIM",
        "HaarPSI",
        "GMSD",
        "NIQE",
        "LPIPS",
        "DISTS",
    )
    for row in summary.itertuples():
        if row.method in (*LITE_METHODS, "vvc", "best_baseline"):
            table.add_row(
                f"{row.target_bpp}",
                str(row.method),
                f"{row.bpp:.4f}",
                f"{row.psnr:.2f}",
                f"{row.ms_ssim:.4f}",
                f"{row.haarpsi:.4f}",
                f"{row.gmsd:.4f}",
                f"{row.niqe:.3f}",
                f"{row.lpips:.3f}",
                f"{row.dists:.3f}",
            )
    console.print(table)
    curve = Table("bpp target", "realism", "PSNR", "MS-SSIM", "LPIPS", "DISTS", "NIQE")
    for row in realism_curve(summary).itertuples():
        curve.add_row(
            f"{row.target_bpp}",
            f"{row.realism:g}",
            f"{row.psnr:.2f}",
            f"{row.ms_ssim:.4f}",
            f"{row.lpips:.3f}",
            f"{row.dists:.3f}",
            f"{row.niqe:.3f}",
        )
    console.print("lite's realism curve (the same packets at each realism):")
    console.print(curve)
    results = pd.read_csv(out / "results.csv")
    for method in LITE_METHODS:
        for line in [*comparison_lines(results, method), *bytes_to_match(summary, method=method)]:
            console.print(line)
    for method in ("lite", "lite_r1"):
        for metric in ("lpips", "dists"):
            for line in bytes_to_match(summary, metric, method, baseline="vvc"):
                console.print(line)
    console.print(f"reports in {out}/ (results.csv, summary.csv, rd.png, realism.png, index.html)")


def register(app: typer.Typer) -> None:
    """Add ``eval`` to APP as a top-level command."""
    app.command("eval")(eval_cmd)
