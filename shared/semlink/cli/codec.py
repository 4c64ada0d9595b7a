"""The codec commands: ``encode`` (image -> packet), ``decode`` (packet -> image) and
``info`` (a packet's header and layers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semlink.budget import DEFAULT_BPP
from semlink.cli._common import (
    Tiny,
    _codecs,
    _fail,
    _image_format,
    _load_image,
    _writable,
    console,
    image_extensions,
)
from semlink.cli._console import print_warning
from semlink.cli.info import not_a_packet_hint

PACKET_SUFFIX = ".slk"
"""The extension of a semlink packet file."""

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
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Packet file to write (.slk; not an image name)."),
    ],
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", help="Packet size limit in bytes.")
    ] = None,
    bpp: Annotated[
        float | None,
        typer.Option("--bpp", help=f"Target bits per pixel (default {DEFAULT_BPP})."),
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
    from semlink.budget import Budget
    from semlink.errors import BudgetError, WeightsError
    from semlink.packet import PacketError

    if max_bytes is not None and bpp is not None:
        raise _fail("give --max-bytes or --bpp, not both")
    try:
        budget = Budget.of(max_bytes=max_bytes, target_bpp=bpp)
    except BudgetError as exc:
        raise _fail(str(exc)) from exc
    _writable(output)
    _packet_name(output)
    pixels = _load_image(image)
    try:
        codec = _codecs(tiny)[profile]
        result = codec.encode(pixels, budget, caption=caption, realism=realism)
    except (BudgetError, PacketError, ValueError, KeyError, WeightsError) as exc:
        raise _fail(str(exc)) from exc
    try:
        output.write_bytes(result.data)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from exc
    console.print(
        f"{image} -> {output}: {len(result.data)} bytes, {result.bits_per_pixel:.4f} bpp, "
        f"layers {', '.join(f'{k} {n} B' for k, n in result.layer_bytes())}"
    )


def decode_cmd(
    packet: Packet,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Image to write; its extension picks the format (.png, .webp, ...).",
        ),
    ],
    tiny: Tiny = False,
    steps: Annotated[int | None, typer.Option(help="Diffusion steps (default: DynDiff).")] = None,
    realism: Realism = None,
) -> None:
    """Decode PACKET into an image; --realism overrides the packet's (default: the packet's)."""
    from semlink.errors import WeightsError
    from semlink.packet import PacketError

    _writable(output)
    image_format = _image_format(output)
    try:
        data = packet.read_bytes()
    except FileNotFoundError as exc:
        raise _fail(f"no such packet file: {packet}") from exc
    except OSError as exc:
        raise _fail(f"cannot read {packet}: {exc.strerror or exc}") from exc
    try:
        result = _codecs(tiny).decode(data, steps=steps, realism=realism)
    except PacketError as exc:
        raise _fail(not_a_packet_hint(packet, data, str(exc))) from exc
    except (WeightsError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    from PIL import Image

    try:
        Image.fromarray(result.image).save(output, image_format)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot write {output} as {image_format}: {exc}") from exc
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


def _packet_name(output: Path) -> None:
    """Refuse an image file name for a packet; warn about any other name than .slk.

    A packet written as x.png is opened by every image viewer and refused by all of them,
    and ``encode photo.png -o photo.png`` would replace the photo with its packet: refused,
    before any work. Other names (x.bin, no extension) are the user's choice: a warning."""
    ext = output.suffix.lower()
    if ext == PACKET_SUFFIX:
        return
    if ext in image_extensions():
        raise _fail(
            f"{output} has an image extension ({ext}), but encode writes a semlink packet, "
            f"not an image: name it {output.with_suffix(PACKET_SUFFIX)}"
        )
    print_warning(f"{output}: semlink packets are named *{PACKET_SUFFIX}; writing it anyway")


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
