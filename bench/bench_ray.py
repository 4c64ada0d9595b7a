"""Ray Serve bench: decoder throughput with 1 and 2 replicas, and the Ray path's latency.

1. Throughput (decodes/s) of the decoder application with 1, then 2 replicas, under
   ``--clients`` concurrent clients for ``--calls`` calls; the ratio 2 : 1.
2. Throughput of 1 replica with Decode batching on (``--batch-size``, ``--batch-wait``)
   against the same replica without; the mean batch size, read from the gateway's /metrics.
3. Added latency of the Ray path: median single-call Decode through the Ray gateway minus
   the median through a plain decoder server (same process settings, one call at a time).
   Ray sets OMP_NUM_THREADS to a replica's whole CPUs (at least 1), so the plain server
   computes with that many torch threads too (``--threads``): on a loaded 2-core machine
   two threads can be much slower than one, which would credit Ray with the difference.

Run: ``.venv/bin/python bench/bench_ray.py [--calls N] [--clients C] [--replica-cpus X]
[--batch-size B] [--batch-wait S]``.
``SEMLINK_LITE_RESTORER=false`` makes decodes cheap (then the gateway's cost dominates).
On a 2-core machine two replicas share the same cores: the ratio shows what Ray's
placement buys there, not what two machines would.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from semlink import encode
from semlink.serving.client import SemlinkClient, channel, wait_until_serving
from services.rayserve.parts import service_parts
from tests.servers import ServiceThread, config


def throughput(client: SemlinkClient, packet: bytes, calls: int, clients: int) -> float:
    client.decode(packet, timeout=300)  # warm every path once
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client.decode(packet, timeout=300), range(calls)))
    return calls / (time.perf_counter() - start)


def mean_batch_size(metrics_port: int) -> float:
    """Mean of the replicas' semlink_decode_batch_size histograms on the gateway's /metrics
    (replicas push every second: wait for a push made after the last call)."""
    from prometheus_client.parser import text_string_to_metric_families

    time.sleep(2.5)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    total = {"semlink_decode_batch_size_sum": 0.0, "semlink_decode_batch_size_count": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in total and "replica" in sample.labels:
                total[sample.name] += sample.value
    return total["semlink_decode_batch_size_sum"] / max(
        1.0, total["semlink_decode_batch_size_count"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--reps", type=int, default=15, help="Single calls for the latency.")
    parser.add_argument("--replica-cpus", type=float, default=1.0)
    parser.add_argument(
        "--threads", type=int, default=None, help="Plain server's torch threads (default: as Ray)."
    )
    parser.add_argument("--batch-size", type=int, default=4, help="max_batch_size when on.")
    parser.add_argument("--batch-wait", type=float, default=0.05, help="batch_wait_timeout_s.")
    args = parser.parse_args()

    import ray
    from ray import serve
    from ray.serve.config import ProxyLocation

    from services.rayserve.app import build_app

    packet = encode(skimage.data.chelsea(), max_bytes=400).data

    import torch

    threads = args.threads or max(1, math.floor(args.replica_cpus))
    torch.set_num_threads(threads)
    add_servicers, load = service_parts("decoder")
    plain = ServiceThread("decoder", config(metrics_port=None), add_servicers, load).start()
    wait_until_serving(channel(plain.address), timeout=300)
    plain_client = SemlinkClient(decoder=channel(plain.address))
    plain_client.decode(packet, timeout=300)
    plain_latency = median_seconds(lambda: plain_client.decode(packet, timeout=300), args.reps)
    plain.stop()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(proxy_location=ProxyLocation.Disabled)
    rates: dict[str, float] = {}
    ray_latency = 0.0
    batch_mean = 0.0
    runs = [("1", 1, 1), ("2", 2, 1), ("1 batching", 1, args.batch_size)]
    for label, replicas, batch in runs:
        app = build_app(
            {
                "service": "decoder",
                "replicas": replicas,
                "num_cpus": args.replica_cpus if replicas == 1 else args.replica_cpus / 2,
                "workers": 1,
                "max_batch_size": batch,
                "batch_wait_timeout_s": args.batch_wait,
                "server": {"host": "127.0.0.1", "port": 0, "metrics_port": 0},
            }
        )
        gateway = serve.run(app, name="decoder", route_prefix=None)
        port, metrics_port = gateway.address.remote().result(timeout_s=120)
        client = SemlinkClient(decoder=channel(f"127.0.0.1:{port}"))
        wait_until_serving(client.decoder, timeout=300)
        rates[label] = throughput(client, packet, args.calls, args.clients)
        if label == "1":
            ray_latency = median_seconds(partial(client.decode, packet, timeout=300), args.reps)
        if batch > 1:
            batch_mean = mean_batch_size(metrics_port)
        serve.delete("decoder")
    serve.shutdown()
    ray.shutdown()

    print(f"decoder throughput, {args.clients} clients, {args.calls} calls:")
    for label in ("1", "2"):
        print(f"  {label} replica(s): {rates[label]:.2f} decodes/s")
    print(f"  ratio 2:1 = {rates['2'] / rates['1']:.2f}")
    print(
        f"  1 replica, batching on (max_batch_size {args.batch_size}, wait "
        f"{1000 * args.batch_wait:.0f} ms): {rates['1 batching']:.2f} decodes/s, mean batch "
        f"{batch_mean:.2f}; on:off = {rates['1 batching'] / rates['1']:.2f}"
    )
    added = 1000 * (ray_latency - plain_latency)
    print(
        f"single-call Decode latency: plain server ({threads} torch thread(s)) "
        f"{1000 * plain_latency:.1f} ms, "
        f"Ray path {1000 * ray_latency:.1f} ms, added {added:+.1f} ms"
    )


if __name__ == "__main__":
    main()
