"""The decoding worker: a child process that reads length-prefixed packets on stdin and answers
outcome, wall and CPU seconds, and message; ``Worker`` is the parent's handle on it.

Run as ``python -m bench.fuzz.worker`` (``Worker`` starts it so)."""

from __future__ import annotations

import os
import resource
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

from .seeds import tiny_resolver

ROOT = Path(__file__).resolve().parents[2]


def _cpu_seconds() -> float:
    """CPU seconds of this process's threads and of the children it has waited for (the codec
    programs a decode runs)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def serve() -> None:
    """Read length-prefixed packets on stdin; answer outcome, seconds and message."""
    from semlink.codec import Codecs
    from semlink.serving.errors import status_for

    codecs = Codecs(tiny_resolver())
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")
    stdout.flush()
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return
        data = stdin.read(struct.unpack("<I", head)[0])
        start, cpu = time.perf_counter(), _cpu_seconds()
        try:
            codecs.decode(data, restorer=False, steps=1)
            outcome, message = "OK", ""
        except Exception as exc:
            code = status_for(exc)
            outcome = code.name if code is not None else "INTERNAL"
            message = f"{type(exc).__name__}: {exc}"[:300]
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        reply = f"{outcome}\t{seconds:.6f}\t{cpu:.6f}\t{message}".encode()
        stdout.write(struct.pack("<I", len(reply)) + reply)
        stdout.flush()


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fuzz.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            # ROOT first, then the caller's path (a run pinned to another checkout keeps it).
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
                ),
            },
        )
        assert self._read(1, timeout=1800) == b"R", "fuzz worker did not start"

    def _read(self, n: int, timeout: float) -> bytes | None:
        assert self.proc.stdout is not None
        out = b""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while len(out) < n:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(out))
            if not chunk:
                return out
            out += chunk
        return out

    def cpu(self) -> float:
        """CPU seconds the worker process has used (its threads; not its running children)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def decode(
        self, data: bytes, hang: float, hang_wall: float = 1800.0
    ) -> tuple[str, float, float, str]:
        """(outcome, wall seconds, CPU seconds, message) of one packet. A hang is a packet
        that has used ``hang`` CPU seconds, or ``hang_wall`` wall seconds, without an answer:
        on a busy machine wall time alone says more about the machine than about the
        decoder."""
        assert self.proc.stdin is not None
        start, cpu = time.perf_counter(), self.cpu()
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "CRASH", 0.0, 0.0, f"worker exited with {self.proc.wait()}"
        while (head := self._read(4, min(hang, 5.0))) is None:
            used, waited = self.cpu() - cpu, time.perf_counter() - start
            if used >= hang or waited >= hang_wall:
                return (
                    "HANG",
                    waited,
                    used,
                    (
                        f"no answer after {used:.1f} CPU s, {waited:.0f} s wall "
                        f"(limits {hang} CPU s, {hang_wall} s wall)"
                    ),
                )
        if len(head) < 4:
            wall = time.perf_counter() - start
            return "CRASH", wall, 0.0, f"worker exited with {self.proc.wait()}"
        body = self._read(struct.unpack("<I", head)[0], hang_wall) or b""
        outcome, seconds, cpu_text, message = body.decode(errors="replace").split("\t", 3)
        return outcome, float(seconds), float(cpu_text), message

    def warm(self, seeds: list[bytes], hang: float, hang_wall: float) -> list[float]:
        """Decode each seed once (models load, first calls): wall seconds each."""
        return [self.decode(s, hang, hang_wall)[1] for s in seeds]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    serve()
