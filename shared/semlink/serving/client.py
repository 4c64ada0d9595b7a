"""Blocking clients of the three services (what an edge app, the demo and benches use)."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from numpy.typing import NDArray
from PIL import Image

from semlink.serving.server import MiB
from semlink.v1 import (
    decoder_pb2,
    decoder_pb2_grpc,
    encoder_pb2,
    encoder_pb2_grpc,
    link_pb2,
    link_pb2_grpc,
)


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's retryPolicy: calls that end UNAVAILABLE (a replica stopping or still loading)
    are sent again, to another backend under round_robin, with exponential backoff."""

    max_attempts: int = 5  # gRPC caps this at 5 (the first try included)
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0
    retryable_status_codes: tuple[str, ...] = ("UNAVAILABLE",)


SEMLINK_SERVICES = (
    "semlink.v1.EncoderService",
    "semlink.v1.DecoderService",
    "semlink.v1.LinkService",
)


def service_config(
    load_balancing: str | None = "round_robin", retry: RetryPolicy | None = RetryPolicy()
) -> str:
    """The ``grpc.service_config`` JSON: a load-balancing policy and a retry policy for the
    semlink services (health and reflection calls are never retried)."""
    config: dict[str, Any] = {}
    if load_balancing:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    if retry is not None:
        config["methodConfig"] = [
            {
                "name": [{"service": name} for name in SEMLINK_SERVICES],
                "retryPolicy": {
                    "maxAttempts": retry.max_attempts,
                    "initialBackoff": f"{retry.initial_backoff}s",
                    "maxBackoff": f"{retry.max_backoff}s",
                    "backoffMultiplier": retry.backoff_multiplier,
                    "retryableStatusCodes": list(retry.retryable_status_codes),
                },
            }
        ]
        # Retries stop when more than half the recent calls failed: no retry storms.
        config["retryThrottling"] = {"maxTokens": 20, "tokenRatio": 0.2}
    return json.dumps(config)


def fleet_target(targets: str | Sequence[str]) -> str:
    """One gRPC target for several backends.

    A sequence of ``host:port`` (or one comma-separated string) becomes a static address list
    (``ipv4:a:p,b:q``, or ``ipv6:``); host names are resolved once, here. A single target is
    returned as it is: ``dns:///decoder.semlink.svc.cluster.local:50052`` re-resolves a
    headless Service's pods as they come and go.
    """
    items = [targets] if isinstance(targets, str) else list(targets)
    items = [t.strip() for item in items for t in item.split(",") if t.strip()]
    if not items:
        raise ValueError("no targets")
    if len(items) == 1:
        return items[0]
    addresses: list[tuple[int, str]] = []
    for item in items:
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"{item!r}: several targets must each be host:port")
        host = host.strip("[]")
        for family, _, _, _, sockaddr in socket.getaddrinfo(
            host, int(port), type=socket.SOCK_STREAM
        ):
            ip = str(sockaddr[0])
            addresses.append(
                (family, f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}")
            )
            break
    families = {family for family, _ in addresses}
    if families == {socket.AF_INET}:
        return "ipv4:" + ",".join(a for _, a in addresses)
    if families == {socket.AF_INET6}:
        return "ipv6:" + ",".join(a for _, a in addresses)
    raise ValueError("several targets must all be IPv4 or all be IPv6")


def _is_fleet(address: str | Sequence[str]) -> bool:
    if not isinstance(address, str):
        return True
    return "," in address or address.startswith(("dns:", "ipv4:", "ipv6:"))


_UNSET: Any = object()


def channel(
    address: str | Sequence[str],
    *,
    root_certificates: bytes | None = None,
    client_cert: tuple[bytes, bytes] | None = None,
    max_message_bytes: int = 32 * MiB,
    load_balancing: str | None = _UNSET,
    retry: RetryPolicy | None = _UNSET,
    tls_server_name: str | None = None,
) -> grpc.Channel:
    """An insecure or TLS channel with the same message limits as the servers.

    ADDRESS is one ``host:port``, or a fleet: several targets (a sequence or a comma-separated
    string) or a name with a resolver scheme (``dns:///decoder.semlink.svc:50052``). A fleet
    gets round_robin load balancing and :class:`RetryPolicy` by default; one plain address
    keeps gRPC's defaults (pick_first, no retries) unless ``load_balancing``/``retry`` say
    otherwise. ``tls_server_name`` is the name the server's certificate must hold when the
    target does not (IP lists).
    """
    fleet = _is_fleet(address)
    if load_balancing is _UNSET:
        load_balancing = "round_robin" if fleet else None
    if retry is _UNSET:
        retry = RetryPolicy() if fleet else None
    target = fleet_target(address) if fleet else str(address)
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if load_balancing or retry:
        options.append(("grpc.service_config", service_config(load_balancing, retry)))
        options.append(("grpc.enable_retries", 1 if retry else 0))
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    if root_certificates is None and client_cert is None:
        return grpc.insecure_channel(target, options=options)
    key, cert = client_cert if client_cert else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates, key, cert)
    return grpc.secure_channel(target, credentials, options=options)


