"""The codec commands: ``encode`` (image -> packet), ``decode`` (packet -> image) and
``info`` (a packet's header and layers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semlink.cli._common import Tiny, _fail, _load_image, _models, console

Packet = Annotated[Path, typer.Argument(help="Packet file (.slk).")]
Realism = Annotated[
    float | None,
    typer.Option(
        "--realism",
        help="lite's restorer: 0 (fidelity, MSE/MS-SSIM-optimal) to 1 (most realistic texture).",
    ),
]


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
    tiny: Tiny = False,
    realism: Realism = None,
) -> None:
    """Encode IMAGE into a packet of at most --max-bytes (or --bpp); --realism is written
    into the header for the decoder (default: the shipped restorer's)."""
    from semlink.codec import BudgetError, encode
    from semlink.models.weights import WeightsError
    from semlink.packet import PacketError

    if max_bytes is not None and bpp is not None:
        raise _fail("give --max-bytes or --bpp, not both")
    if max_bytes is None and bpp is None:
        bpp = 0.03
    pixels = _load_image(image)
    try:
        result = encode(
            pixels,
            profile,
            max_bytes=max_bytes,
            target_bpp=bpp,
            caption=caption,
            models=_models(tiny),
            realism=realism,
        )
    except (BudgetError, PacketError, ValueError, KeyError, WeightsError) as exc:
        raise _fail(str(exc)) from exc
    output.write_bytes(result.data)
    console.print(
        f"{image} -> {output}: {len(result.data)} bytes, {result.bits_per_pixel:.4f} bpp, "
        f"layers {', '.join(f'{k} {n} B' for k, n in result.layer_bytes())}"
    )


def decode_cmd(
    packet: Packet,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Image to write (PNG, WebP, ...).")
    ],
    tiny: Tiny = False,
    steps: Annotated[int | None, typer.Option(help="Diffusion steps (default: DynDiff).")] = None,
    realism: Realism = None,
) -> None:
    """Decode PACKET into an image; --realism overrides the packet's (default: the packet's)."""
    from semlink.codec import decode
    from semlink.models.weights import WeightsError
    from semlink.packet import PacketError

    try:
        result = decode(packet.read_bytes(), steps=steps, models=_models(tiny), realism=realism)
    except FileNotFoundError as exc:
        raise _fail(f"no such packet file: {packet}") from exc
    except (PacketError, WeightsError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    from PIL import Image

    Image.fromarray(result.image).save(output)
    restored = "" if result.realism is None else f", restorer at realism {result.realism:.2f}"
    console.print(
        f"{packet} -> {output}: {result.image.shape[1]}x{result.image.shape[0]}, layers used: "
        f"{', '.join(result.layers_used) or 'none (flat image)'}{restored}"
    )
    if result.steps:
        console.print(f"diffusion steps: {result.steps}")
    if result.caption:
        console.print(f"caption: {result.caption}")
    for description, _ in result.objects:
        console.print(f"object: {description}")


def info_cmd(packet: Packet) -> None:
    """Show a packet's header, layers, bytes per layer and bits per pixel."""
    from semlink.cli.info import InfoError, show_info

    try:
        show_info(packet)
    except InfoError as exc:
        raise _fail(str(exc)) from exc


def register(app: typer.Typer) -> None:
    """Add ``encode``, ``decode`` and ``info`` to APP as top-level commands."""
    app.command("encode")(encode_cmd)
    app.command("decode")(decode_cmd)
    app.command("info")(info_cmd)
