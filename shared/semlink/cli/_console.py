"""The console every command prints to, without typer: ``semlink info`` answers from the
console script before typer is imported (``semlink.cli.info.answer``)."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)


def print_error(message: str) -> None:
    """``error: MESSAGE`` in red, the message as written (no markup), wrapped by the terminal
    rather than cut into lines by rich."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def print_warning(message: str) -> None:
    """``warning: MESSAGE`` in yellow, like :func:`print_error`."""
    from rich.markup import escape

    console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)
