"""What the encoder spends on a call after its deadline (issue 32.1).

Starts `semlink serve encoder` in its own process, sends a real SIDE x SIDE upload (a
black PNG: 8192 makes the issue's 64-megapixel case) with a DEADLINE-second deadline,
then prints, every 0.5 s for 6 s after DEADLINE_EXCEEDED, the CPU-seconds the server
(and its children) spent since, its child processes and its resident set. Before the
call's scope reached the work this printed 5.8 CPU-s in the first 6 s; now 0.07-0.14 at most.

Run: ``.venv/bin/python bench/bench_deadline.py [SIDE] [DEADLINE]``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semlink.demo import free_port
from semlink.serving.client import png_bytes, wait_until_serving
from semlink.v1 import encoder_pb2, encoder_pb2_grpc

SERVE = [sys.executable, "-m", "services.cli", "serve", "encoder"]


def cpu_seconds(process: psutil.Process) -> tuple[float, list[str]]:
    """CPU seconds of ``process`` and its children (running or reaped), and the names of
    those running (tests/test_bounded.py measures with it too)."""
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    children = process.children(recursive=True)
    for child in children:
        total += sum(child.cpu_times()[:2])
    return total, [child.name() for child in children]


def main() -> None:
    side = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    deadline = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    port = free_port()
    server = subprocess.Popen(
        [*SERVE, "--port", str(port), "--metrics-port", "-1"],
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        chan = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
        )
        wait_until_serving(chan, timeout=120)
        upload = png_bytes(np.zeros((side, side, 3), np.uint8))
        stub = encoder_pb2_grpc.EncoderServiceStub(chan)
        process = psutil.Process(server.pid)
        start = time.monotonic()
        try:
            stub.Encode(encoder_pb2.EncodeRequest(image=upload, target_bpp=0.03), timeout=deadline)
            print("the call ended before its deadline: try a shorter one")
        except grpc.RpcError as exc:
            print(f"{exc.code().name} after {time.monotonic() - start:.2f} s")
        ended = time.monotonic()
        before, _ = cpu_seconds(process)
        for _ in range(12):
            time.sleep(0.5)
            spent, children = cpu_seconds(process)
            rss = process.memory_info().rss >> 20
            print(
                f"t+{time.monotonic() - ended:4.1f} s  cpu {spent - before:5.2f} s  "
                f"children {children}  rss {rss} MiB"
            )
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
