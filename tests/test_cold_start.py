"""The command line starts without torch, numpy or the models (issue 13.6).

No timing here (bench/bench_cold_start.py prints it): what is checked is that the modules
behind ``semlink --help`` and ``semlink info`` leave the heavy libraries unimported.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "numpy", "PIL", "grpc", "semlink.codec", "compressai", "transformers")


def imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


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
