"""The generated protobuf code is current, buf lint is clean, and the CLI works end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from semlink.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_generated_code_is_current(tmp_path: Path) -> None:
    from grpc_tools import protoc

    protos = sorted((REPO / "proto/semlink/v1").glob("*.proto"))
    services = [p for p in protos if "service " in p.read_text()]
    messages = [f"-I{REPO / 'proto'}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}"]
    assert protoc.main(["protoc", *messages, *map(str, protos)]) == 0
    grpc_args = [f"-I{REPO / 'proto'}", f"--grpc_python_out={tmp_path}"]
    assert protoc.main(["protoc", *grpc_args, *map(str, services)]) == 0
    fresh = sorted(p.name for p in (tmp_path / "semlink/v1").iterdir())
    committed = sorted(p.name for p in (REPO / "shared/semlink/v1").glob("*_pb2*"))
    assert fresh == committed
    for name in fresh:
        new = (tmp_path / "semlink/v1" / name).read_text()
        old = (REPO / "shared/semlink/v1" / name).read_text()
        assert new == old, f"{name} is stale: run `make proto`"


def test_buf_lint_is_clean() -> None:
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        pytest.skip("buf (PyPI buf-bin) is not installed")
    result = subprocess.run([buf, "lint"], cwd=REPO / "proto", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_encode_info_decode(tmp_path: Path, chelsea: np.ndarray) -> None:
    source = tmp_path / "cat.png"
    Image.fromarray(chelsea).save(source)
    packet = tmp_path / "cat.slk"
    result = runner.invoke(
        app, ["encode", str(source), "-o", str(packet), "--max-bytes", "500", "--caption", "a cat"]
    )
    assert result.exit_code == 0, result.output
    assert packet.stat().st_size <= 500
    result = runner.invoke(app, ["info", str(packet)])
    assert result.exit_code == 0 and "reference" in result.output and "caption" in result.output
    out = tmp_path / "cat-decoded.png"
    result = runner.invoke(app, ["decode", str(packet), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "caption: a cat" in result.output
    assert np.asarray(Image.open(out)).shape == chelsea.shape


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.slk"
    bad.write_bytes(b"\xff\xff\xff")
    result = runner.invoke(app, ["decode", str(bad), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "not a semlink packet" in result.output
    result = runner.invoke(app, ["encode", str(bad), "-o", str(tmp_path / "x.slk")])
    assert result.exit_code == 2 and "cannot read image" in result.output
    result = runner.invoke(app, ["info", str(tmp_path / "missing.slk")])
    assert result.exit_code == 2 and "no such packet" in result.output


def test_eval_writes_csv_plot_and_gallery(
    tmp_path: Path, chelsea: np.ndarray, astronaut: np.ndarray
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(chelsea).save(images / "chelsea.png")
    Image.fromarray(astronaut[::2, ::2]).save(images / "astronaut.png")
    out = tmp_path / "report"
    args = ["eval", str(images), "--bpp", "0.05", "-o", str(out), "--workers", "1"]
    result = runner.invoke(app, [*args, "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    for name in ("results.csv", "summary.csv", "rd.png", "index.html"):
        assert (out / name).stat().st_size > 0
    import pandas as pd

    rows = pd.read_csv(out / "results.csv")
    assert set(rows["method"]) >= {"lite", "best_baseline", "hevc", "avif", "webp"}
    for image, group in rows.groupby("image"):
        size = chelsea.shape[:2] if image == "chelsea" else (256, 256)
        assert (group["bytes"] <= int(0.05 * size[0] * size[1] / 8)).all()
