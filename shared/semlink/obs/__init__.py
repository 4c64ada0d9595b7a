"""Observability: Prometheus metrics shared by the services."""

from semlink.obs.metrics import SECONDS_BUCKETS, ServiceMetrics

__all__ = ["SECONDS_BUCKETS", "ServiceMetrics"]
