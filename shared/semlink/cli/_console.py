"""The console every command prints to, without typer: ``semlink info`` answers from the
console script before typer is imported (``semlink.cli.info.answer``)."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)
