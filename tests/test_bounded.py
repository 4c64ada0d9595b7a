"""Every request bounded (issue 32): deadlines and cancels reach the work, hints have
limits, a budget without a picture is an error, raw answers are sized before decoding,
the compose demo is private by default. Real servers, real images, real ffmpeg."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import psutil
import pytest
import yaml
from PIL import Image

from bench.bench_deadline import cpu_seconds
from semlink import calls
from semlink.budget import Budget
from semlink.calls import CallScope, DeadlineExceeded
from semlink.codec import BudgetError, Codec, ObjectHint
from semlink.demo import free_port
from semlink.serving.client import channel, png_bytes, wait_until_serving
from semlink.serving.memory import (
    DECODE,
    DEFAULT_MEMORY_BUDGET,
    ENCODE,
    GiB,
    MemoryBudget,
    OverBudget,
)
from semlink.streams.reference import vvc
from semlink.v1 import decoder_pb2, decoder_pb2_grpc, encoder_pb2, encoder_pb2_grpc
from services.decoder import server as decoder_server
from services.encoder import server as encoder_server

from .servers import ServiceThread, config

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
SEMLINK = [sys.executable, "-m", "services.cli"]


# --- deadlines and cancels reach the work --------------------------------------------------


def test_a_stopped_call_kills_its_ffmpeg_at_once() -> None:
    """An endless ffmpeg run under a call whose deadline passes is killed by the scope's
    timer (not left to its own 60 s timeout) and the call's reason is raised."""
    endless = ["-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-f", "null", "-"]
    scope = CallScope(1.0)
    started: list[psutil.Process] = []

    def watch() -> None:
        while not started:
            started.extend(p for p in psutil.Process().children() if "ffmpeg" in p.name().lower())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with calls.running(scope), pytest.raises(DeadlineExceeded):
        vvc._run(endless, b"", 60.0, "an endless run")
    scope.close()
    assert started, "ffmpeg never started"
    assert not started[0].is_running() or started[0].status() == psutil.STATUS_ZOMBIE


def test_work_started_after_a_cancel_is_refused_and_children_follow() -> None:
    parent = CallScope()
    child = parent.child()
    parent.cancel_call()
    assert child.cancelled
    with pytest.raises(calls.CallCancelled):
        child.check()
    with calls.running(child), pytest.raises(calls.CallCancelled):
        vvc._run(["-version"], b"", 10.0, "a run after the cancel")


