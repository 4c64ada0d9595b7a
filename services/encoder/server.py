"""EncoderService servicer: parse, validate, call the codec, record metrics.

:class:`EncoderService` is the deployable: the process's codecs (a
:class:`~semlink.codec.Codecs` built at start-up), the servicer that encodes with the one
each request names, and the warm-up that loads them.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np
from PIL import Image

from semlink.budget import Budget
from semlink.codec import Codecs, EncodeResult, ObjectHint, check_hint_size
from semlink.default_codecs import default_codecs
from semlink.imaging import image_size, read_image
from semlink.serving import ServerConfig, ServiceRuntime, run_service
from semlink.serving.memory import ENCODE
from semlink.serving.server import Admission
from semlink.streams.text import english_model
from semlink.v1 import encoder_pb2, encoder_pb2_grpc

NAME = "encoder"


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


def budget_of(request: encoder_pb2.EncodeRequest) -> Budget:
    """The request's budget (``max_bytes`` or ``target_bpp``; neither: the default), or
    :class:`~semlink.errors.BudgetError` when it is zero, negative, NaN or infinite."""
    which = request.WhichOneof("budget")
    return Budget.of(
        max_bytes=request.max_bytes if which == "max_bytes" else None,
        target_bpp=request.target_bpp if which == "target_bpp" else None,
    )


class EncoderServicer(encoder_pb2_grpc.EncoderServiceServicer):
    def __init__(self, runtime: ServiceRuntime, codecs: Codecs) -> None:
        self.runtime = runtime
        self.codecs = codecs

    async def Encode(
        self, request: encoder_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.EncodeResponse:
        def work(check: Callable[[], None]) -> EncodeResult:
            budget = budget_of(request)  # refused before the image is read
            image = read_image(request.image)
            height, width = image.shape[:2]
            objects = [
                ObjectHint(o.description, _mask(o.mask_png, i, width, height))
                for i, o in enumerate(request.hints.objects)
            ]
            check()
            return self.codecs[request.profile or "lite"].encode(
                image,
                budget,
                caption=request.hints.caption or None,
                objects=objects,
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

    codecs: Codecs = field(default_factory=Codecs.from_settings)
    """Every profile's codec for this process (default: over the settings' models)."""

    def add_servicers(self, server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
        encoder_pb2_grpc.add_EncoderServiceServicer_to_server(
            EncoderServicer(runtime, self.codecs), server
        )
        return [encoder_pb2.DESCRIPTOR.services_by_name["EncoderService"].full_name]

    async def load(self) -> None:
        """Warm up: the text model, codec libraries and container templates, lite's models,
        one real encode."""

        def warm() -> None:
            english_model()
            image = np.full((64, 96, 3), 100, np.uint8)
            self.codecs["lite"].encode(image, Budget(max_bytes=200), caption="warm up")

        await asyncio.get_running_loop().run_in_executor(None, warm)


def add_servicers(server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
    """The servicer on the process's codecs (:func:`semlink.default_codecs.default_codecs`),
    for scripts that start a server in their own process."""
    return EncoderService(default_codecs()).add_servicers(server, runtime)


async def load() -> None:
    """Warm the process's codecs (what :func:`add_servicers` serves with)."""
    await EncoderService(default_codecs()).load()


def main(config: ServerConfig) -> None:
    service = EncoderService(Codecs.from_settings())  # the codecs, built once at start-up
    run_service(NAME, config, service.add_servicers, service.load)
