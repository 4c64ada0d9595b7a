"""``semlink info PACKET`` without typer: a packet's header, layers, bytes per layer and bits
per pixel.

typer builds a pydantic adapter for every parameter it parses, which costs more than reading
the packet. So the console script (``services.script``) calls ``answer`` first: a plain
``semlink info PACKET`` is answered here, with the output, errors and exit status of the typer
command (``semlink.cli.codec.info_cmd``, which calls ``show_info``); anything else, or anything
unexpected, goes to typer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

ERROR_EXIT = 2
"""The exit status of ``typer.Exit`` from ``semlink.cli._common._fail``."""


class InfoError(Exception):
    """A packet ``info`` cannot show: printed as ``error: ...`` with exit status 2."""


def render(packet: Path) -> tuple[str, RenderableType]:
    """(header line, layer table) of the packet file ``packet``; InfoError if it cannot be
    read or parsed."""
    from rich.table import Table

    from semlink.packet import PacketError, bits_per_pixel, parse
    from semlink.profiles import get_profile
    from semlink.streams import LayerKind

    try:
        data = packet.read_bytes()
    except FileNotFoundError as exc:
        raise InfoError(f"no such packet file: {packet}") from exc
    except OSError as exc:  # a folder, no permission
        raise InfoError(f"cannot read {packet}: {exc.strerror or exc}") from exc
    try:
        parsed = parse(data)
    except PacketError as exc:
        raise InfoError(not_a_packet_hint(packet, data, str(exc))) from exc
    try:
        profile_name = get_profile(parsed.profile).name
    except KeyError:
        profile_name = f"unknown ({parsed.profile})"
    header = (
        f"{packet}: {len(data)} bytes, {parsed.width}x{parsed.height}, profile {profile_name}, "
        f"model fingerprint {parsed.model_fingerprint:#010x}, seed {parsed.seed}, "
        f"realism {parsed.realism / 100:.2f}, "
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
    return header, table


IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def not_a_packet_hint(path: Path, data: bytes, message: str) -> str:
    """``message`` (why ``data`` is not a packet), with what to do when the file is an image
    given where a packet was expected."""
    kind = next((name for magic, name in IMAGE_MAGIC.items() if data.startswith(magic)), None)
    if kind is None and data[8:12] == b"WEBP" and data.startswith(b"RIFF"):
        kind = "WebP"
    if kind is None:
        return message
    return (
        f"{path} is a {kind} image, not a semlink packet: "
        f"`semlink encode {path} -o {path.with_suffix('.slk')}` makes one"
    )


def show_info(packet: Path) -> None:
    """Print the packet's header line and layer table (InfoError: nothing printed)."""
    from semlink.cli._console import console

    header, table = render(packet)
    console.print(header)
    console.print(table)


def answer(argv: list[str]) -> int | None:
    """The exit status of ``semlink ARGV`` if it is a plain ``info PACKET`` answered here;
    None (nothing printed) for every other command line, for shell completion, and when
    reading the packet fails unexpectedly (typer then runs it, and reports it its own way)."""
    plain = len(argv) == 2 and argv[0] == "info" and argv[1] != "" and not argv[1].startswith("-")
    completing = any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)
    if not plain or completing:
        return None
    try:
        header, table = render(Path(argv[1]))
    except InfoError as exc:
        from semlink.cli._console import print_error

        print_error(str(exc))
        return ERROR_EXIT
    except Exception:
        return None
    from semlink.cli._console import console

    console.print(header)
    console.print(table)
    return 0
