"""Services as real processes for the load and fault benches: start on a free port, wait for
SERVING, read RSS, SIGKILL, SIGTERM, restart on the same port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """``semlink serve NAME`` on 127.0.0.1:port (metrics off), its log in ``log_dir``."""

    def __init__(self, name: str, log_dir: Path, port: int | None = None, *extra: str) -> None:
        self.name, self.log_dir, self.extra = name, log_dir, extra
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_dir / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", f"services.{self.name}"),
                *("--port", str(self.port), "--metrics-port", "-1", *self.extra),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        return self

    def wait_serving(self, timeout: float = 600.0) -> float:
        """Seconds until health says SERVING."""
        from semlink.serving.client import channel, wait_until_serving

        start = time.monotonic()
        with channel(self.address) as ch:
            wait_until_serving(ch, timeout)
        return time.monotonic() - start

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM: the service drains in-flight calls (``--grace``) and exits."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
