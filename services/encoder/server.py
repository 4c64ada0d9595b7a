"""EncoderService servicer: parse, validate, call ``semlink.encode``, record metrics.

:class:`EncoderService` is the deployable: the process's models (a
:class:`~semlink.resolver.Resolver` built at start-up), the servicer that passes them to
every ``encode``, and the warm-up that loads them.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np
from PIL import Image

from semlink.codec import (
    EncodeResult,
    ObjectHint,
    budget_bytes,
    check_hint_size,
    encode,
    read_image,
)
from semlink.imaging import image_size
from semlink.resolver import Resolver, default_resolver
from semlink.serving import ServerConfig, ServiceRuntime, run_service
from semlink.serving.memory import ENCODE
from semlink.serving.server import Admission
from semlink.streams.text import english_model
from semlink.v1 import encoder_pb2, encoder_pb2_grpc

NAME = "encoder"
DEFAULT_BPP = 0.03


def _mask(data: bytes, index: int, width: int, height: int) -> np.ndarray | None:
    """Object ``index``'s mask from its PNG, its size checked from the header before the
    pixels are decoded: a mask larger than its ``width`` x ``height`` image is refused."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise ValueError(f"object {index}: mask_png is a {im.format} file, not a PNG")
            check_hint_size(f"object {index}'s mask", *im.size, width, height)
            return np.asarray(im.convert("L")) > 0
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"object {index}: mask_png is not a readable PNG ({exc})") from exc


class EncoderServicer(encoder_pb2_grpc.EncoderServiceServicer):
    def __init__(self, runtime: ServiceRuntime, models: Resolver) -> None:
        self.runtime = runtime
        self.models = models

    async def Encode(
        self, request: encoder_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.EncodeResponse:
        budget = request.WhichOneof("budget")
        max_bytes = request.max_bytes if budget == "max_bytes" else None
        target_bpp = request.target_bpp if budget == "target_bpp" else None
        if budget is None:
            target_bpp = DEFAULT_BPP

        def work(check: Callable[[], None]) -> EncodeResult:
            # A budget that is zero, negative, NaN or infinite is refused before the image is read.
            budget_bytes(1, 1, max_bytes=max_bytes, target_bpp=target_bpp)
            image = read_image(request.image)
            height, width = image.shape[:2]
            objects = [
                ObjectHint(o.description, _mask(o.mask_png, i, width, height))
                for i, o in enumerate(request.hints.objects)
            ]
            check()
            return encode(
                image,
                request.profile or "lite",
                max_bytes=max_bytes,
                target_bpp=target_bpp,
                caption=request.hints.caption or None,
                objects=objects,
                models=self.models,
                realism=request.realism if request.HasField("realism") else None,
                semantics_only=request.semantics_only,
            )

        admission = Admission(ENCODE, image_size(request.image), "encode")
        result, waited = await self.runtime.run(context, work, admission)
        assert isinstance(result, EncodeResult)
        m = self.runtime.metrics
        m.packet_bytes.labels(NAME).observe(len(result.data))
        m.bits_per_pixel.labels(NAME).observe(result.bits_per_pixel)
        layers = result.layer_bytes()
        for kind, size in layers:
            m.stream_bytes.labels(NAME, kind).inc(size)
        for stage, seconds in result.stage_seconds.items():
            m.encode_seconds.labels(stage).observe(seconds)
        return encoder_pb2.EncodeResponse(
            packet=result.data,
            stats=encoder_pb2.EncodeStats(
                packet_bytes=len(result.data),
                bits_per_pixel=result.bits_per_pixel,
                layers=[encoder_pb2.LayerBytes(kind=k, bytes=n) for k, n in layers],
                stage_seconds=result.stage_seconds,
                queue_seconds=waited,
                width=result.packet.width,
                height=result.packet.height,
            ),
        )


@dataclass
class EncoderService:
    """The encoder deployable: its models, its servicer and its warm-up."""

    models: Resolver = field(default_factory=Resolver.from_settings)
    """Every profile's models for this process (default: built from the settings)."""

    def add_servicers(self, server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
        encoder_pb2_grpc.add_EncoderServiceServicer_to_server(
            EncoderServicer(runtime, self.models), server
        )
        return [encoder_pb2.DESCRIPTOR.services_by_name["EncoderService"].full_name]

    async def load(self) -> None:
        """Warm up: the text model, codec libraries and container templates, lite's models,
        one real encode."""

        def warm() -> None:
            english_model()
            image = np.full((64, 96, 3), 100, np.uint8)
            encode(image, "lite", max_bytes=200, caption="warm up", models=self.models)

        await asyncio.get_running_loop().run_in_executor(None, warm)


def add_servicers(server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
    """The servicer on the process's default models (:func:`~semlink.resolver.default_resolver`)."""
    return EncoderService(default_resolver()).add_servicers(server, runtime)


async def load() -> None:
    """Warm the process's default models (what :func:`add_servicers` serves with)."""
    await EncoderService(default_resolver()).load()


def main(config: ServerConfig) -> None:
    service = EncoderService(Resolver.from_settings())  # the models, built once at start-up
    run_service(NAME, config, service.add_servicers, service.load)
