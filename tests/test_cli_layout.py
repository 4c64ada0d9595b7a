"""The command line starts cold and the library never reaches up into services/.

``semlink --help`` builds the whole command tree; it must not import torch (the commands
import their heavy modules when they run). Each check runs in a fresh interpreter so this
test process's own imports do not matter.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import sys
from typer.testing import CliRunner
from {module} import app
for i, args in enumerate({invocations!r}):
    result = CliRunner().invoke(app, args, env={{"COLUMNS": "200"}})
    assert result.exit_code == 0, (args, result.output)
    if i == 0:
        commands = result.output.split("Commands")[-1]
        for name in {names!r}:
            assert name in commands, (name, result.output)
assert "torch" not in sys.modules, "semlink --help imported torch"
print(sorted(m for m in sys.modules if m == "services" or m.startswith("services.")))
"""


def probe(module: str, invocations: list[list[str]], names: list[str]) -> str:
    code = PROBE.format(module=module, invocations=invocations, names=names)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


HELPS = [["--help"], ["weights", "--help"], ["train", "--help"], ["encode", "--help"]]
LIBRARY_COMMANDS = ["encode", "decode", "info", "eval", "demo", "weights", "train"]


def test_library_cli_help_imports_neither_torch_nor_services() -> None:
    assert probe("semlink.cli", HELPS, LIBRARY_COMMANDS).strip() == "[]"


def test_console_script_help_adds_serve_without_torch() -> None:
    invocations = [*HELPS, ["serve", "--help"]]
    probe("services.cli", invocations, [*LIBRARY_COMMANDS, "serve"])


@pytest.mark.parametrize("service", ["encoder", "decoder", "link"])
def test_python_m_service_is_semlink_serve(service: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for option in ("--port", "--metrics-port", "--token-env", "--link", "--realtime"):
        assert option in result.stdout


def test_library_never_imports_services() -> None:
    for path in sorted((REPO / "shared/semlink").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] != "services", f"{path}: imports {module}"
