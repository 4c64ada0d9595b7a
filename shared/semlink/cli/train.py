"""The ``train`` group, one command per recipe: ``restorer`` (recipe c), ``perceptual``
(recipe p, lite's realism end), ``ref-codec``
(recipe a), ``latent-codec`` (recipe b), ``latent-restorer`` (research, not shipped) and
``size-model`` (lite's VVC rate control's first guess).
Each run is resumable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from semlink.cli._common import Limit, Minutes, ShipTo, Steps, _bsds, _fail, console

if TYPE_CHECKING:
    from semlink.train.pixel_restorer import PixelRestorerRecipe

train_app = typer.Typer(help="Train the project's models (CPU or GPU).", no_args_is_help=True)


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress display, shown while the block runs; yields the ``progress(stage, done,
    total)`` callback recipes take."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done)

    with bar:
        yield progress


def _ran(out: Path, state: Any) -> None:
    """Say where a recipe's run stands once its ``train`` returns."""
    console.print(f"{out}: step {state.step}, {state.seconds / 60:.1f} min, loss curve loss.png")


def _restorer_recipe(
    *,
    fidelity: bool,
    adv_start: int,
    fine_tune_steps: int | None,
    lr: float | None,
    width: int | None,
    blocks: int | None,
    fine_width: int | None,
    fine_blocks: int,
    ms_ssim_weight: float | None,
) -> PixelRestorerRecipe:
    """``semlink train restorer``'s recipe: the fidelity recipe or recipe c's, with the
    options given in place of its values. A fine-tune of ``fine_tune_steps`` (--init)
    spans the learning rate's cosine decay (in a recipe that decays) over them."""
    from semlink.train.pixel_restorer import FIDELITY, PixelRestorerRecipe

    if ms_ssim_weight is not None and not fidelity:
        raise typer.BadParameter("only the fidelity recipe (--fidelity) has an MSE loss")
    recipe = FIDELITY if fidelity else PixelRestorerRecipe(adv_start=adv_start)
    given: dict[str, Any] = {
        "lr": lr,
        "blocks": blocks,
        "width": width,
        "ms_ssim_weight": ms_ssim_weight,
    }
    if fine_tune_steps is not None and recipe.decay_steps:
        given["decay_steps"] = fine_tune_steps
    if fine_width:
        given.update(fine_width=fine_width, fine_blocks=fine_blocks)
    return replace(recipe, **{k: v for k, v in given.items() if v is not None})


