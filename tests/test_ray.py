"""semlink on Ray Serve: a local Ray head, the decoder as two replicas behind the gateway,
and a batching decoder (one replica, lite's learned restorer) beside it.

A Decode through Ray returns the same picture as an in-process decode; killing one of the
two replicas under load fails no client call beyond its retries; concurrent Decodes are
computed as one batch, each call with its own outcome, and the replica's metrics show on
the gateway's /metrics."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import pytest

from semlink.codec import Codec
from semlink.serving import ServerConfig
from semlink.serving.client import (
    RetryPolicy,
    SemlinkClient,
    channel,
    image_of,
    wait_until_serving,
)

ray = pytest.importorskip("ray", reason="ray[serve] is not installed (see requirements.lock)")

pytestmark = pytest.mark.slow


BATCH = 5
"""Calls the batching decoder gathers into one batch (it waits up to a minute for them)."""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray head with Serve started (no HTTP proxy)."""
    from ray import serve
    from ray.serve.config import ProxyLocation

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            serve.start(proxy_location=ProxyLocation.Disabled)
            yield
        finally:
            serve.shutdown()
            ray.shutdown()


def _deploy(name: str, args: dict[str, Any]) -> tuple[str, int]:
    """Run the decoder application ``name``: (gateway address, its metrics port). Its
    replicas decode with Lanczos (milliseconds) unless ``args`` set their environment: a
    replica builds its codecs from its own settings, as a deployed one does."""
    from ray import serve

    from services.rayserve.app import build_app

    args = {
        "service": "decoder",
        "workers": 1,
        "server": {"host": "127.0.0.1", "port": 0, "metrics_port": 0},
        "replica_env": {"SEMLINK_LITE_RESTORER": "false"},
        **args,
    }
    gateway = serve.run(build_app(args), name=name, route_prefix=None)
    port, metrics_port = gateway.address.remote().result(timeout_s=60)
    address = f"127.0.0.1:{port}"
    wait_until_serving(channel(address), timeout=120)
    return address, metrics_port


@pytest.fixture(scope="module")
def ray_decoder(ray_cluster: None) -> tuple[str, Any]:
    """(gateway address, host deployment handle) of a 2-replica decoder application."""
    from ray import serve

    address, _ = _deploy("decoder", {"replicas": 2, "num_cpus": 0.5})
    return address, serve.get_deployment_handle("decoder-host", app_name="decoder")


@pytest.fixture(scope="module")
def ray_batching_decoder(ray_cluster: None) -> tuple[str, str]:
    """(gateway address, its /metrics URL) of a 1-replica decoder that batches Decode calls
    with lite's learned restorer: a batch starts when BATCH calls wait, or after a minute."""
    address, metrics_port = _deploy(
        "decoder-batch",
        {
            "replicas": 1,
            "num_cpus": 0.5,
            "max_batch_size": BATCH,
            "batch_wait_timeout_s": 60.0,
            "replica_env": {"SEMLINK_LITE_RESTORER": "true"},
        },
    )
    return address, f"http://127.0.0.1:{metrics_port}/metrics"


@pytest.fixture(scope="module")
def packet(lite: Codec, chelsea: np.ndarray) -> bytes:
    from semlink.budget import Budget

    return lite.encode(chelsea, Budget(max_bytes=400)).data


