"""The command line starts without torch, numpy or the models (issue 13.6).

No timing here (bench/bench_cold_start.py prints it): what is checked is that the modules
behind ``semlink --help`` and ``semlink info`` leave the heavy libraries unimported, that the
console script answers a plain ``semlink info PACKET`` without typer (whose pydantic adapters
cost more than the command), and that its answers are the typer command's, byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "numpy", "PIL", "grpc", "semlink.codec", "compressai", "transformers")
PARSING = ("typer", "click", "pydantic")
REPO = Path(__file__).resolve().parents[1]
PACKET = Path(__file__).parent / "expected" / "lite-chelsea-600.slk"


def imported_after(code: str, modules: tuple[str, ...] = HEAVY) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()  # the last line: what the code printed comes first


def run_cli(entry: str, args: list[str], cwd: Path) -> tuple[int, str]:
    """(exit status, stdout + stderr) of ``semlink ARGS`` through ``entry``: the console
    script ("script") or the typer app alone ("typer")."""
    call = (
        "from services.script import main; main()"
        if entry == "script"
        else "from services.cli import app; app(prog_name='semlink')"
    )
    code = f"import sys\nsys.argv = ['semlink', *{args!r}]\n{call}"
    env = {**os.environ, "COLUMNS": "120", "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.endswith("_COMPLETE")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env
    )
    return done.returncode, done.stdout + done.stderr


def test_the_command_line_imports_nothing_heavy() -> None:
    assert imported_after("import services.cli") == []


def test_info_reads_a_packet_without_numpy_or_torch() -> None:
    from pathlib import Path

    packet = Path(__file__).parent / "expected" / "lite-chelsea-600.slk"
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom services.cli import app\n"
        f"result = CliRunner().invoke(app, ['info', {str(packet)!r}])\n"
        "assert result.exit_code == 0, result.output\nassert 'reference' in result.output"
    )
    assert imported_after(code) == []


def test_the_library_names_are_still_there() -> None:
    import semlink

    assert callable(semlink.encode) and callable(semlink.decode)
    assert semlink.ObjectHint.__name__ == "ObjectHint"


def test_the_console_script_answers_info_without_typer_or_pydantic() -> None:
    code = (
        f"sys.argv = ['semlink', 'info', {str(PACKET)!r}]\nfrom services.script import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code"
    )
    assert imported_after(f"import sys\n{code}", HEAVY + PARSING) == []


@pytest.mark.parametrize(
    "args",
    [
        ["info", "packet.slk"],  # answered without typer
        ["info", "missing.slk"],  # error: no such packet file, exit 2
        ["info", "garbage.slk"],  # error: not a semlink packet, exit 2
        ["info", "folder"],  # unexpected (a directory): typer runs it and reports it
        ["info"],  # usage error: typer
        ["info", "--help"],
        ["info", "packet.slk", "extra.slk"],
        ["--help"],
    ],
)
def test_the_console_script_answers_as_the_typer_command_does(
    args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "packet.slk").write_bytes(PACKET.read_bytes())
    (tmp_path / "garbage.slk").write_bytes(b"\x08\x01 not a packet")
    (tmp_path / "folder").mkdir()
    status, output = run_cli("script", args, tmp_path)
    assert (status, output) == run_cli("typer", args, tmp_path)
    if args == ["info", "packet.slk"]:
        size = PACKET.stat().st_size
        assert status == 0 and "reference" in output and f"packet.slk: {size} bytes" in output
    if args[-1] in ("missing.slk", "garbage.slk"):
        assert status == 2 and "error:" in output