@train_app.command("restorer")
def train_restorer_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoint, cache, loss.png).")] = Path(
        "out/train/pixel"
    ),
    steps: Steps = 20000,
    minutes: Minutes = None,
    limit: Limit = None,
    ship_to: ShipTo = None,
    adv_start: Annotated[
        int, typer.Option(help="Steps of fidelity training before the discriminator joins.")
    ] = 0,
    note: Annotated[str, typer.Option(help="A note for the shipped manifest.")] = "",
    fidelity: Annotated[
        bool,
        typer.Option(
            "--fidelity",
            help="Train the fidelity restorer (MSE, realism 0; lite decodes realism 0 with "
            "it) instead: its own recipe, run directory out/train/fidelity by default.",
        ),
    ] = False,
    init: Annotated[
        Path | None,
        typer.Option(
            help="Fine-tune: start a new run from this checkpoint's weights (or shipped "
            ".safetensors; fresh optimizer; "
            "the learning rate's cosine decay then spans --steps)."
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the recipe's).")] = None,
    ms_ssim_weight: Annotated[
        float | None,
        typer.Option(
            help="With --fidelity: add this x (1 - MS-SSIM) to the MSE loss (default: the "
            "recipe's, 0)."
        ),
    ] = None,
    width: Annotated[
        int | None,
        typer.Option(
            help="Feature channels (default: the recipe's); with --init from a narrower "
            "network, the new channels start silent."
        ),
    ] = None,
    blocks: Annotated[
        int | None,
        typer.Option(
            help="Residual blocks (default: the recipe's); with --init from a shallower "
            "network, the new blocks start as the identity."
        ),
    ] = None,
    fine_width: Annotated[
        int | None,
        typer.Option(
            help="Channels of a second stage on the H/2 grid (default: the recipe's, 0: "
            "none); with --init from a network without one, it starts silent."
        ),
    ] = None,
    fine_blocks: Annotated[
        int, typer.Option(help="Residual blocks of the H/2 stage (with --fine-width).")
    ] = 4,
) -> None:
    """Recipe c: lite's restorer (VVC reference -> full size, with a realism control) with
    L1, MS-SSIM and realism-weighted adversarial losses on BSDS500 VVC references;
    resumable. --ship DIR evaluates on held-out photos, picks the default realism and
    writes the fp16 weights and manifest."""
    from semlink.train.pixel_restorer import train
    from semlink.train.restorer_ship import ship_restorer

    bsds = _bsds()
    recipe = _restorer_recipe(
        fidelity=fidelity,
        adv_start=adv_start,
        fine_tune_steps=None if init is None else steps,
        lr=lr,
        width=width,
        blocks=blocks,
        fine_width=fine_width,
        fine_blocks=fine_blocks,
        ms_ssim_weight=ms_ssim_weight,
    )
    if fidelity and out == Path("out/train/pixel"):
        out = Path("out/train/fidelity")
    with _progress() as progress:
        state = train(
            bsds,
            out,
            steps=steps,
            minutes=minutes,
            recipe=recipe,
            limit=limit,
            progress=progress,
            init=init,
        )
    _ran(out, state)
    if ship_to is not None:
        manifest = ship_restorer(out, ship_to, bsds, note)
        console.print(f"shipped: {manifest}")
        console.print(manifest.read_text())


@train_app.command("perceptual")
def train_perceptual_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, terms.jsonl).")] = Path(
        "out/train/perceptual"
    ),
    steps: Steps = 20000,
    minutes: Minutes = None,
    init: Annotated[
        Path | None,
        typer.Option(
            help="Start from these weights grown to the recipe's shape (default: the "
            "shipped fidelity network, so step 0 is lite's realism-0 picture)."
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="A restorer cache to share (default: the one the run started with, else "
            "OUT/cache.pt, built if missing)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device: cpu or cuda.")] = "cpu",
    adv: Annotated[float | None, typer.Option(help="Adversarial loss weight.")] = None,
    adv_start: Annotated[
        int | None, typer.Option(help="Steps of L1 + LPIPS before the discriminator joins.")
    ] = None,
    lpips_weight: Annotated[float | None, typer.Option(help="LPIPS-VGG loss weight.")] = None,
    l1_weight: Annotated[float | None, typer.Option(help="L1 loss weight.")] = None,
    texture_weight: Annotated[
        float | None,
        typer.Option(help="Weight of the texture-statistics loss (0: off)."),
    ] = None,
    texture_depth: Annotated[
        int | None, typer.Option(help="Taps the texture term reads, shallowest first.")
    ] = None,
    texture_net: Annotated[
        str | None,
        typer.Option(help="Whose taps the texture term reads: lpips (LPIPS-VGG's) or taef2."),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Generator learning rate.")] = None,
    decay_steps: Annotated[
        int | None,
        typer.Option(help="Cosine learning-rate decay to 0 at this step (0: constant)."),
    ] = None,
    max_bpp: Annotated[
        float | None,
        typer.Option(help="Train only on the cache's references below this rate (0: all)."),
    ] = None,
    width: Annotated[int | None, typer.Option(help="Channels of the H/4 stage.")] = None,
    blocks: Annotated[int | None, typer.Option(help="Residual blocks of the H/4 stage.")] = None,
    fine_width: Annotated[int | None, typer.Option(help="Channels of the H/2 stage.")] = None,
    fine_blocks: Annotated[
        int | None, typer.Option(help="Residual blocks of the H/2 stage.")
    ] = None,
    noise: Annotated[
        int | None,
        typer.Option(
            help="Full-size noise maps the network reads (0: none; grows a run's --init)."
        ),
    ] = None,
    ship_to: ShipTo = None,
) -> None:
    """Recipe p: lite's realism end (L1 + LPIPS-VGG + a conditional PatchGAN) on BSDS500
    VVC references; resumable. A run continues with the recipe it was started with (its
    recipe.json), changed only by the options given. --ship DIR evaluates it on held-out
    photos (LPIPS-Alex, DISTS, PSNR along the realism curve), picks the default realism and
    writes the fp16 weights and manifest."""
    import json
    from importlib import resources

    from semlink.train.common import CHECKPOINT
    from semlink.train.perceptual_restorer import PerceptualRecipe, train
    from semlink.train.pixel_restorer import RECIPE

    saved = out / RECIPE
    recipe = (
        PerceptualRecipe(**json.loads(saved.read_text())) if saved.exists() else PerceptualRecipe()
    )
    given: dict[str, Any] = {
        "adv": adv,
        "adv_start": adv_start,
        "lpips": lpips_weight,
        "l1": l1_weight,
        "texture": texture_weight,
        "texture_depth": texture_depth,
        "texture_net": texture_net,
        "lr": lr,
        "decay_steps": decay_steps,
        "max_bpp": max_bpp,
        "width": width,
        "blocks": blocks,
        "fine_width": fine_width,
        "fine_blocks": fine_blocks,
        "noise": noise,
    }
    recipe = replace(recipe, **{k: v for k, v in given.items() if v is not None})
    if init is None and not (out / CHECKPOINT).exists():
        init = Path(str(resources.files("semlink") / "data" / "fidelity_restorer.safetensors"))
    bsds = _bsds()
    with _progress() as progress:
        state = train(
            bsds,
            out,
            steps=steps,
            minutes=minutes,
            recipe=recipe,
            init=init,
            cache=cache,
            device=device,
            progress=progress,
        )
    _ran(out, state)
    if ship_to is not None:
        from semlink.train.perceptual_restorer import ship_perceptual

        manifest = ship_perceptual(out, ship_to, bsds)
        console.print(f"shipped: {manifest}")


