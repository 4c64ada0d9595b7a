"""The ``semlink`` command line: encode, decode, info, eval, demo."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="semlink: semantic image coding for bandwidth-starved links.", no_args_is_help=True
)
console = Console(width=None if sys.stdout.isatty() else 160)


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


@app.command("encode")
def encode_cmd(
    image: Annotated[Path, typer.Argument(help="Input image (PNG, JPEG, WebP, ...).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Packet file to write (.slk).")],
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", help="Packet size limit in bytes.")
    ] = None,
    bpp: Annotated[
        float | None, typer.Option("--bpp", help="Target bits per pixel (default 0.03).")
    ] = None,
    caption: Annotated[
        str | None, typer.Option("--caption", help="Global caption to carry.")
    ] = None,
    profile: Annotated[str, typer.Option("--profile", help="Profile name.")] = "lite",
    tiny: Annotated[bool, typer.Option("--tiny", help="Tiny random models (demo/test).")] = False,
) -> None:
    """Encode IMAGE into a packet of at most --max-bytes (or --bpp)."""
    _use_tiny_models(tiny)
    from semlink.codec import BudgetError, encode
    from semlink.models.weights import WeightsError
    from semlink.packet import PacketError

    if max_bytes is not None and bpp is not None:
        raise _fail("give --max-bytes or --bpp, not both")
    if max_bytes is None and bpp is None:
        bpp = 0.03
    pixels = _load_image(image)
    try:
        result = encode(pixels, profile, max_bytes=max_bytes, target_bpp=bpp, caption=caption)
    except (BudgetError, PacketError, ValueError, KeyError, WeightsError) as exc:
        raise _fail(str(exc)) from exc
    output.write_bytes(result.data)
    console.print(
        f"{image} -> {output}: {len(result.data)} bytes, {result.bits_per_pixel:.4f} bpp, "
        f"layers {', '.join(f'{k} {n} B' for k, n in result.layer_bytes())}"
    )


@app.command("decode")
def decode_cmd(
    packet: Annotated[Path, typer.Argument(help="Packet file (.slk).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Image to write (PNG, WebP, ...).")
    ],
    tiny: Annotated[bool, typer.Option("--tiny", help="Tiny random models (demo/test).")] = False,
    steps: Annotated[int | None, typer.Option(help="Diffusion steps (default: DynDiff).")] = None,
) -> None:
    """Decode PACKET into an image."""
    _use_tiny_models(tiny)
    from semlink.codec import decode
    from semlink.models.weights import WeightsError
    from semlink.packet import PacketError

    try:
        result = decode(packet.read_bytes(), steps=steps)
    except FileNotFoundError as exc:
        raise _fail(f"no such packet file: {packet}") from exc
    except (PacketError, WeightsError) as exc:
        raise _fail(str(exc)) from exc
    Image.fromarray(result.image).save(output)
    console.print(
        f"{packet} -> {output}: {result.image.shape[1]}x{result.image.shape[0]}, layers used: "
        f"{', '.join(result.layers_used) or 'none (flat image)'}"
    )
    if result.caption:
        console.print(f"caption: {result.caption}")
    for description, _ in result.objects:
        console.print(f"object: {description}")


@app.command("info")
def info_cmd(packet: Annotated[Path, typer.Argument(help="Packet file (.slk).")]) -> None:
    """Show a packet's header, layers, bytes per layer and bits per pixel."""
    from semlink.packet import PacketError, bits_per_pixel, parse
    from semlink.profiles import get_profile
    from semlink.streams import LayerKind

    try:
        data = packet.read_bytes()
        parsed = parse(data)
    except FileNotFoundError as exc:
        raise _fail(f"no such packet file: {packet}") from exc
    except PacketError as exc:
        raise _fail(str(exc)) from exc
    try:
        profile_name = get_profile(parsed.profile).name
    except KeyError:
        profile_name = f"unknown ({parsed.profile})"
    console.print(
        f"{packet}: {len(data)} bytes, {parsed.width}x{parsed.height}, profile {profile_name}, "
        f"model fingerprint {parsed.model_fingerprint:#010x}, seed {parsed.seed}, "
        f"{bits_per_pixel(data):.4f} bpp"
    )
    table = Table("#", "kind", "codec", "payload B", "layer B (framing+CRC)")
    for i, (layer, size) in enumerate(zip(parsed.layers, parsed.layer_bytes(), strict=True)):
        kind = (
            LayerKind(layer.kind).name.lower()
            if layer.kind in LayerKind._value2member_map_
            else str(layer.kind)
        )
        table.add_row(str(i), kind, str(layer.codec), str(len(layer.payload)), str(size))
    console.print(table)


