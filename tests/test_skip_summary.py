"""`make test` without Prometheus says at its end which checks did not run and why
(tests/conftest.py), and fails only where SEMLINK_REQUIRE_PROMETHEUS is set (.ci/run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS_PROMETHEUS = ["tests/test_alerts.py", "tests/test_prometheus.py"]


def run_without_prometheus(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest on the Prometheus tests with a PATH that holds no prometheus or promtool."""
    environ = {k: v for k, v in os.environ.items() if k != "SEMLINK_REQUIRE_PROMETHEUS"}
    environ.update(PATH=str(tmp_path), **env)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *NEEDS_PROMETHEUS]
    return subprocess.run(args, cwd=REPO, env=environ, capture_output=True, text=True)


@pytest.mark.slow
def test_skips_for_want_of_prometheus_are_summed_up_at_the_end(tmp_path: Path) -> None:
    out = run_without_prometheus(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    section = out.stdout[out.stdout.index("short test summary info") :]
    assert "5 SKIPPED because no prometheus binary" in section, out.stdout
    assert "tests/test_alerts.py: 1, tests/test_prometheus.py: 4" in section
    assert "sudo apt-get install --no-install-recommends prometheus" in section
    assert "this run fails" not in section

    required = run_without_prometheus(tmp_path, SEMLINK_REQUIRE_PROMETHEUS="1")
    assert required.returncode == pytest.ExitCode.TESTS_FAILED, required.stdout
    assert "SEMLINK_REQUIRE_PROMETHEUS is set: this run fails." in required.stdout
