"""Faults under load (issue 13.4): SIGKILL the decoder and restart it; SIGTERM the encoder.

1. Decoder crash. ``--clients`` clients Decode in a loop through channels with semlink's
   documented retry policy (``semlink.serving.client.RetryPolicy``: gRPC service-config
   retries on UNAVAILABLE, up to 5 attempts, exponential backoff 0.1 s .. 2 s, retry
   throttling) and a per-call deadline (``--deadline``). After ``--warmup`` seconds the
   decoder is SIGKILLed and restarted on the same port. Clients do nothing special: a call
   the channel's retries could not save ends UNAVAILABLE (or DEADLINE_EXCEEDED), the client
   counts it and sends its next call. Printed: errors by status, time from the kill to the
   first successful Decode after it (recovery) and to the restarted decoder's SERVING, and
   how far any call ran past its deadline (goal: nothing waits past its deadline).
2. Encoder drain. ``--clients`` Encode calls are put in flight, the encoder gets SIGTERM:
   in-flight calls must finish OK (drained within ``--grace``), calls sent afterwards get
   UNAVAILABLE, and the process exits 0.

    .venv/bin/python bench/bench_crash.py [--clients 8] [--deadline 60] [--warmup 20]
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
from semlink.serving.client import RetryPolicy, SemlinkClient, channel, png_bytes


def decoder_crash(args: argparse.Namespace, packet: bytes, logs: Path) -> None:
    decoder = ServiceProcess("decoder", logs).start()
    print(f"decoder SERVING after {decoder.wait_serving():.1f} s (cold start)")
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    done: list[tuple[float, float]] = []  # (sent, finished) of each successful call
    overrun = [0.0]  # worst (elapsed - deadline) over all calls
    details: Counter[str] = Counter()  # errors other than UNAVAILABLE, with their message
    odd: list[tuple[float, str]] = []  # (finished, status: message) of those errors
    stop = threading.Event()

    def client() -> None:
        with channel(decoder.address, retry=RetryPolicy()) as ch:
            stub = SemlinkClient(decoder=ch)
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    stub.decode(packet, timeout=args.deadline)
                    outcome = "OK"
                except grpc.RpcError as exc:
                    outcome = exc.code().name
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        with lock:
                            details[f"{outcome}: {exc.details()}"[:200]] += 1
                            odd.append((time.monotonic(), f"{outcome}: {exc.details()}"[:200]))
                elapsed = time.monotonic() - t0
                with lock:
                    outcomes[outcome] += 1
                    overrun[0] = max(overrun[0], elapsed - args.deadline)
                    if outcome == "OK":
                        done.append((t0, time.monotonic()))
                if outcome != "OK":
                    time.sleep(0.1)  # the retry policy already backed off inside the call

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    before = Counter(outcomes)
    killed = time.monotonic()
    decoder.kill()  # returns once the process is gone: later calls reach the new one
    dead = time.monotonic()
    print(f"SIGKILL decoder after {args.warmup:.0f} s of load ({before['OK']} Decode OK so far)")
    decoder.start()
    decoder.wait_serving()
    serving = time.monotonic() - killed

    def new_ok() -> list[float]:  # successful calls sent after the old decoder was gone
        with lock:
            return [end for start, end in done if start > dead]

    while not new_ok() and time.monotonic() - killed < 600:
        time.sleep(0.05)
    recovered = min(new_ok(), default=float("nan")) - killed
    with lock:
        late = sum(1 for start, end in done if start <= dead < end)
    time.sleep(args.after)
    stop.set()
    for t in threads:
        t.join()
    decoder.stop()
    during = outcomes - before
    print(f"restarted decoder SERVING {serving:.1f} s after the kill")
    print(
        f"first Decode OK sent after the kill: {recovered:.1f} s after it (time to recovery); "
        f"{late} call(s) sent before the kill ended OK after it (answered before it, or "
        "retried onto the restarted decoder)"
    )
    print(f"calls after the kill: {dict(during)}")
    errors = {k: v for k, v in during.items() if k != "OK"}
    print(f"errors seen by clients: {sum(errors.values())} {errors}")
    for what, n in details.most_common(5):
        print(f"  {n} x {what}")
    for at, what in odd[:10]:
        print(f"  {at - killed:+.1f} s from the kill: {what}")
    print(f"longest past its deadline ({args.deadline:.0f} s): {max(0.0, overrun[0]):.2f} s")


def encoder_drain(args: argparse.Namespace, image: bytes, logs: Path) -> None:
    encoder = ServiceProcess("encoder", logs, None, "--grace", str(args.grace)).start()
    encoder.wait_serving()
    outcomes: list[tuple[str, float]] = []
    lock = threading.Lock()
    started = threading.Barrier(args.clients + 1)

    def call() -> None:
        with channel(encoder.address) as ch:
            stub = SemlinkClient(encoder=ch)
            started.wait()
            t0 = time.monotonic()
            try:
                stub.encode(image, max_bytes=400, timeout=args.deadline)
                outcome = "OK"
            except grpc.RpcError as exc:
                outcome = exc.code().name
            with lock:
                outcomes.append((outcome, time.monotonic() - t0))

    threads = [threading.Thread(target=call) for _ in range(args.clients)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)  # the calls are in flight (queued or computing)
    sigterm = time.monotonic()
    encoder.terminate()
    time.sleep(0.2)
    late = "not refused"
    try:
        with channel(encoder.address) as ch:
            SemlinkClient(encoder=ch).encode(image, max_bytes=400, timeout=5)
    except grpc.RpcError as exc:
        late = exc.code().name
    for t in threads:
        t.join()
    assert encoder.proc is not None
    code = encoder.proc.wait(args.grace + 60)
    exited = time.monotonic() - sigterm
    print(
        f"SIGTERM encoder with {args.clients} Encode calls in flight: "
        f"{dict(Counter(o for o, _ in outcomes))}, exit code {code} {exited:.1f} s after "
        f"SIGTERM (grace {args.grace:.0f} s); a call sent after SIGTERM: {late}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=60.0, help="Per-call deadline, s.")
    parser.add_argument("--warmup", type=float, default=20.0, help="Load before the kill, s.")
    parser.add_argument("--after", type=float, default=10.0, help="Load after recovery, s.")
    parser.add_argument("--grace", type=float, default=60.0, help="Encoder's drain grace, s.")
    args = parser.parse_args()
    import skimage.data

    from semlink import encode

    small = np.ascontiguousarray(skimage.data.chelsea()[::3, ::3])
    packet = encode(small, max_bytes=400).data
    logs = Path(tempfile.mkdtemp(prefix="semlink-crash-"))
    print(
        f"retry policy: {RetryPolicy()}; per-call deadline {args.deadline:.0f} s; "
        f"{args.clients} clients"
    )
    decoder_crash(args, packet, logs)
    encoder_drain(args, png_bytes(small), logs)
    print(f"service logs: {logs}")


if __name__ == "__main__":
    main()