@app.command("eval")
def eval_cmd(
    images: Annotated[Path, typer.Argument(help="Folder of images, e.g. ../shared/data/kodak.")],
    bpp: Annotated[str, typer.Option("--bpp", help="Comma-separated rates.")] = "0.02,0.03,0.05",
    out: Annotated[Path, typer.Option("-o", "--out", help="Report folder.")] = Path("out/eval"),
    workers: Annotated[int, typer.Option("--workers", help="Parallel image workers.")] = 2,
) -> None:
    """Compare lite with classical codecs at equal real bytes; write CSV, RD plot and HTML."""
    import pandas as pd

    from semlink.eval.harness import EvalConfig, list_images, run_eval
    from semlink.eval.report import bytes_to_match, comparison_lines, write_reports

    try:
        rates = tuple(float(r) for r in bpp.split(","))
        n = len(list_images(images))
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    config = EvalConfig(images=images, out=out, rates=rates, workers=workers)
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
    table = Table("bpp target", "method", "real bpp", "PSNR", "MS-SSIM", "HaarPSI", "GMSD", "NIQE")
    for row in summary.itertuples():
        if row.method in ("lite", "best_baseline"):
            table.add_row(
                f"{row.target_bpp}",
                str(row.method),
                f"{row.bpp:.4f}",
                f"{row.psnr:.2f}",
                f"{row.ms_ssim:.4f}",
                f"{row.haarpsi:.4f}",
                f"{row.gmsd:.4f}",
                f"{row.niqe:.3f}",
            )
    console.print(table)
    for line in comparison_lines(pd.read_csv(out / "results.csv")):
        console.print(line)
    for line in bytes_to_match(summary):
        console.print(line)
    console.print(f"reports in {out}/ (results.csv, summary.csv, rd.png, index.html)")