@train_app.command("latent-restorer")
def train_latent_restorer_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoint, cache, loss.png).")] = Path(
        "out/train/restorer"
    ),
    steps: Steps = 20000,
    minutes: Minutes = None,
    limit: Limit = None,
    init: Annotated[
        Path | None, typer.Option(help="Start a new run from this checkpoint's weights.")
    ] = None,
) -> None:
    """Research recipe: a restorer in TAEF2's latent space (reference + segment edges ->
    TAEF2 latent, pixel/MS-SSIM/adversarial losses through TAEF2's decoder). Not shipped:
    TAEF2's decoder alone takes ~3 s per 768x512 picture on 2 cores. Its cache of TAEF2
    latents feeds `semlink train latent-codec`."""
    from semlink.config import settings
    from semlink.models.weights import WeightsError
    from semlink.train.restorer import train

    weights = settings().weights_dir
    with _progress() as progress:
        try:
            state = train(
                _bsds(),
                weights / "taef2",
                out,
                steps=steps,
                minutes=minutes,
                limit=limit,
                progress=progress,
                init=init,
            )
        except WeightsError as exc:
            raise _fail(str(exc)) from exc
    _ran(out, state)


@train_app.command("ref-codec")
def train_ref_codec_cmd(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("out/train/ref-codec"),
    steps: Steps = 100000,
    minutes: Minutes = None,
    lam: Annotated[
        float, typer.Option("--lambda", help="compressai lambda (MSE x 255^2 vs bpp).")
    ] = 0.0067,
    limit: Limit = None,
    ship_to: ShipTo = None,
) -> None:
    """Recipe a: slim bmshj2018 hyperprior for the downscaled reference; resumable."""
    from semlink.train.ref_codec import RefCodecRecipe, ship_ref_codec, train

    bsds = _bsds()
    recipe = RefCodecRecipe(lam=lam)
    state = train(
        bsds, out, steps=steps, minutes=minutes, recipe=recipe, limit=limit, report=console.print
    )
    _ran(out, state)
    if ship_to is not None:
        record = ship_ref_codec(out, ship_to, bsds, recipe)
        console.print(f"shipped: {ship_to}")
        console.print(record.read_text())


@train_app.command("latent-codec")
def train_latent_codec_cmd(
    cache: Annotated[
        Path, typer.Option(help="TAEF2 latents cached by `train latent-restorer`.")
    ] = Path("out/train/restorer/cache.pt"),
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("out/train/latent-codec"),
    steps: Steps = 100000,
    minutes: Minutes = None,
    lam: Annotated[
        float, typer.Option("--lambda", help="compressai lambda (pixel MSE x 255^2 vs bpp).")
    ] = 0.0018,
    ship_to: ShipTo = None,
) -> None:
    """Recipe b: scale hyperprior over TAEF2 latents (decoded by TAEF2); resumable."""
    from semlink.config import settings
    from semlink.train.latent_codec import LatentCodecRecipe, ship_latent_codec, train

    if not cache.exists():
        raise _fail(f"{cache} not found: `semlink train latent-restorer --steps 0` builds it")
    recipe = LatentCodecRecipe(lam=lam)
    taef2_dir = settings().weights_dir / "taef2"
    state = train(
        cache, taef2_dir, out, steps=steps, minutes=minutes, recipe=recipe, report=console.print
    )
    _ran(out, state)
    if ship_to is not None:
        record = ship_latent_codec(out, ship_to, _bsds(), taef2_dir, recipe)
        console.print(f"shipped: {ship_to}")
        console.print(record.read_text())


@train_app.command("size-model")
def train_size_model_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (samples-vvcN.json).")] = Path(
        "out/train/size-model"
    ),
    limit: Limit = None,
) -> None:
    """lite's VVC size model: real encodes of BSDS500 train + test, least squares; prints
    the coefficients for semlink.streams.reference.sizemodel.COEFFICIENTS."""
    from semlink.streams.reference.sizemodel import COEFFICIENTS
    from semlink.train.size_model import collect, fit

    with _progress() as progress:
        samples = collect(_bsds(), out, limit=limit, progress=progress)
    coefficients, error = fit(samples)
    console.print(f"{len(samples)} encodes, cross-validated error {error:.1%} (sd of log size)")
    console.print(f"COEFFICIENTS = {coefficients}")
    if coefficients != COEFFICIENTS:
        console.print(f"(the package has {COEFFICIENTS})")


def register(app: typer.Typer) -> None:
    """Add the ``train`` group to APP."""
    app.add_typer(train_app, name="train")
