"""Soak (issue 13.4): 16 concurrent clients, Encode -> Decode, for --minutes (default 10).

The encoder and decoder run as separate processes (``semlink serve``, default workers and
queue), each client loops: Encode a photo (PNG) within a byte budget, Decode the packet.
RESOURCE_EXHAUSTED is the services' deliberate back-pressure (their queues are bounded): the
client waits a moment and sends the call again; every other error is counted as an error.
Printed: calls, errors by status, back-pressure replies, Encode -> Decode latency p50/p99
(successful round trips), throughput, and each service's RSS after warm-up and at the end
(growth; goal < 10%).

    .venv/bin/python bench/bench_soak.py [--minutes 10] [--clients 16] [--warmup 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procs import ServiceProcess
from semlink.serving.client import SemlinkClient, channel, png_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=60.0, help="Seconds before RSS is read.")
    parser.add_argument("--budget", type=int, default=400, help="Encode max_bytes.")
    parser.add_argument("--deadline", type=float, default=120.0, help="Per-call deadline, s.")
    args = parser.parse_args()
    import skimage.data

    image = png_bytes(np.ascontiguousarray(skimage.data.chelsea()[::3, ::3]))  # 151 x 100
    logs = Path(tempfile.mkdtemp(prefix="semlink-soak-"))
    encoder = ServiceProcess("encoder", logs).start()
    decoder = ServiceProcess("decoder", logs).start()
    try:
        print(f"services up in {encoder.wait_serving():.1f} s / {decoder.wait_serving():.1f} s")
        run(args, image, encoder, decoder)
    finally:
        encoder.stop()
        decoder.stop()
    print(f"service logs: {logs}")


def run(
    args: argparse.Namespace, image: bytes, encoder: ServiceProcess, decoder: ServiceProcess
) -> None:
    lock = threading.Lock()
    errors: Counter[str] = Counter()
    backpressure = Counter[str]()
    latencies: list[tuple[float, float]] = []  # (finished at, seconds)
    calls = Counter[str]()
    start = time.monotonic()
    end = start + 60 * args.minutes
    rss: dict[str, float] = {}

    def client(i: int) -> None:
        with channel(encoder.address) as enc, channel(decoder.address) as dec:
            stub = SemlinkClient(encoder=enc, decoder=dec)
            while time.monotonic() < end:
                t0 = time.monotonic()
                try:
                    packet = stub.encode(image, max_bytes=args.budget, timeout=args.deadline)
                    with lock:
                        calls["Encode"] += 1
                    stub.decode(packet.packet, timeout=args.deadline)
                    with lock:
                        calls["Decode"] += 1
                        latencies.append((time.monotonic(), time.monotonic() - t0))
                except grpc.RpcError as exc:
                    code = exc.code()
                    with lock:
                        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                            backpressure[code.name] += 1
                        else:
                            errors[f"{code.name}: {exc.details()}"[:160]] += 1
                    time.sleep(0.2 + 0.1 * (i % 4))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    warm = min(args.warmup, 30 * args.minutes)
    time.sleep(warm)
    rss["encoder"], rss["decoder"] = encoder.rss_mib(), decoder.rss_mib()
    while time.monotonic() < end:
        time.sleep(min(30.0, max(0.0, end - time.monotonic())))
        print(
            f"  {time.monotonic() - start:.0f} s: {len(latencies)} round trips, "
            f"{sum(errors.values())} errors, {sum(backpressure.values())} back-pressure, "
            f"RSS encoder {encoder.rss_mib():.0f} MiB decoder {decoder.rss_mib():.0f} MiB",
            flush=True,
        )
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    after = {"encoder": encoder.rss_mib(), "decoder": decoder.rss_mib()}
    seconds = np.asarray([s for _, s in latencies]) if latencies else np.zeros(1)
    print(
        f"{args.clients} clients for {elapsed:.0f} s: {calls['Encode']} Encode, "
        f"{calls['Decode']} Decode OK ({len(latencies) / elapsed:.2f} round trips/s)"
    )
    print(f"errors (other than back-pressure): {sum(errors.values())}")
    for what, n in errors.most_common(10):
        print(f"  {n} x {what}")
    print(f"RESOURCE_EXHAUSTED back-pressure replies: {sum(backpressure.values())}")
    print(
        f"Encode -> Decode latency: p50 {np.percentile(seconds, 50):.2f} s, "
        f"p99 {np.percentile(seconds, 99):.2f} s, max {seconds.max():.2f} s"
    )
    for name in ("encoder", "decoder"):
        growth = 100 * (after[name] - rss[name]) / rss[name]
        print(
            f"{name} RSS after {warm:.0f} s warm-up {rss[name]:.0f} MiB, at the end "
            f"{after[name]:.0f} MiB ({growth:+.1f}%)"
        )


if __name__ == "__main__":
    main()
