"""EncoderService servicer: parse, validate, call ``semlink.encode``, record metrics."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence

import grpc
import numpy as np
from PIL import Image

from semlink.codec import EncodeResult, ObjectHint, encode, read_image
from semlink.serving import ServerConfig, ServiceRuntime, run_service
from semlink.streams.text import english_model
from semlink.v1 import encoder_pb2, encoder_pb2_grpc

NAME = "encoder"
DEFAULT_BPP = 0.03


def _mask(data: bytes, index: int) -> np.ndarray | None:
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L")) > 0
    except Exception as exc:
        raise ValueError(f"object {index}: mask_png is not a readable PNG ({exc})") from exc


class EncoderServicer(encoder_pb2_grpc.EncoderServiceServicer):
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    async def Encode(
        self, request: encoder_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.EncodeResponse:
        budget = request.WhichOneof("budget")

        def work(check: Callable[[], None]) -> EncodeResult:
            image = read_image(request.image)
            objects = [
                ObjectHint(o.description, _mask(o.mask_png, i))
                for i, o in enumerate(request.hints.objects)
            ]
            check()
            return encode(
                image,
                request.profile or "lite",
                max_bytes=request.max_bytes if budget == "max_bytes" else None,
                target_bpp=request.target_bpp
                if budget == "target_bpp"
                else (None if budget else DEFAULT_BPP),
                caption=request.hints.caption or None,
                objects=objects,
            )

        result, waited = await self.runtime.run(context, work)
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


def add_servicers(server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
    encoder_pb2_grpc.add_EncoderServiceServicer_to_server(EncoderServicer(runtime), server)
    return [encoder_pb2.DESCRIPTOR.services_by_name["EncoderService"].full_name]


async def load() -> None:
    """Warm up: the text model, codec libraries and container templates, one real encode."""

    def warm() -> None:
        english_model()
        encode(np.full((64, 96, 3), 100, np.uint8), "lite", max_bytes=200, caption="warm up")

    await asyncio.get_running_loop().run_in_executor(None, warm)


def main(config: ServerConfig) -> None:
    run_service(NAME, config, add_servicers, load)