def test_decode_through_ray_matches_in_process_decode(
    ray_decoder: tuple[str, Any], packet: bytes, lanczos: Codec
) -> None:
    address, host = ray_decoder
    client = SemlinkClient(decoder=channel(address))
    response = client.decode(packet, timeout=60)
    local = lanczos.decode(packet)
    assert np.array_equal(image_of(response), local.image)
    assert list(response.stats.layers_used) == list(local.layers_used)
    with pytest.raises(grpc.RpcError) as info:
        client.decode(b"\xff\x00garbage", timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    pids = {host.pid.remote().result(timeout_s=30) for _ in range(12)}
    assert len(pids) == 2, "calls did not reach both replicas"


def test_killing_a_replica_under_load_fails_no_call(
    ray_decoder: tuple[str, Any], packet: bytes
) -> None:
    address, host = ray_decoder
    client = SemlinkClient(decoder=channel(address, retry=RetryPolicy()))
    done: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            try:
                client.decode(packet, timeout=60)
                done.append(time.monotonic())
            except grpc.RpcError as exc:
                failures.append(f"{exc.code().name}: {exc.details()}")

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(done) < 8 and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
        names = {host.actor_name.remote().result(timeout_s=30) for _ in range(12)}
        assert len(names) == 2, names
        victim = ray.get_actor(sorted(names)[0], namespace="serve")
        ray.kill(victim, no_restart=True)
        killed_at = time.monotonic()
        deadline = killed_at + 90
        while sum(t > killed_at for t in done) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not failures, failures
    assert sum(t > killed_at for t in done) >= 20


def test_serve_options_map_to_app_args() -> None:
    from services.rayserve.run import app_args

    config = ServerConfig(port=0, workers=2, max_waiting=6, token="t")
    fixed = app_args("decoder", config, replicas=2, num_gpus=0.5)
    assert fixed["replicas"] == 2 and "max_replicas" not in fixed
    assert fixed["num_gpus"] == 0.5 and fixed["max_ongoing_requests"] == 8
    assert ServerConfig.model_validate(fixed["server"]) == config
    scaled = app_args("decoder", config, replicas=1, max_replicas=4)
    assert (scaled["min_replicas"], scaled["max_replicas"]) == (1, 4)
    assert scaled["target_ongoing_requests"] == 3
    assert fixed["max_batch_size"] == 1  # no batching unless asked
    batching = app_args("decoder", config, max_batch_size=8, batch_wait_timeout_s=0.05)
    assert (batching["max_batch_size"], batching["batch_wait_timeout_s"]) == (8, 0.05)


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> (labels, value) of every sample the endpoint serves."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_concurrent_decodes_are_batched_and_replica_metrics_reach_the_gateway(
    ray_batching_decoder: tuple[str, str], packet: bytes, lite: Codec
) -> None:

    address, metrics_url = ray_batching_decoder
    client = SemlinkClient(decoder=channel(address))
    damaged = bytearray(packet)
    damaged[-12] ^= 0x10  # the reference layer's CRC32C fails: DATA_LOSS
    requests = [packet, b"\xff\x00garbage", packet, bytes(damaged), packet]
    assert len(requests) == BATCH

    def attempt(request: bytes) -> Any:
        try:
            return client.decode(request, timeout=300)
        except grpc.RpcError as exc:
            return exc.code()

    with ThreadPoolExecutor(BATCH) as pool:
        outcomes = list(pool.map(attempt, requests))
    assert outcomes[1] == grpc.StatusCode.INVALID_ARGUMENT
    assert outcomes[3] == grpc.StatusCode.DATA_LOSS
    local = lite.decode(packet)
    assert local.realism is not None  # the learned restorer ran
    for index in (0, 2, 4):
        assert not isinstance(outcomes[index], grpc.StatusCode), outcomes[index]
        assert np.array_equal(image_of(outcomes[index]), local.image)

    def replica_samples(name: str) -> list[tuple[dict[str, str], float]]:
        samples = _scrape(metrics_url).get(name, [])
        return [(labels, value) for labels, value in samples if "replica" in labels]

    def pictures_decoded() -> list[float]:
        return [
            value
            for labels, value in replica_samples("semlink_decode_seconds_count")
            if labels["stage"] == "reference"
        ]

    # The replica pushes its metrics every second: wait for a push made after the batch.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pictures_decoded() != [3]:
        time.sleep(0.5)
    assert pictures_decoded() == [3], "three pictures decoded, in the decode-latency histogram"
    buckets = replica_samples("semlink_decode_seconds_bucket")
    assert [
        v for labels, v in buckets if labels["stage"] == "reference" and labels["le"] == "+Inf"
    ] == [3]
    assert [v for _, v in replica_samples("semlink_decode_batch_size_count")] == [1], (
        "the five calls were not computed as one batch"
    )
    assert [v for _, v in replica_samples("semlink_decode_batch_size_sum")] == [BATCH]
    handled = _scrape(metrics_url)["grpc_server_handled_total"]  # the gateway's own series
    codes = {
        labels["grpc_code"]: value for labels, value in handled if labels["grpc_method"] == "Decode"
    }
    assert codes == {"OK": 3, "INVALID_ARGUMENT": 1, "DATA_LOSS": 1}
