"""The ``data`` group: ``kodak`` (the evaluation suite, fetched and checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semlink.cli._common import _fail, console

data_app = typer.Typer(help="Fetch public evaluation data.", no_args_is_help=True)


@data_app.command("kodak")
def data_kodak_cmd(
    dest: Annotated[
        Path | None,
        typer.Option(help="Folder to fill (default: ~/.cache/semlink/data/kodak)."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Copy the 24 PNGs from this folder instead of downloading them."
        ),
    ] = None,
) -> None:
    """Download the Kodak suite (24 PNGs from r0k.us) or copy it with --from, and check
    every picture against its pinned pixel hash; prints the folder to give `semlink eval`."""
    from semlink.eval.datasets import DEFAULT_DEST, DataError, fetch_kodak

    target = dest or DEFAULT_DEST
    try:
        folder = fetch_kodak(target, source, progress=lambda name: console.print(f"  {name}"))
    except DataError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"Kodak: 24 pictures checked in {folder}; run `semlink eval {folder}`")


def register(app: typer.Typer) -> None:
    """Add the ``data`` group to APP."""
    app.add_typer(data_app, name="data")
