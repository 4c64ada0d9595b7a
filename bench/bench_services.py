"""Service benchmarks. Ratios against a baseline measured in the same run (machines are noisy).

1. gRPC round trip vs the in-process library call, for Encode and for Decode
   (goal: <= 1.05; the RPC adds serialization, a localhost hop and, for Decode, the
   PNG the response carries).
2. Encoder throughput with 1, 4 and 16 concurrent clients (images/s, and the ratio to
   one client) on a server with ``--workers`` workers.

Run: ``.venv/bin/python bench/bench_services.py [--reps N] [--workers W]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from semlink import decode, encode
from semlink.serving.client import SemlinkClient, channel, png_bytes, wait_until_serving
from semlink.v1 import decoder_pb2
from services.decoder import server as decoder_server
from services.encoder import server as encoder_server
from tests.servers import ServiceThread, config

BUDGET = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    image = skimage.data.chelsea()
    image_png = png_bytes(image)
    packet = encode(image, max_bytes=BUDGET).data

    enc, dec = (
        ServiceThread(
            name, config(workers=args.workers, max_waiting=64), module.add_servicers, module.load
        ).start()
        for name, module in (("encoder", encoder_server), ("decoder", decoder_server))
    )
    try:
        client = SemlinkClient(channel(enc.address), channel(dec.address))
        wait_until_serving(client.encoder)  # type: ignore[arg-type]
        wait_until_serving(client.decoder)  # type: ignore[arg-type]
        client.encode(image_png, max_bytes=BUDGET)  # warm both paths
        client.decode(packet)

        # Interleave library and RPC runs so drift hits both alike.
        raw, png = decoder_pb2.IMAGE_FORMAT_RAW_RGB, decoder_pb2.IMAGE_FORMAT_PNG
        lib_enc, rpc_enc, lib_dec, rpc_dec, lib_png, rpc_raw = [], [], [], [], [], []
        for _ in range(args.reps):
            lib_enc.append(median_seconds(lambda: encode(image, max_bytes=BUDGET), 1))
            rpc_enc.append(median_seconds(lambda: client.encode(image_png, max_bytes=BUDGET), 1))
            lib_dec.append(median_seconds(lambda: decode(packet), 5))
            rpc_raw.append(median_seconds(lambda: client.decode(packet, image_format=raw), 5))
            lib_png.append(
                median_seconds(lambda: decoder_server.image_bytes(decode(packet).image, png), 5)
            )
            rpc_dec.append(median_seconds(lambda: client.decode(packet), 5))
        le, re_, ld, rd, lp, rr = (
            statistics.median(x) for x in (lib_enc, rpc_enc, lib_dec, rpc_dec, lib_png, rpc_raw)
        )
        print(f"encode: library {le * 1000:.1f} ms, gRPC {re_ * 1000:.1f} ms, ratio {re_ / le:.3f}")
        for label, lib, rpc in (("raw RGB out: library", ld, rr), ("PNG out: library+PNG", lp, rd)):
            print(
                f"decode, {label} {lib * 1000:.1f} ms, "
                f"gRPC {rpc * 1000:.1f} ms, ratio {rpc / lib:.3f}"
            )

        baseline = None
        for clients in (1, 4, 16):
            n = max(4, clients) * 2
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda _: client.encode(image_png, max_bytes=BUDGET), range(n)))
            rate = n / (time.perf_counter() - start)
            baseline = baseline or rate
            print(
                f"encoder throughput, {clients:2d} clients: {rate:.2f} images/s "
                f"({rate / baseline:.2f}x one client; {args.workers} workers)"
            )
    finally:
        enc.stop()
        dec.stop()


if __name__ == "__main__":
    main()
