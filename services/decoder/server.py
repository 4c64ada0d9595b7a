"""DecoderService servicer: parse, decode whatever layers arrived, map errors, record metrics.

:class:`DecoderService` is the deployable: the process's codecs (a
:class:`~semlink.codec.Codecs` built at start-up; each packet's profile picks its models),
the servicer that decodes with them, and the warm-up.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np
from PIL import Image

from semlink.codec import Codecs, DecodeCall, DecodeResult, check_realism
from semlink.default_codecs import default_codecs
from semlink.packet import PacketError, parse
from semlink.serving import ServerConfig, ServiceRuntime, memory, run_service
from semlink.serving.server import Admission, BatchHandler, RpcFailure
from semlink.streams.text import english_model
from semlink.v1 import decoder_pb2, decoder_pb2_grpc

NAME = "decoder"
MiB = 1024 * 1024
DECODE = "/semlink.v1.DecoderService/Decode"


def check_format(fmt: int) -> None:
    """Raise ``ValueError`` unless ``fmt`` is an ``ImageFormat`` this decoder writes.

    Proto3 enums are open: an unknown number arrives as itself, never as the default."""
    if fmt not in decoder_pb2.ImageFormat.values():
        accepted = ", ".join(
            f"{name} = {number}" for name, number in decoder_pb2.ImageFormat.items()
        )
        raise ValueError(
            f"options.format is {fmt}, which is no image format; use one of {accepted} "
            f"(0 means PNG)"
        )


def image_bytes(image: np.ndarray, fmt: int) -> bytes:
    """The response's image in the requested format (PNG favours speed: compress level 1)."""
    check_format(fmt)
    if fmt == decoder_pb2.IMAGE_FORMAT_RAW_RGB:
        return np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    buffer = io.BytesIO()
    if fmt == decoder_pb2.IMAGE_FORMAT_WEBP:
        Image.fromarray(image).save(buffer, "WEBP", lossless=True)
    else:  # PNG, or UNSPECIFIED (PNG)
        Image.fromarray(image).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


RESPONSE_SLACK = 64 * 1024
"""Bytes a response needs beside its image (stats, caption, descriptions), generously."""


def claimed_size(packet: bytes) -> tuple[int, int] | None:
    """(width, height) the packet's header claims (None: unreadable; the decode says why)."""
    try:
        header = parse(packet)
    except PacketError:
        return None
    return header.width, header.height


def check_answer_size(
    size: tuple[int, int] | None, fmt: int, max_message_bytes: int | None
) -> None:
    """Raise ``ValueError`` before decoding when the raw-RGB answer to a picture of ``size``
    could not be sent (a header of a few bytes can claim a picture larger than any message)."""
    if fmt != decoder_pb2.IMAGE_FORMAT_RAW_RGB or max_message_bytes is None or size is None:
        return
    width, height = size
    raw = 3 * width * height
    if raw + RESPONSE_SLACK > max_message_bytes:
        raise ValueError(
            f"the {width}x{height} picture is {raw / MiB:.1f} MiB as raw RGB, more than this "
            f"server sends in one message ({max_message_bytes / MiB:.0f} MiB); ask for PNG or "
            f"WebP, or raise the server's --max-message-bytes"
        )