@pytest.fixture(scope="module")
def encoder_process() -> Iterator[tuple[psutil.Process, grpc.Channel]]:
    """`semlink serve encoder` in its own process: its CPU time is its own."""
    port = free_port()
    process = subprocess.Popen(
        [*SEMLINK, "serve", "encoder", "--port", str(port), "--metrics-port", "-1"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        chan = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 * MiB)]
        )
        wait_until_serving(chan, timeout=120)
        yield psutil.Process(process.pid), chan
    finally:
        process.terminate()
        process.wait(60)


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A real 8192x8192 picture (64 megapixels, the largest accepted) as a small PNG."""
    return png_bytes(np.zeros((8192, 8192, 3), np.uint8))


GRACE = 3.0
"""Seconds after a call ended before its server must be idle: the longest step with no
check point, one Lanczos resize of a 64-MP upload, takes 1-2.5 s here (docs/limits.md); with
1 s a full suite on a loaded machine caught the 4-s deadline inside it once (0.57 CPU-s)."""


def _idle_after_the_call(process: psutil.Process) -> tuple[float, list[str]]:
    """CPU seconds the server spends in the 2 s that start :data:`GRACE` s after the call
    ended, and the names of its child processes then."""
    time.sleep(GRACE)
    before, _ = cpu_seconds(process)
    time.sleep(2.0)
    after, children = cpu_seconds(process)
    return after - before, children


@pytest.mark.parametrize("timeout", [4.0, 11.0])
def test_after_the_deadline_the_encoder_spends_nothing_on_the_call(
    encoder_process: tuple[psutil.Process, grpc.Channel], huge_png: bytes, timeout: float
) -> None:
    """The issue's case: 8192x8192 under a short deadline (4 s: while the size model looks
    at it; 11 s: while VVC codes it on this machine). :data:`GRACE` s after
    DEADLINE_EXCEEDED the service is idle and no ffmpeg is left."""
    process, chan = encoder_process
    stub = encoder_pb2_grpc.EncoderServiceStub(chan)
    with pytest.raises(grpc.RpcError) as failed:
        stub.Encode(encoder_pb2.EncodeRequest(image=huge_png, target_bpp=0.03), timeout=timeout)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    spent, children = _idle_after_the_call(process)
    assert children == []
    assert spent < 0.3, f"the encoder spent {spent:.2f} CPU-s on a call that had ended"


def test_a_cancelled_call_stops_its_work(
    encoder_process: tuple[psutil.Process, grpc.Channel], huge_png: bytes
) -> None:
    process, chan = encoder_process
    stub = encoder_pb2_grpc.EncoderServiceStub(chan)
    call = stub.Encode.future(encoder_pb2.EncodeRequest(image=huge_png, target_bpp=0.03))
    time.sleep(6.0)
    assert call.cancel()
    spent, children = _idle_after_the_call(process)
    assert children == []
    assert spent < 0.3, f"the encoder spent {spent:.2f} CPU-s on a cancelled call"


# --- limits on what arrives, answers sized before the work ---------------------------------


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[grpc.Channel, grpc.Channel]]:
    encoder, decoder = encoder_server.EncoderService(), decoder_server.DecoderService()
    enc = ServiceThread("encoder", config(), encoder.add_servicers, encoder.load).start()
    dec = ServiceThread(
        "decoder", config(max_message_bytes=MiB), decoder.add_servicers, decoder.load
    ).start()
    chans = channel(enc.address), channel(dec.address)
    for chan in chans:
        wait_until_serving(chan)
    yield chans
    enc.stop()
    dec.stop()


def _mask_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_mask_larger_than_its_image_is_refused_before_decoding(
    lite: Codec, services: tuple[grpc.Channel, grpc.Channel], astronaut: np.ndarray
) -> None:
    stub = encoder_pb2_grpc.EncoderServiceStub(services[0])
    image = png_bytes(astronaut[:256, :256])
    mask = _mask_png(12000, 12000)
    assert len(mask) < 40_000  # 144 megapixels in a small PNG: only its header is read
    hints = encoder_pb2.EncodeHints(
        objects=[encoder_pb2.ObjectHint(description="x", mask_png=mask)]
    )
    with pytest.raises(grpc.RpcError) as failed:
        stub.Encode(encoder_pb2.EncodeRequest(image=image, max_bytes=400, hints=hints))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "12000x12000, larger than the 256x256 image" in (failed.value.details() or "")
    # The same from Python, for a mask and for a segmentation map.
    with pytest.raises(ValueError, match="larger than"):
        lite.encode(
            astronaut[:64, :64], Budget(max_bytes=300), objects=[ObjectHint("x", np.ones((65, 64)))]
        )
    with pytest.raises(ValueError, match="segmentation map"):
        lite.encode(astronaut[:64, :64], Budget(max_bytes=300), segmap=np.zeros((64, 70), np.int64))


def test_a_budget_that_holds_no_picture_names_the_one_that_does(
    lite: Codec, services: tuple[grpc.Channel, grpc.Channel], astronaut: np.ndarray
) -> None:
    picture = astronaut[::8, ::8][:64, :64]
    stub = encoder_pb2_grpc.EncoderServiceStub(services[0])
    for budget in (
        encoder_pb2.EncodeRequest(max_bytes=30),
        encoder_pb2.EncodeRequest(target_bpp=0.03),
    ):
        budget.image = png_bytes(picture)
        with pytest.raises(grpc.RpcError) as failed:
            stub.Encode(budget)
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "holds no picture" in (failed.value.details() or "")
    with pytest.raises(BudgetError) as refused:
        lite.encode(picture, Budget(max_bytes=30))
    need = int(str(refused.value).split("raise max_bytes to at least ")[1].split()[0])
    fits = lite.encode(picture, Budget(max_bytes=need))
    assert [kind for kind, _ in fits.layer_bytes()] == ["reference"]
    assert lite.decode(fits.data).layers_used == ["reference"]


def test_semantics_only_is_asked_for_and_the_decoder_says_so(
    services: tuple[grpc.Channel, grpc.Channel], astronaut: np.ndarray
) -> None:
    enc = encoder_pb2_grpc.EncoderServiceStub(services[0])
    dec = decoder_pb2_grpc.DecoderServiceStub(services[1])
    request = encoder_pb2.EncodeRequest(
        image=png_bytes(astronaut[:64, :64]),
        max_bytes=30,
        semantics_only=True,
        hints=encoder_pb2.EncodeHints(caption="a woman"),
    )
    packet = enc.Encode(request).packet
    answer = dec.Decode(decoder_pb2.DecodeRequest(packet=packet))
    assert answer.stats.no_reference
    assert answer.caption == "a woman"
    full = enc.Encode(
        encoder_pb2.EncodeRequest(image=png_bytes(astronaut[:64, :64]), max_bytes=200)
    )
    assert not dec.Decode(decoder_pb2.DecodeRequest(packet=full.packet)).stats.no_reference


def test_a_raw_answer_too_large_to_send_is_refused_before_decoding(
    lite: Codec,
    services: tuple[grpc.Channel, grpc.Channel],
) -> None:
    picture = np.full((1024, 1024, 3), 90, np.uint8)  # 3 MiB as raw RGB; the server sends 1
    packet = lite.encode(picture, Budget(max_bytes=40), semantics_only=True).data
    dec = decoder_pb2_grpc.DecoderServiceStub(services[1])
    raw = decoder_pb2.DecodeOptions(format=decoder_pb2.IMAGE_FORMAT_RAW_RGB)
    with pytest.raises(grpc.RpcError) as failed:
        dec.Decode(decoder_pb2.DecodeRequest(packet=packet, options=raw))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ask for PNG or WebP" in (failed.value.details() or "")
    assert dec.Decode(decoder_pb2.DecodeRequest(packet=packet)).stats.width == 1024


def test_the_compose_demo_publishes_its_ports_on_localhost_by_default() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    published = [
        port for service in compose["services"].values() for port in service.get("ports", [])
    ]
    assert published
    for port in published:
        assert str(port).startswith("${SEMLINK_BIND:-127.0.0.1}:"), port


# --- memory: stated, and enforced before the work --------------------------------------


def test_a_picture_that_could_never_fit_the_memory_budget_is_refused_first() -> None:
    encoder = encoder_server.EncoderService()
    budget = ENCODE.bytes_for(1000, 1000)  # a megapixel fits, four do not
    enc = ServiceThread(
        "encoder", config(memory_budget=budget), encoder.add_servicers, encoder.load
    )
    enc.start()
    try:
        chan = channel(enc.address)
        wait_until_serving(chan)
        stub = encoder_pb2_grpc.EncoderServiceStub(chan)
        big = png_bytes(np.zeros((2000, 2000, 3), np.uint8))
        with pytest.raises(grpc.RpcError) as failed:
            stub.Encode(encoder_pb2.EncodeRequest(image=big, target_bpp=0.03))
        assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = failed.value.details() or ""
        assert "2000x2000 picture needs about" in details
        assert "pictures up to 1.0 megapixels fit (for example 1000x1000" in details
        small = png_bytes(np.full((600, 800, 3), 120, np.uint8))
        assert stub.Encode(encoder_pb2.EncodeRequest(image=small, target_bpp=0.03)).packet
    finally:
        enc.stop()


def test_the_budget_holds_a_request_back_until_it_fits() -> None:
    import asyncio

    async def scenario() -> list[str]:
        budget = MemoryBudget(100)
        order: list[str] = []
        await budget.acquire(70)

        async def second() -> None:
            await budget.acquire(50)
            order.append("second runs")
            await budget.release(50)

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        order.append("first ends")
        await budget.release(70)
        await waiting
        return order

    assert asyncio.run(scenario()) == ["first ends", "second runs"]
    with pytest.raises(OverBudget, match="more than this service's memory budget"):
        MemoryBudget(100).check(ENCODE, 4000, 4000, "encode")


def test_the_default_budget_keeps_a_service_inside_8_gib() -> None:
    """The defaults: the largest picture each service accepts fits the budget alone (it is
    served, never refused outright), two of them at once do not (the second waits), and
    the budget plus the process (0.6-0.9 GiB measured by bench/bench_memory.py) stays
    inside a 2-core, 8 GiB container."""
    from semlink.config import settings
    from semlink.packet import DEFAULT_LIMITS

    assert DEFAULT_MEMORY_BUDGET + GiB <= 8 * GiB
    for model, pixels in (
        (DECODE, settings().max_decode_pixels),
        (ENCODE, DEFAULT_LIMITS.max_pixels),
    ):
        assert model.bytes_for(pixels, 1) <= DEFAULT_MEMORY_BUDGET
        assert 2 * model.bytes_for(pixels, 1) > DEFAULT_MEMORY_BUDGET
        budget = MemoryBudget(DEFAULT_MEMORY_BUDGET)
        budget.check(model, pixels, 1, "code")  # not refused
