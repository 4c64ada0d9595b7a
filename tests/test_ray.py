"""semlink on Ray Serve: a local Ray head, the decoder as two replicas behind the gateway.

A Decode through Ray returns the same picture as an in-process decode; killing one of the
two replicas under load fails no client call beyond its retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def ray_decoder() -> Iterator[tuple[str, Any]]:
    """(gateway address, host deployment handle) of a 2-replica decoder application."""
    from ray import serve
    from ray.serve.config import ProxyLocation

    from semlink.config import settings
    from services.rayserve.app import build_app

    with pytest.MonkeyPatch.context() as mp:
        # Replicas inherit the environment: Lanczos decodes take milliseconds.
        mp.setenv("SEMLINK_LITE_RESTORER", "false")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        settings.cache_clear()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            serve.start(proxy_location=ProxyLocation.Disabled)
            args = {
                "service": "decoder",
                "replicas": 2,
                "num_cpus": 0.5,
                "workers": 1,
                "server": {"host": "127.0.0.1", "port": 0, "metrics_port": 0},
            }
            gateway = serve.run(build_app(args), name="decoder", route_prefix=None)
            port, _ = gateway.address.remote().result(timeout_s=60)
            address = f"127.0.0.1:{port}"
            wait_until_serving(channel(address), timeout=120)
            yield address, serve.get_deployment_handle("decoder-host", app_name="decoder")
        finally:
            serve.shutdown()
            ray.shutdown()
    settings.cache_clear()


@pytest.fixture(scope="module")
def packet(chelsea: np.ndarray) -> bytes:
    from semlink import encode

    return encode(chelsea, max_bytes=400).data


def test_decode_through_ray_matches_in_process_decode(
    ray_decoder: tuple[str, Any], packet: bytes
) -> None:
    from semlink import decode

    address, host = ray_decoder
    client = SemlinkClient(decoder=channel(address))
    response = client.decode(packet, timeout=60)
    local = decode(packet)
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
