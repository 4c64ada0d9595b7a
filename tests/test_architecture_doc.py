"""docs/architecture.md stays true: its tables of import levels and of a packet's path are
what ``tools/architecture.py`` reads from the code today, and every step of the path names
code that is there (``--check``; it reads the source with ``ast``, imports nothing of it and
needs no network).

When this fails after a change that moved a step or an import: redraw with
``.venv/bin/python tools/architecture.py`` (the picture and the tables), or fix the step
in its ``PACKET_PATH``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools import architecture

REPO = Path(__file__).resolve().parents[1]


def test_the_architecture_doc_is_what_the_code_draws() -> None:
    done = subprocess.run(
        [sys.executable, "tools/architecture.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (
        f"docs/architecture.md is stale; run .venv/bin/python tools/architecture.py\n"
        f"{done.stdout}{done.stderr}"
    )
    assert "0 import circle(s)" in done.stdout, done.stdout


def test_the_check_fails_on_a_stale_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check compares the doc's tables with what the code draws: levels the code would
    draw otherwise (here, a table of one row) fail it, and nothing is written."""
    before = architecture.DOC.read_text()
    drawn = "| level | packages |\n|---|---|\n| 0 | `semlink.gone` |"
    monkeypatch.setattr(architecture, "layer_table", lambda graph: drawn)
    assert architecture.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert architecture.DOC.read_text() == before


def test_the_check_fails_on_a_step_that_is_gone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A step of the packet's path that names a function no longer there fails --check
    (and names the step) instead of leaving the doc wrong."""
    gone = architecture.Step("semlink.codec.decoder:decode_everything", "renamed")
    monkeypatch.setattr(architecture, "PACKET_PATH", (*architecture.PACKET_PATH, gone))
    assert architecture.main(["--check"]) == 1
    assert "semlink.codec.decoder:decode_everything" in capsys.readouterr().out
