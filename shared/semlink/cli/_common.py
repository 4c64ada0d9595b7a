"""What the command modules share: the console, option types and small helpers.

``_fail`` (print an error, return the exit to raise), ``_models`` (the models a command
runs with: the settings', or tiny ones with ``--tiny``), ``_load_image`` (any image file
as RGB pixels), ``_bsds`` (the BSDS500 training photos beside the weights directory) and
the option types ``Tiny``, ``Steps``, ``Minutes``, ``Limit`` and ``ShipTo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from semlink.cli._console import console

if TYPE_CHECKING:
    import numpy as np

    from semlink.resolver import Resolver

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


def _models(tiny: bool) -> Resolver:
    """The models a command runs with, from the settings; --tiny: tiny random ones (the
    whole pipeline runs, generative pictures are noise)."""
    from semlink.config import settings
    from semlink.resolver import Resolver

    current = settings()
    return Resolver(current.model_copy(update={"tiny_models": True}) if tiny else current)


def _load_image(path: Path) -> np.ndarray:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

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
