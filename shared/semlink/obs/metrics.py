"""Prometheus metrics of a semlink service, in base units (seconds, bytes).

``grpc_server_*`` follow go-grpc-prometheus names so standard dashboards work;
``semlink_*`` describe the codec and the link. Each service process owns one
:class:`ServiceMetrics` with its own registry, so several services can share a
process in tests without clashing.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

import semlink

SECONDS_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    20,
    30,
    60,
)
BYTES_BUCKETS = (64, 128, 256, 512, 1024, 1536, 2048, 3072, 4096, 8192, 16384, 65536)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
BPP_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
GOODPUT_BUCKETS = (1e3, 2.5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 1e6, 1e7)


class ServiceMetrics:
    """Every series a semlink service exports, in its own registry (or ``registry``): the
    gRPC server's (grpc-ecosystem names), the codec's (packets, stages, batches), the
    work queue's and the link emulator's."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._add_rpc()
        self._add_codec()
        self._add_queue()
        self._add_link()
        self.build_info = Info("semlink_build", "Build of this service.", registry=self.registry)
        self.build_info.info({"version": semlink.__version__, "service": service})
        self.service = service
        self.queue_depth.labels(service)

    def _histogram(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def _counter(self, name: str, doc: str, labels: Sequence[str]) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _add_rpc(self) -> None:
        """RPCs started, handled (by status code) and their handling time."""
        rpc = ("grpc_type", "grpc_service", "grpc_method")
        self.started = self._counter(
            "grpc_server_started_total", "RPCs started on the server.", rpc
        )
        self.handled = self._counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*rpc, "grpc_code"),
        )
        self.handling_seconds = self._histogram(
            "grpc_server_handling_seconds",
            "Time to handle an RPC, queue included.",
            rpc,
            SECONDS_BUCKETS,
        )

    def _add_codec(self) -> None:
        """Packet sizes, bits per pixel, bytes per stream, stage times and batch sizes."""
        self.packet_bytes = self._histogram(
            "semlink_packet_bytes", "Serialized packet size.", ("service",), BYTES_BUCKETS
        )
        self.bits_per_pixel = self._histogram(
            "semlink_bits_per_pixel", "8 x packet bytes / pixels.", ("service",), BPP_BUCKETS
        )
        self.stream_bytes = self._counter(
            "semlink_stream_bytes_total",
            "Bytes per stream kind, framing and CRC included.",
            ("service", "stream"),
        )
        self.encode_seconds = self._histogram(
            "semlink_encode_seconds", "Encoder compute time per stage.", ("stage",), SECONDS_BUCKETS
        )
        self.decode_seconds = self._histogram(
            "semlink_decode_seconds", "Decoder compute time per stage.", ("stage",), SECONDS_BUCKETS
        )
        self.decode_batch_size = self._histogram(
            "semlink_decode_batch_size",
            "Decode calls computed together in one batch (Ray Serve's @serve.batch).",
            ("service",),
            BATCH_BUCKETS,
        )

    def _add_queue(self) -> None:
        """How long requests wait for a worker, and how many wait or hold one."""
        self.queue_seconds = self._histogram(
            "semlink_queue_seconds",
            "Time a request waited for a worker.",
            ("service",),
            SECONDS_BUCKETS,
        )
        self.queue_depth = Gauge(
            "semlink_queue_depth",
            "Requests waiting for or holding a worker.",
            ("service",),
            registry=self.registry,
        )

    def _add_link(self) -> None:
        """The link emulator's airtime, latency, frames, goodput and layers."""
        link = ("profile",)
        self.link_airtime = self._histogram(
            "semlink_link_airtime_seconds",
            "Channel time per transmitted packet.",
            link,
            SECONDS_BUCKETS,
        )
        self.link_latency = self._histogram(
            "semlink_link_latency_seconds",
            "First bit sent to last delivered frame.",
            link,
            SECONDS_BUCKETS,
        )
        self.link_frames = self._counter(
            "semlink_link_frames_total",
            "Frames on the link, by outcome (sent, dropped, retransmitted).",
            (*link, "outcome"),
        )
        self.link_goodput = self._histogram(
            "semlink_link_goodput_bits_per_second",
            "Delivered packet bits / latency.",
            link,
            GOODPUT_BUCKETS,
        )
        self.link_layers = self._counter(
            "semlink_link_layers_total",
            "Layers on the link, by outcome (sent, delivered).",
            (*link, "outcome"),
        )
