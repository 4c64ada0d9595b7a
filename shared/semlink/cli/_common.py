"""What the command modules share: the console, option types and small helpers.

``_fail`` (print an error, return the exit to raise), ``_use_tiny_models`` (the ``--tiny``
switch), ``_load_image`` (any image file as RGB pixels), ``_bsds`` (the BSDS500 training
photos beside the weights directory) and the option types ``Tiny``, ``Steps``, ``Minutes``,
``Limit`` and ``ShipTo``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image, UnidentifiedImageError
from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)

Tiny = Annotated[bool, typer.Option("--tiny", help="Tiny random models (demo/test).")]
Steps = Annotated[int, typer.Option(help="Total steps (a resumed run counts on).")]
Minutes = Annotated[float | None, typer.Option(help="Stop after this long.")]
Limit = Annotated[int | None, typer.Option(help="Use only the first N photos.")]
ShipTo = Annotated[
    Path | None,
    typer.Option("--ship", help="Write the weights, manifest and held-out results here."),
]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def _use_tiny_models(tiny: bool) -> None:
    """--tiny: generative profiles use tiny random models (pipeline runs, pictures are noise)."""
    if tiny:
        import os

        from semlink.config import settings

        os.environ["SEMLINK_TINY_MODELS"] = "1"
        settings.cache_clear()


def _load_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise _fail(f"cannot read image {path}: {exc}") from exc


def _bsds() -> Path:
    from semlink.config import settings

    bsds = settings().weights_dir.parent / "data" / "train" / "bsds500"
    if not bsds.exists():
        raise _fail(f"{bsds} not found: BSDS500 lies beside the weights directory")
    return bsds
