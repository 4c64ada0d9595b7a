"""Clients for a fleet: one channel over several decoder servers (round_robin), with the retry
service config carrying calls over a server that stops."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from semlink.codec import Codec
from semlink.serving.client import (
    RetryPolicy,
    SemlinkClient,
    channel,
    fleet_target,
    image_of,
    service_config,
    wait_until_serving,
)
from services.decoder.server import DecoderService

from .servers import ServiceThread, config
from .test_services import scrape

DECODE_OK = (
    'grpc_server_handled_total{grpc_code="OK",grpc_method="Decode",'
    'grpc_service="semlink.v1.DecoderService",grpc_type="unary"}'
)


@pytest.fixture(scope="module")
def decoders() -> Iterator[list[ServiceThread]]:
    from semlink.codec import Codecs
    from semlink.config import Settings

    lanczos = Codecs.from_settings(Settings(lite_restorer=False))  # decodes take milliseconds
    services = [DecoderService(lanczos) for _ in range(2)]
    servers = [
        ServiceThread("decoder", config(), service.add_servicers, service.load).start()
        for service in services
    ]
    for server in servers:
        wait_until_serving(channel(server.address))
    yield servers
    for server in servers:
        if server.running is not None and server._thread and server._thread.is_alive():
            server.stop()


@pytest.fixture(scope="module")
def packet(lite: Codec, chelsea: np.ndarray) -> bytes:
    from semlink.budget import Budget

    return lite.encode(chelsea, Budget(max_bytes=400)).data


def handled(server: ServiceThread) -> float:
    return scrape(server.metrics_url).get(DECODE_OK, 0.0)


def test_fleet_target_and_service_config() -> None:
    assert fleet_target("127.0.0.1:1,127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert fleet_target(["localhost:5", "127.0.0.1:6"]).startswith(("ipv4:", "ipv6:"))
    assert fleet_target("[::1]:7,[::1]:8") == "ipv6:[::1]:7,[::1]:8"
    name = "dns:///decoder.semlink.svc.cluster.local:50052"
    assert fleet_target(name) == name
    with pytest.raises(ValueError, match="host:port"):
        fleet_target(["a", "b:1"])
    config_ = json.loads(service_config(retry=RetryPolicy(max_attempts=4)))
    assert config_["loadBalancingConfig"] == [{"round_robin": {}}]
    (method,) = config_["methodConfig"]
    assert {"service": "semlink.v1.DecoderService"} in method["name"]
    assert method["retryPolicy"]["maxAttempts"] == 4
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert "methodConfig" not in json.loads(service_config(retry=None))


def test_round_robin_spreads_calls_over_both_servers(
    decoders: list[ServiceThread], packet: bytes, chelsea: np.ndarray
) -> None:
    before = [handled(s) for s in decoders]
    client = SemlinkClient(decoder=channel([s.address for s in decoders]))
    images = [image_of(client.decode(packet, timeout=30)) for _ in range(12)]
    assert all(image.shape == chelsea.shape for image in images)
    counts = [handled(s) - b for s, b in zip(decoders, before, strict=True)]
    assert sum(counts) == 12
    assert min(counts) >= 4, f"calls were not spread: {counts}"
    # A comma-separated string is the same fleet.
    comma = SemlinkClient(decoder=channel(",".join(s.address for s in decoders)))
    assert image_of(comma.decode(packet, timeout=30)).shape == chelsea.shape


def test_calls_survive_one_server_stopping(decoders: list[ServiceThread], packet: bytes) -> None:
    """Runs last in this module: it stops the second server."""
    first, second = decoders
    client = SemlinkClient(decoder=channel([s.address for s in decoders]))
    done: list[float] = []
    failures: list[grpc.RpcError] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            try:
                client.decode(packet, timeout=30)
                done.append(time.monotonic())
            except grpc.RpcError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    while len(done) < 10 and not failures:
        time.sleep(0.02)
    before_stop = handled(second)
    assert before_stop > 0
    second.stop(grace=1.0)
    stopped_at = time.monotonic()
    while sum(t > stopped_at for t in done) < 15 and not failures:
        time.sleep(0.02)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not failures, [f"{e.code().name}: {e.details()}" for e in failures]
    assert sum(t > stopped_at for t in done) >= 15
    after = handled(first)
    assert after > 0