class DecoderServicer(decoder_pb2_grpc.DecoderServiceServicer):
    def __init__(self, runtime: ServiceRuntime, codecs: Codecs) -> None:
        self.runtime = runtime
        self.codecs = codecs

    def _within_limit(self, size: tuple[int, int] | None) -> bool:
        return size is not None and size[0] * size[1] <= self.codecs.settings.max_decode_pixels

    def _response(
        self, result: DecodeResult, fmt: int, waited: float
    ) -> decoder_pb2.DecodeResponse:
        height, width = result.image.shape[:2]
        return decoder_pb2.DecodeResponse(
            image=image_bytes(result.image, fmt),
            stats=decoder_pb2.DecodeStats(
                layers_used=result.layers_used,
                stage_seconds=result.stage_seconds,
                queue_seconds=waited,
                width=width,
                height=height,
                no_reference="reference" not in result.layers_used,
            ),
            caption=result.caption or "",
            object_descriptions=[d for d, _ in result.objects],
        )

    async def _decode(
        self,
        packet: bytes,
        options: decoder_pb2.DecodeOptions,
        context: grpc.aio.ServicerContext,
        preview: bool,
    ) -> tuple[DecodeResult, float]:
        realism = options.realism if options.HasField("realism") else None
        size = claimed_size(packet)  # the header, read once for both checks below
        try:
            check_format(options.format)  # refused before the call waits or decodes
            check_answer_size(size, options.format, self.runtime.max_message_bytes)
            if realism is not None:
                check_realism(realism)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

        def work(check: Callable[[], None]) -> DecodeResult:
            if preview:
                return self.codecs.decode_preview(packet)
            return self.codecs.decode(
                packet,
                check=check,
                steps=options.steps or None,
                seed=options.seed or None,
                realism=realism,
            )

        result, waited = await self.runtime.run(
            context,
            work,
            # A picture past the decoder's limit is the decode's to refuse (INVALID_ARGUMENT),
            # not the memory budget's.
            Admission(memory.DECODE, size if self._within_limit(size) else None, "decode"),
        )
        assert isinstance(result, DecodeResult)
        for stage, seconds in result.stage_seconds.items():
            self.runtime.metrics.decode_seconds.labels(stage).observe(seconds)
        return result, waited

    async def decode_batch(
        self, calls: Sequence[tuple[decoder_pb2.DecodeRequest, float | None]]
    ) -> list[decoder_pb2.DecodeResponse | RpcFailure]:
        """Several Decode calls (request, seconds left to its deadline) as one piece of work:
        lite's restorer runs once on the batch (:meth:`semlink.codec.Codecs.decode_batch`). Each
        call gets its own response or failure, the status Decode alone would give it."""
        outcomes: list[decoder_pb2.DecodeResponse | RpcFailure | None] = [None] * len(calls)
        accepted: list[tuple[int, decoder_pb2.DecodeRequest, float | None]] = []
        for index, (request, timeout) in enumerate(calls):
            options = request.options
            try:
                check_format(options.format)
                check_answer_size(
                    claimed_size(request.packet), options.format, self.runtime.max_message_bytes
                )
                if options.HasField("realism"):
                    check_realism(options.realism)
            except ValueError as exc:
                outcomes[index] = RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                continue
            accepted.append((index, request, timeout))
        self.runtime.metrics.decode_batch_size.labels(self.runtime.name).observe(len(calls))

        def work(
            checks: Sequence[Callable[[], None]],
        ) -> list[decoder_pb2.DecodeResponse | Exception]:
            decoded = self.codecs.decode_batch(
                [
                    DecodeCall(
                        request.packet,
                        realism=request.options.realism
                        if request.options.HasField("realism")
                        else None,
                        steps=request.options.steps or None,
                        seed=request.options.seed or None,
                        check=check,
                    )
                    for (_, request, _), check in zip(accepted, checks, strict=True)
                ]
            )
            responses: list[decoder_pb2.DecodeResponse | Exception] = []
            for (_, request, _), result in zip(accepted, decoded, strict=True):
                if isinstance(result, Exception):
                    responses.append(result)
                    continue
                for stage, seconds in result.stage_seconds.items():
                    self.runtime.metrics.decode_seconds.labels(stage).observe(seconds)
                responses.append(self._response(result, request.options.format, 0.0))
            return responses

        if accepted:
            done, waited = await self.runtime.run_batch([t for _, _, t in accepted], work)
            for (index, _, _), outcome in zip(accepted, done, strict=True):
                if isinstance(outcome, decoder_pb2.DecodeResponse):
                    outcome.stats.queue_seconds = waited
                outcomes[index] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    async def Decode(
        self, request: decoder_pb2.DecodeRequest, context: grpc.aio.ServicerContext
    ) -> decoder_pb2.DecodeResponse:
        result, waited = await self._decode(request.packet, request.options, context, preview=False)
        return self._response(result, request.options.format, waited)

    async def DecodeStream(
        self, request: decoder_pb2.DecodeStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[decoder_pb2.DecodeStreamResponse]:
        preview, waited = await self._decode(request.packet, request.options, context, preview=True)
        yield decoder_pb2.DecodeStreamResponse(
            stage=decoder_pb2.DECODE_STAGE_PREVIEW,
            result=self._response(preview, request.options.format, waited),
        )
        final, waited = await self._decode(request.packet, request.options, context, preview=False)
        yield decoder_pb2.DecodeStreamResponse(
            stage=decoder_pb2.DECODE_STAGE_FINAL,
            result=self._response(final, request.options.format, waited),
        )


@dataclass
class DecoderService:
    """The decoder deployable: its models, its servicer and its warm-up."""

    codecs: Codecs = field(default_factory=Codecs.from_settings)
    """Every profile's codec for this process (default: over the settings' models)."""

    servicer: DecoderServicer | None = field(default=None, init=False)

    def add_servicers(self, server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
        self.servicer = DecoderServicer(runtime, self.codecs)
        decoder_pb2_grpc.add_DecoderServiceServicer_to_server(self.servicer, server)
        return [decoder_pb2.DESCRIPTOR.services_by_name["DecoderService"].full_name]

    def batch_handlers(self) -> dict[str, BatchHandler]:
        """Methods that take several calls at once (method path -> handler), for engines
        that batch (Ray Serve's ``@serve.batch``); after :meth:`add_servicers`."""
        assert self.servicer is not None, "add_servicers builds the servicer first"
        return {DECODE: self.servicer.decode_batch}

    async def load(self) -> None:
        """Load what lite decodes with: the text model, and the fingerprint it checks."""

        def warm() -> None:
            english_model()
            _ = self.codecs["lite"].models.fingerprint

        await asyncio.get_running_loop().run_in_executor(None, warm)


def add_servicers(server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
    """The servicer on the process's codecs (:func:`semlink.default_codecs.default_codecs`),
    for scripts that start a server in their own process."""
    return DecoderService(default_codecs()).add_servicers(server, runtime)


async def load() -> None:
    """Warm the process's codecs (what :func:`add_servicers` serves with)."""
    await DecoderService(default_codecs()).load()


def main(config: ServerConfig, max_pixels: int | None = None) -> None:
    """Serve with the process's settings; ``max_pixels`` overrides their
    ``max_decode_pixels`` (the largest picture a packet may claim)."""
    from semlink.config import settings

    current = settings()
    if max_pixels is not None:
        current = current.model_copy(update={"max_decode_pixels": max_pixels})
    service = DecoderService(Codecs.from_settings(current))  # built once at start-up
    run_service(NAME, config, service.add_servicers, service.load)
