"""Blocking clients of the three services (what an edge app, the demo and benches use)."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

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


def channel(
    address: str,
    *,
    root_certificates: bytes | None = None,
    client_cert: tuple[bytes, bytes] | None = None,
    max_message_bytes: int = 32 * MiB,
) -> grpc.Channel:
    """An insecure or TLS channel with the same message limits as the servers."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if root_certificates is None and client_cert is None:
        return grpc.insecure_channel(address, options=options)
    key, cert = client_cert if client_cert else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates, key, cert)
    return grpc.secure_channel(address, credentials, options=options)


def wait_until_serving(ch: grpc.Channel, timeout: float = 60.0) -> None:
    """Block until the server's health says SERVING (raises TimeoutError otherwise)."""
    stub = health_pb2_grpc.HealthStub(ch)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server did not report SERVING within {timeout} s")


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