class NotServingError(TimeoutError):
    """A server did not report SERVING in time. ``code`` is its last answer's name: a health
    status (NOT_SERVING), a gRPC status code (UNAVAILABLE: nothing answers at the address,
    or TLS does not match), or None where no call ended at all."""

    def __init__(self, timeout: float, code: str | None, details: str = "") -> None:
        self.code, self.details = code, details
        super().__init__(f"server did not report SERVING within {timeout:g} s ({self.last})")

    @property
    def last(self) -> str:
        """The last answer, as a phrase: ``last answer: UNAVAILABLE: failed to connect ...``."""
        answer = f"{self.code}: {self.details}" if self.details else (self.code or "none")
        return f"last answer: {answer}"


def wait_until_serving(ch: grpc.Channel, timeout: float = 60.0) -> None:
    """Block until the server's health says SERVING (raises :class:`NotServingError`, a
    TimeoutError, otherwise)."""
    stub = health_pb2_grpc.HealthStub(ch)
    end = time.monotonic() + timeout
    code: str | None = None
    details = ""
    while time.monotonic() < end:
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
            code, details = health_pb2.HealthCheckResponse.ServingStatus.Name(status), ""
        except grpc.RpcError as err:
            code, details = err.code().name, err.details() or ""
        time.sleep(0.1)
    raise NotServingError(timeout, code, details)


def png_bytes(image: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class SemlinkClient:
    """Stubs for the three services over given channels (any may be None)."""

    encoder: grpc.Channel | None = None
    decoder: grpc.Channel | None = None
    link: grpc.Channel | None = None
    token: str | None = None

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def encode(
        self,
        image: NDArray[np.uint8] | bytes,
        *,
        target_bpp: float | None = None,
        max_bytes: int | None = None,
        caption: str = "",
        timeout: float | None = 60.0,
    ) -> encoder_pb2.EncodeResponse:
        assert self.encoder is not None
        request = encoder_pb2.EncodeRequest(
            image=image if isinstance(image, bytes) else png_bytes(image),
            hints=encoder_pb2.EncodeHints(caption=caption),
        )
        if max_bytes is not None:
            request.max_bytes = max_bytes
        elif target_bpp is not None:
            request.target_bpp = target_bpp
        stub = encoder_pb2_grpc.EncoderServiceStub(self.encoder)
        return stub.Encode(request, timeout=timeout, metadata=self._metadata())

    def decode(
        self,
        packet: bytes,
        timeout: float | None = 60.0,
        image_format: decoder_pb2.ImageFormat = decoder_pb2.IMAGE_FORMAT_PNG,
    ) -> decoder_pb2.DecodeResponse:
        assert self.decoder is not None
        stub = decoder_pb2_grpc.DecoderServiceStub(self.decoder)
        request = decoder_pb2.DecodeRequest(
            packet=packet, options=decoder_pb2.DecodeOptions(format=image_format)
        )
        return stub.Decode(request, timeout=timeout, metadata=self._metadata())

    def transmit(
        self, packet: bytes, seed: int = 0, timeout: float | None = 120.0
    ) -> link_pb2.TransmitResponse:
        assert self.link is not None
        stub = link_pb2_grpc.LinkServiceStub(self.link)
        return stub.Transmit(
            link_pb2.TransmitRequest(packet=packet, seed=seed),
            timeout=timeout,
            metadata=self._metadata(),
        )


def image_of(response: decoder_pb2.DecodeResponse) -> NDArray[np.uint8]:
    """The response's image as RGB, whatever format was asked for."""
    if len(response.image) == 3 * response.stats.width * response.stats.height:
        raw = np.frombuffer(response.image, dtype=np.uint8)
        return raw.reshape(response.stats.height, response.stats.width, 3)
    with Image.open(io.BytesIO(response.image)) as im:
        return np.asarray(im.convert("RGB"))
