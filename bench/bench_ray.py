"""Ray Serve bench: decoder throughput with 1 and 2 replicas, and the Ray path's latency.

1. Throughput (decodes/s) of the decoder application with 1, then 2 replicas, under
   ``--clients`` concurrent clients for ``--calls`` calls; the ratio 2 : 1.
2. Added latency of the Ray path: median single-call Decode through the Ray gateway minus
   the median through a plain decoder server (same process settings, one call at a time).

Run: ``.venv/bin/python bench/bench_ray.py [--calls N] [--clients C] [--replica-cpus X]``.
``SEMLINK_LITE_RESTORER=false`` makes decodes cheap (then the gateway's cost dominates).
On a 2-core machine two replicas share the same cores: the ratio shows what Ray's
placement buys there, not what two machines would.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semlink import encode
from semlink.serving.client import SemlinkClient, channel, wait_until_serving
from services.rayserve.parts import service_parts
from tests.servers import ServiceThread, config


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(client: SemlinkClient, packet: bytes, calls: int, clients: int) -> float:
    client.decode(packet, timeout=300)  # warm every path once
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client.decode(packet, timeout=300), range(calls)))
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--reps", type=int, default=15, help="Single calls for the latency.")
    parser.add_argument("--replica-cpus", type=float, default=1.0)
    args = parser.parse_args()

    import ray
    from ray import serve
    from ray.serve.config import ProxyLocation

    from services.rayserve.app import build_app

    packet = encode(skimage.data.chelsea(), max_bytes=400).data

    add_servicers, load = service_parts("decoder")
    plain = ServiceThread("decoder", config(metrics_port=None), add_servicers, load).start()
    wait_until_serving(channel(plain.address), timeout=300)
    plain_client = SemlinkClient(decoder=channel(plain.address))
    plain_client.decode(packet, timeout=300)
    plain_latency = median_seconds(lambda: plain_client.decode(packet, timeout=300), args.reps)
    plain.stop()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(proxy_location=ProxyLocation.Disabled)
    rates: dict[int, float] = {}
    ray_latency = 0.0
    for replicas in (1, 2):
        app = build_app(
            {
                "service": "decoder",
                "replicas": replicas,
                "num_cpus": args.replica_cpus if replicas == 1 else args.replica_cpus / 2,
                "workers": 1,
                "server": {"host": "127.0.0.1", "port": 0, "metrics_port": None},
            }
        )
        gateway = serve.run(app, name="decoder", route_prefix=None)
        port, _ = gateway.address.remote().result(timeout_s=120)
        client = SemlinkClient(decoder=channel(f"127.0.0.1:{port}"))
        wait_until_serving(client.decoder, timeout=300)  # type: ignore[arg-type]
        rates[replicas] = throughput(client, packet, args.calls, args.clients)
        if replicas == 1:
            ray_latency = median_seconds(partial(client.decode, packet, timeout=300), args.reps)
        serve.delete("decoder")
    serve.shutdown()
    ray.shutdown()

    print(f"decoder throughput, {args.clients} clients, {args.calls} calls:")
    for replicas, rate in rates.items():
        print(f"  {replicas} replica(s): {rate:.2f} decodes/s")
    print(f"  ratio 2:1 = {rates[2] / rates[1]:.2f}")
    added = 1000 * (ray_latency - plain_latency)
    print(
        f"single-call Decode latency: plain server {1000 * plain_latency:.1f} ms, "
        f"Ray path {1000 * ray_latency:.1f} ms, added {added:+.1f} ms"
    )


if __name__ == "__main__":
    main()
