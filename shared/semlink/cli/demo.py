"""The ``demo`` command: encoder, link and decoder services (started as
``python -m services.X`` processes, or already running) with sample photos pushed through."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from semlink.budget import DEFAULT_BPP
from semlink.cli._common import _fail, console


def demo_cmd(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Where reconstructions and logs go.")
    ] = Path("out/demo"),
    bpp: Annotated[float, typer.Option("--bpp", help="Target bits per pixel.")] = DEFAULT_BPP,
    link: Annotated[
        str, typer.Option("--link", help="Link profile: leo, geo, nb-ntn, 6g-urban.")
    ] = "leo",
    loss: Annotated[
        float | None, typer.Option("--loss", help="Override the link's frame loss.")
    ] = None,
    encoder: Annotated[str | None, typer.Option(help="Use a running encoder at HOST:PORT.")] = None,
    via: Annotated[
        str | None, typer.Option(help="Use a running link service at HOST:PORT.")
    ] = None,
    decoder: Annotated[str | None, typer.Option(help="Use a running decoder at HOST:PORT.")] = None,
) -> None:
    """Run encoder, link and decoder services locally and push sample photos through them.

    With --encoder, --via and --decoder it uses services that already run (docker-compose).
    """
    from semlink.demo import SAMPLES, run_demo
    from semlink.link import LINK_PROFILES

    if link not in LINK_PROFILES:
        raise _fail(f"unknown link profile {link!r}; known: {', '.join(LINK_PROFILES)}")
    console.print(
        f"starting encoder, link ({link}) and decoder; {len(SAMPLES)} photos at {bpp} bpp"
    )
    remote = (encoder, via, decoder)
    if any(remote) and not all(remote):
        raise _fail("give all of --encoder, --via and --decoder, or none")
    addresses = None
    if encoder and via and decoder:
        addresses = {"encoder": encoder, "link": via, "decoder": decoder}
    rows = run_demo(out, bpp, link, loss, announce=console.print, addresses=addresses)
    table = Table(
        "image",
        "bytes",
        "bpp",
        "airtime s",
        "link s",
        "layers",
        "frames sent/lost/re-tx",
        "PSNR dB",
        "MS-SSIM",
        "encode ms",
        "decode ms",
        "end-to-end s",
    )
    for r in rows:
        table.add_row(
            r.name,
            str(r.bytes),
            f"{r.bpp:.4f}",
            f"{r.airtime_s:.3f}",
            f"{r.link_latency_s:.3f}",
            r.layers,
            r.frames,
            f"{r.psnr:.2f}",
            f"{r.ms_ssim:.4f}",
            f"{r.encode_ms:.0f}",
            f"{r.decode_ms:.0f}",
            f"{r.end_to_end_s:.2f}",
        )
    console.print(table)
    console.print(f"reconstructions, side-by-side images and service logs in {out}/")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to APP as a top-level command."""
    app.command("demo")(demo_cmd)