weights_app = typer.Typer(help="Fetch and verify model weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


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


@weights_app.command("list")
def weights_list_cmd() -> None:
    """Every model backend: public name, role, config fields, whether a tiny build exists."""
    from rich.table import Table

    from semlink.models.catalog import BACKENDS

    table = Table("backend", "role", "config", "tiny")
    for backend in BACKENDS.values():
        fields = ", ".join(backend.config.model_fields)
        table.add_row(backend.name, backend.role, fields, "yes" if backend.tiny else "-")
    console.print(table)


@weights_app.command("export-onnx")
def weights_export_onnx_cmd(
    dest: Annotated[Path, typer.Argument(help="Directory for the .onnx files.")],
    tiny: Annotated[bool, typer.Option("--tiny", help="Tiny random models (demo/test).")] = False,
) -> None:
    """Export the learned reference codecs' analysis transforms (the edge's networks) to ONNX.

    Point the encoder's SEMLINK_EDGE_ONNX at DEST to run them in onnxruntime.
    """
    _use_tiny_models(tiny)
    from semlink.models.codecs import reference_codecs
    from semlink.models.onnx_edge import export_analysis
    from semlink.models.weights import WeightsError

    try:
        codecs = reference_codecs()
    except WeightsError as exc:
        raise _fail(str(exc)) from exc
    if not codecs:
        raise _fail("no learned reference codecs: set SEMLINK_REFERENCE_MODELS (or use --tiny)")
    for codec in codecs:
        path = export_analysis(codec, dest / f"{codec.name}.onnx")
        console.print(f"{path}: {path.stat().st_size} bytes")


class ServiceKind(StrEnum):
    encoder = "encoder"
    decoder = "decoder"
    link = "link"


train_app = typer.Typer(help="Train the project's models (CPU or GPU).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _bsds() -> Path:
    from semlink.config import settings

    bsds = settings().weights_dir.parent / "data" / "train" / "bsds500"
    if not bsds.exists():
        raise _fail(f"{bsds} not found: BSDS500 lies beside the weights directory")
    return bsds


Steps = Annotated[int, typer.Option(help="Total steps (a resumed run counts on).")]
Minutes = Annotated[float | None, typer.Option(help="Stop after this long.")]
Limit = Annotated[int | None, typer.Option(help="Use only the first N photos.")]
ShipTo = Annotated[
    Path | None,
    typer.Option("--ship", help="Write the weights, manifest and held-out results here."),
]


@train_app.command("restorer")
def train_restorer_cmd(
    out: Annotated[Path, typer.Option(help="Run directory (checkpoint, cache, loss.png).")] = Path(
        "out/train/restorer"
    ),
    steps: Steps = 20000,
    minutes: Minutes = None,
    limit: Limit = None,
    ship_to: ShipTo = None,
    init: Annotated[
        Path | None, typer.Option(help="Start a new run from this checkpoint's weights.")
    ] = None,
) -> None:
    """Recipe c: latent restorer (reference + segment edges -> TAEF2 latent) with pixel,
    MS-SSIM and adversarial losses on BSDS500; resumable."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from semlink.config import settings
    from semlink.models.weights import WeightsError
    from semlink.train.restorer import ship_restorer, train

    weights = settings().weights_dir
    bsds = _bsds()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

        try:
            state = train(
                bsds,
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
    console.print(f"{out}: step {state.step}, {state.seconds / 60:.1f} min, loss curve loss.png")
    if ship_to is not None:
        note = ""
        if init is not None:
            import torch

            before = torch.load(init, map_location="cpu", weights_only=True)
            note = (
                f"initialised from {init}: {before['step']} steps, "
                f"{before['seconds'] / 60:.0f} min before these"
            )
        manifest = ship_restorer(out, ship_to, bsds, weights / "taef2", note)
        console.print(f"shipped: {manifest}")
        console.print(manifest.read_text())


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
    console.print(f"{out}: step {state.step}, {state.seconds / 60:.1f} min, loss curve loss.png")
    if ship_to is not None:
        record = ship_ref_codec(out, ship_to, bsds, recipe)
        console.print(f"shipped: {ship_to}")
        console.print(record.read_text())


@train_app.command("latent-codec")
def train_latent_codec_cmd(
    cache: Annotated[Path, typer.Option(help="TAEF2 latents cached by `train restorer`.")] = Path(
        "out/train/restorer/cache.pt"
    ),
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
        raise _fail(f"{cache} not found: `semlink train restorer --steps 0` builds it")
    recipe = LatentCodecRecipe(lam=lam)
    taef2_dir = settings().weights_dir / "taef2"
    state = train(
        cache, taef2_dir, out, steps=steps, minutes=minutes, recipe=recipe, report=console.print
    )
    console.print(f"{out}: step {state.step}, {state.seconds / 60:.1f} min, loss curve loss.png")
    if ship_to is not None:
        record = ship_latent_codec(out, ship_to, _bsds(), taef2_dir, recipe)
        console.print(f"shipped: {ship_to}")
        console.print(record.read_text())


@app.command("serve")
def serve_cmd(
    service: Annotated[ServiceKind, typer.Argument(help="Which service to run.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="gRPC port.")] = 50051,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port (-1 = off).")] = 9100,
    workers: Annotated[int, typer.Option(help="Requests computed at once.")] = 2,
    max_waiting: Annotated[
        int, typer.Option(help="Waiting requests before RESOURCE_EXHAUSTED.")
    ] = 8,
    grace: Annotated[float, typer.Option(help="Seconds SIGTERM waits for in-flight calls.")] = 30.0,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (enables TLS).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key.")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="PEM CA: require client certs (mTLS).")
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(help="Name of an environment variable holding a bearer token to require."),
    ] = None,
    link: Annotated[str, typer.Option(help="Link profile (link service).")] = "leo",
    loss: Annotated[
        float | None, typer.Option(help="Override: Bernoulli frame loss (link).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Override: channel rate in bit/s (link).")
    ] = None,
    realtime: Annotated[
        bool, typer.Option(help="Link: hold each reply for the emulated latency.")
    ] = True,
) -> None:
    """Run a gRPC service until SIGTERM (then drain in-flight calls)."""
    import os

    from semlink.serving import ServerConfig

    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        raise _fail(f"environment variable {token_env} is empty or unset")
    config = ServerConfig(
        host=host,
        port=port,
        metrics_port=None if metrics_port < 0 else metrics_port,
        workers=workers,
        max_waiting=max_waiting,
        grace_seconds=grace,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        token=token,
    )
    console.print(f"semlink {service.value} on {host}:{port}, metrics on {metrics_port}")
    if service is ServiceKind.encoder:
        from services.encoder.server import main as encoder_main

        encoder_main(config)
    elif service is ServiceKind.decoder:
        from services.decoder.server import main as decoder_main

        decoder_main(config)
    else:
        from semlink.link import LossModel, get_link_profile
        from services.link.server import main as link_main

        try:
            profile = get_link_profile(link)
        except KeyError as exc:
            raise _fail(str(exc.args[0])) from exc
        profile = profile.with_overrides(
            rate_bps=rate, loss=LossModel.bernoulli(loss) if loss is not None else None
        )
        link_main(config, profile, realtime)


def serve_main(service: str) -> None:
    """Entry point of ``python -m services.<service>``."""
    app(["serve", service, *sys.argv[1:]])


@app.command("demo")
def demo_cmd(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Where reconstructions and logs go.")
    ] = Path("out/demo"),
    bpp: Annotated[float, typer.Option("--bpp", help="Target bits per pixel.")] = 0.03,
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


if __name__ == "__main__":
    app()
