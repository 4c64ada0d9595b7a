"""Cold start of the command line (issue 13.6): ``semlink --help`` and ``semlink info PACKET``.

Runs each command as a fresh process several times and prints the median and worst wall
time and the CPU time (user + system) per run. The goal is under 0.5 s wall on 2 cores: the
command line imports torch, numpy and the models only inside the commands that need them.

    .venv/bin/python bench/bench_cold_start.py [--runs 7] [--packet PACKET]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def semlink_exe() -> str:
    beside = Path(sys.executable).with_name("semlink")
    return str(beside) if beside.exists() else (shutil.which("semlink") or "semlink")


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--packet", type=Path, default=ROOT / "tests" / "expected" / "lite-chelsea-600.slk"
    )
    args = parser.parse_args()
    exe = semlink_exe()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {args.runs} runs each")
    for name, command in (
        ("semlink --help", [exe, "--help"]),
        (f"semlink info {args.packet.name}", [exe, "info", str(args.packet)]),
        ("python -c pass (interpreter alone)", [sys.executable, "-c", "pass"]),
    ):
        run(command)  # warm the page cache: a cold start, not a cold disk
        walls, cpus = zip(*(run(command) for _ in range(args.runs)), strict=True)
        print(
            f"{name:40s} wall median {statistics.median(walls):.3f} s, max {max(walls):.3f} s; "
            f"CPU median {statistics.median(cpus):.3f} s"
        )


if __name__ == "__main__":
    main()
