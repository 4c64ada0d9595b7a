"""Timestamped progress lines and commands run with their output logged."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "out" / "compose-test"
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    capture: bool = False,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``log`` its output goes to that file (the tail is shown on failure)."""
    full_env = {**os.environ, **(env or {})}
    if log is not None:
        with log.open("w") as f:
            done = subprocess.run(
                list(cmd),
                stdout=f,
                stderr=subprocess.STDOUT,
                env=full_env,
                timeout=timeout,
                text=True,
                check=False,
            )
        if check and done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise SystemExit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{tail}\n(log: {log})")
        return done
    done = subprocess.run(
        list(cmd), capture_output=capture, env=full_env, timeout=timeout, text=True, check=False
    )
    if check and done.returncode != 0:
        detail = (done.stderr or "") if capture else ""
        raise SystemExit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{detail}")
    return done
