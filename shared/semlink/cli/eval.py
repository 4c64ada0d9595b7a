"""The ``eval`` command: lite against the standard codecs (VVC included) at equal real
bytes on a folder of images (CSV, RD plot and HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from semlink.cli._common import _fail, console

if TYPE_CHECKING:
    import pandas as pd

    from semlink.eval.harness import EvalConfig, Row


Images = Annotated[Path, typer.Argument(help="Folder of images, e.g. ../shared/data/kodak.")]
Rates = Annotated[str, typer.Option("--bpp", help="Comma-separated rates.")]
Out = Annotated[Path, typer.Option("-o", "--out", help="Report folder.")]
Workers = Annotated[int, typer.Option("--workers", help="Parallel image workers.")]
Limit = Annotated[
    int | None,
    typer.Option("--limit", min=1, help="Only the first N photos of the folder (by name)."),
]
Methods = Annotated[
    str | None,
    typer.Option(
        "--methods",
        help="Comma-separated methods to run, e.g. lite,vvc (default: all). lite's: lite "
        "(as it ships), lite_r0, lite_r0.25, lite_r0.5, lite_r0.75, lite_r1 (its realism "
        "curve) and lite_lanczos; the standard codecs: avif, hevc, webp, jpegxl, jpeg, "
        "vvc. best_baseline is picked among the codecs that run.",
    ),
]
Baselines = Annotated[
    str | None,
    typer.Option(
        "--baselines",
        help="Comma-separated standard codecs to compare, beside every lite method "
        "(default: all of avif, hevc, webp, jpegxl, jpeg, vvc). With --methods it adds "
        "these codecs to those methods.",
    ),
]
Cache = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Where the codecs' search results are kept across runs, keyed by codec "
        "version, photo and budget (default: $SEMLINK_EVAL_CACHE or "
        "~/.cache/semlink/eval).",
    ),
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Search afresh and keep nothing.")]


def eval_cmd(
    images: Images,
    bpp: Rates = "0.02,0.03,0.05",
    out: Out = Path("out/eval"),
    workers: Workers = 2,
    limit: Limit = None,
    methods: Methods = None,
    baselines: Baselines = None,
    cache: Cache = None,
    no_cache: NoCache = False,
) -> None:
    """Compare lite with the standard codecs (VVC included) at equal real bytes; write CSV,
    RD plot and HTML.

    A quick run: --limit 2 --methods lite,vvc --bpp 0.03 (VVC's search takes about two
    minutes per photo and rate the first time, and is read from the cache after that)."""
    from semlink.eval.cache import default_cache
    from semlink.eval.harness import EvalConfig, list_images
    from semlink.eval.methods import BASELINES, UnknownMethodError, select_methods
    from semlink.eval.report import write_reports

    if no_cache and cache is not None:
        raise _fail("give --cache or --no-cache, not both")
    try:
        chosen = select_methods(methods, baselines)
    except UnknownMethodError as exc:
        raise _fail(str(exc)) from exc
    try:
        rates = tuple(float(r) for r in bpp.split(","))
    except ValueError as exc:
        raise _fail(f"--bpp takes comma-separated numbers, e.g. 0.02,0.03: {exc}") from exc
    try:
        n = len(list_images(images, limit))
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    store = None if no_cache else (cache or default_cache())
    config = EvalConfig(
        images=images,
        out=out,
        rates=rates,
        workers=workers,
        methods=chosen,
        limit=limit,
        cache=store,
    )
    rows, cached, searched = _run(config, n)
    summary = write_reports(rows, out)
    # lite as reported, VVC and the best baseline; other codecs when they were asked for
    asked = [m for m in chosen if m in BASELINES] if methods or baselines else []
    _print_summary(summary, asked)
    _print_comparisons(out, summary)
    if store is not None and (cached or searched):
        console.print(
            f"codec searches: {cached} read from the cache, {searched} run and kept in {store}"
        )
    console.print(f"reports in {out}/ (results.csv, summary.csv, rd.png, realism.png, index.html)")


def _run(config: EvalConfig, photos: int) -> tuple[list[Row], int, int]:
    """The evaluation's rows, with a progress bar over its units; and how many codec
    searches were read from the cache and how many run."""
    from semlink.config import settings
    from semlink.eval.harness import run_eval, units

    cached = searched = 0

    def advance(description: str, step: int, from_cache: bool | None) -> None:
        nonlocal cached, searched
        progress.update(task, advance=step, description=description)
        if from_cache is not None:
            cached, searched = cached + from_cache, searched + (not from_cache)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        total = units(config, photos)
        task = progress.add_task(
            f"{photos} photo(s) x {len(config.rates)} rate(s) x {len(config.methods)} method(s)",
            total=total,
        )
        rows = run_eval(config, settings(), advance)
    return rows, cached, searched


def _print_summary(summary: pd.DataFrame, asked: list[str]) -> None:
    """The mean metrics of lite's methods, VVC, the codecs ``asked`` for and the best
    baseline per rate; then lite's realism curve."""
    from semlink.eval.report import LITE_METHODS, realism_curve

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
        if row.method in (*LITE_METHODS, "vvc", *asked, "best_baseline"):
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
    if curve.row_count:
        console.print("lite's realism curve (the same packets at each realism):")
        console.print(curve)


def _print_comparisons(out: Path, summary: pd.DataFrame) -> None:
    """lite's methods against the baselines: per photo, and the bytes each needs to match."""
    import pandas as pd

    from semlink.eval.report import LITE_METHODS, bytes_to_match, comparison_lines

    results = pd.read_csv(out / "results.csv")
    for method in LITE_METHODS:
        for line in [*comparison_lines(results, method), *bytes_to_match(summary, method=method)]:
            console.print(line)
    for method in ("lite", "lite_r1"):
        for metric in ("lpips", "dists"):
            for line in bytes_to_match(summary, metric, method, baseline="vvc"):
                console.print(line)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to APP as a top-level command."""
    app.command("eval")(eval_cmd)
