"""What the command modules share: the console, option types and small helpers.

``_fail`` (print an error, return the exit to raise), ``_writable`` and ``_image_format``
(an output path checked before the work), ``reflow_help`` (docstrings as --help shows
them), ``_settings`` and ``_codecs`` (the models a command runs with: the settings', or
tiny ones with ``--tiny``), ``_load_image`` (any image file as RGB pixels), ``_bsds`` (the
BSDS500 training photos beside the weights directory) and the option types ``Tiny``,
``Steps``, ``Minutes``, ``Limit`` and ``ShipTo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from semlink.cli._console import console as console  # the commands print to it
from semlink.cli._console import print_error

if TYPE_CHECKING:
    import numpy as np

    from semlink.codec import Codecs
    from semlink.config import Settings

Tiny = Annotated[bool, typer.Option("--tiny", help="Tiny random models (demo/test).")]
Steps = Annotated[int, typer.Option(help="Total steps (a resumed run counts on).")]
Minutes = Annotated[
    float | None,
    typer.Option(
        help="Stop once the run's wall time passes this many minutes, counted over every "
        "resume (a resumed run past it stops at once)."
    ),
]
Limit = Annotated[int | None, typer.Option(help="Use only the first N photos.")]
ShipTo = Annotated[
    Path | None,
    typer.Option("--ship", help="Write the weights, manifest and held-out results here."),
]


def _fail(message: str) -> typer.Exit:
    print_error(message)
    return typer.Exit(code=2)


def _writable(path: Path) -> None:
    """Fail now, before any work, unless a file can be written at ``path`` (its folder
    exists, it is not a folder, permissions and the file system allow it). Leaves an
    existing file as it is and no new one behind."""
    if path.is_dir():
        raise _fail(f"cannot write {path}: it is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        why = "is not a folder" if parent.exists() else "does not exist (create it first)"
        raise _fail(f"cannot write {path}: folder {parent} {why}")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}") from exc
    if not existed:
        path.unlink(missing_ok=True)


def _register_heif() -> None:
    """Let Pillow read and write HEIF/AVIF by extension, as the codecs do once imported."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover - pinned in requirements.lock
        pass


def image_extensions() -> dict[str, str]:
    """Every file extension Pillow knows an image format of (read or write): extension ->
    format."""
    from PIL import Image

    Image.init()
    _register_heif()
    return dict(Image.registered_extensions())


def _writes_rgb(image_format: str) -> bool:
    """Whether Pillow writes an RGB picture in ``image_format`` (some formats it knows it
    only reads, or writes only in other modes)."""
    import io
    import warnings

    from PIL import Image

    if image_format not in Image.SAVE:
        return False
    try:
        with warnings.catch_warnings():  # formats Pillow deprecates still write
            warnings.simplefilter("ignore", DeprecationWarning)
            Image.new("RGB", (8, 8)).save(io.BytesIO(), image_format)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def writable_image_extensions() -> list[str]:
    """The extensions an RGB picture can be written to, sorted."""
    return sorted(ext for ext, fmt in image_extensions().items() if _writes_rgb(fmt))


def _image_format(path: Path) -> str:
    """The Pillow format ``path``'s extension writes an RGB picture in; fail otherwise,
    listing the extensions that do."""
    ext = path.suffix.lower()
    image_format = image_extensions().get(ext)
    if image_format is None or not _writes_rgb(image_format):
        what = f"{ext} is not an image format Pillow writes" if ext else "it has no extension"
        accepted = writable_image_extensions()
        common = [e for e in COMMON_IMAGE_EXTENSIONS if e in accepted]
        others = ", ".join(e for e in accepted if e not in common)
        raise _fail(
            f"cannot write an image to {path}: {what}; use {', '.join(common)} "
            f"or another extension Pillow writes ({others})"
        )
    return image_format


COMMON_IMAGE_EXTENSIONS = (".png", ".webp", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".avif")
"""Named first when an output's extension is refused."""


def _paragraphs(doc: str) -> str:
    """``doc`` cleaned, each paragraph on one line (lists, lines starting with "- ", and
    paragraphs marked with ``\\b`` keep their lines)."""
    import inspect

    out = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        lines = paragraph.split("\n")
        keep = paragraph.startswith("\b") or any(line.lstrip().startswith("- ") for line in lines)
        out.append(paragraph if keep else " ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def reflow_help(app: typer.Typer) -> None:
    """Give APP's commands (and its groups', recursively) their docstrings with each
    paragraph on one line: rich keeps a docstring's line breaks in command lists and in the
    paragraphs after the first, where they cut sentences at the source's width."""
    for command in app.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = _paragraphs(command.callback.__doc__)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)


def _settings(tiny: bool) -> Settings:
    """The settings a command's models come from: the process's; --tiny: with tiny random
    models (the whole pipeline runs, generative pictures are noise)."""
    from semlink.config import settings

    current = settings()
    return current.model_copy(update={"tiny_models": True}) if tiny else current


def _codecs(tiny: bool) -> Codecs:
    """Every profile's codec over the models a command runs with (:func:`_settings`)."""
    from semlink.codec import Codecs

    return Codecs.from_settings(_settings(tiny))


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
