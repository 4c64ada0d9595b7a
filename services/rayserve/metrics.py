"""One /metrics endpoint for a service on Ray: the gateway's own metrics and its replicas'.

Host replicas record decode and queue timings in their own registries; every
``period`` seconds each pushes a snapshot of its registry to the gateway
(:meth:`services.rayserve.gateway.Gateway.replica_metrics`). The gateway's /metrics serves its
own series and, in the same metric families, every live replica's series with a
``replica`` label: an operator scrapes one endpoint, and sums over ``replica`` (or not) in
PromQL, as over the instances of a plain fleet. A replica silent for ``stale_after``
seconds (stopped, killed) drops out, as a target that went away would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

REPLICA_LABEL = "replica"

METRICS_PERIOD = 1.0
"""Seconds between two pushes of a replica's metrics to its gateway."""


class FleetMetrics:
    """The gateway's registry merged with the latest snapshot of each replica's."""

    def __init__(self, own: CollectorRegistry, stale_after: float) -> None:
        self.own = own
        self.stale_after = stale_after
        self._replicas: dict[str, tuple[float, list[Metric]]] = {}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # a collector: collect() only, no describe()

    def update(self, replica: str, families: Sequence[Metric]) -> None:
        """The replica's current metric families (replacing its previous snapshot)."""
        with self._lock:
            self._replicas[replica] = (time.monotonic(), list(families))

    def replicas(self) -> list[str]:
        """Replicas whose metrics are served (heard from within ``stale_after`` seconds)."""
        now = time.monotonic()
        with self._lock:
            for replica, (seen, _) in list(self._replicas.items()):
                if now - seen > self.stale_after:
                    del self._replicas[replica]
            return sorted(self._replicas)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for family in self.own.collect():
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = list(family.samples)
            merged[family.name] = copy
        live = self.replicas()
        with self._lock:
            snapshots = [(replica, self._replicas[replica][1]) for replica in live]
        for replica, families in snapshots:
            for family in families:
                target = merged.get(family.name)
                if target is None:
                    target = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = target
                elif target.type != family.type:
                    continue  # another service's family of that name: never mixed
                target.samples.extend(
                    sample._replace(labels={**sample.labels, REPLICA_LABEL: replica})
                    for sample in family.samples
                )
        yield from merged.values()

    def serve(self, port: int, addr: str) -> tuple[Any, threading.Thread]:
        """Serve /metrics on ``port`` (0 picks a free one): (HTTP server, its thread)."""
        return start_http_server(port, addr=addr, registry=self.registry)
