"""Hostile input that used to get a silent wrong answer (issue 13, point 5), in the library
and through real servers: budgets that are no number of bytes, unknown image formats, a
header claiming a huge picture, and tiny-model fingerprints that differed between CPUs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from typer.testing import CliRunner

from semlink.budget import Budget
from semlink.codec import BudgetError, Codec, Codecs, ObjectHint
from semlink.config import DEFAULT_MAX_DECODE_PIXELS, settings
from semlink.packet import (
    DEFAULT_LIMITS,
    Layer,
    Packet,
    PacketFormatError,
    PacketLimitError,
    parse,
    serialize,
)
from semlink.profiles import LITE
from semlink.resolver import Models
from semlink.serving.client import SemlinkClient, channel, image_of, wait_until_serving
from semlink.streams import LayerKind
from semlink.streams.text import _encode, encode_text
from semlink.v1 import decoder_pb2, decoder_pb2_grpc, encoder_pb2, encoder_pb2_grpc
from services.decoder import server as decoder_server
from services.encoder import server as encoder_server

from .servers import ServiceThread, config

REPO = Path(__file__).resolve().parents[1]

BAD_BPP = [math.inf, -math.inf, math.nan, 0.0, -0.03]


@pytest.fixture(scope="module")
def small(chelsea: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chelsea[:64, :96])


def _bomb(lite: Codec, width: int = 8192, height: int = 8192) -> bytes:
    """A packet of a few bytes whose header claims a width x height picture of ``lite``'s."""
    fingerprint = lite.models.fingerprint
    caption = Layer(LayerKind.CAPTION, 0, encode_text("a cat"))
    return serialize(Packet(width, height, LITE.id, fingerprint, 0, (caption,)))


# -- budgets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bpp", BAD_BPP, ids=str)
def test_a_target_bpp_that_is_not_positive_and_finite_is_refused(bpp: float) -> None:
    with pytest.raises(BudgetError, match=r"target_bpp is .*must be positive and finite"):
        Budget(target_bpp=bpp)


@pytest.mark.parametrize("max_bytes", [0, -1, -400])
def test_a_max_bytes_below_one_is_refused(max_bytes: int) -> None:
    with pytest.raises(BudgetError, match=f"max_bytes is {max_bytes}; it must be a positive"):
        Budget(max_bytes=max_bytes)


def test_a_fractional_max_bytes_is_refused() -> None:
    with pytest.raises(BudgetError, match="whole number of bytes"):
        fraction: Any = 400.5
        Budget(max_bytes=fraction)


def test_a_budget_is_one_of_bytes_or_bits_per_pixel_and_defaults_to_one() -> None:
    with pytest.raises(BudgetError, match="exactly one"):
        Budget(max_bytes=400, target_bpp=0.03)
    with pytest.raises(BudgetError, match="exactly one"):
        Budget()
    assert Budget.of() == Budget(target_bpp=0.03)
    assert Budget.of(max_bytes=400) == Budget(max_bytes=400)


def test_budgets_beyond_the_largest_packet_are_that_size(lite: Codec, small: np.ndarray) -> None:
    largest = DEFAULT_LIMITS.max_packet_bytes
    assert Budget(target_bpp=1e300).packet_bytes(100, 100) == largest  # was OverflowError
    assert Budget(max_bytes=2**32 - 1).packet_bytes(100, 100) == largest
    assert Budget(target_bpp=0.08).packet_bytes(100, 100) == 100
    # A budget past the largest packet gets the best picture, not a PacketLimitError.
    result = lite.encode(small, Budget(max_bytes=largest + 1))
    assert [kind for kind, _ in result.layer_bytes()] == ["reference"]
    assert len(result.data) <= largest


# -- text layers -----------------------------------------------------------------------------
def test_a_caption_or_description_over_the_text_limits_is_refused(
    lite: Codec, small: np.ndarray
) -> None:
    # "a " * 30000 used to code into a valid 120-byte layer that cost a decoder 4 s of CPU.
    budget = Budget(max_bytes=400)
    with pytest.raises(ValueError, match="at most 1024 symbols and 4096 UTF-8 bytes"):
        lite.encode(small, budget, caption="a " * 30000)
    with pytest.raises(ValueError, match="more than 1024 symbols"):
        lite.encode(small, budget, caption="a cat", objects=[ObjectHint("a " * 600)])


def test_a_text_layer_over_the_limits_is_refused_by_the_decoder(lite: Codec) -> None:
    fingerprint = lite.models.fingerprint
    long_caption = _encode("a " * 2000, max_symbols=10**6)  # what the old encoder wrote
    wire = serialize(
        Packet(96, 64, LITE.id, fingerprint, 0, (Layer(LayerKind.CAPTION, 0, long_caption),))
    )
    with pytest.raises(PacketFormatError, match="more than 1024 symbols"):
        lite.decode(wire)


# -- the picture size a header claims ---------------------------------------------------------
def test_a_header_claiming_a_huge_picture_is_refused_before_allocating(lite: Codec) -> None:
    bomb = _bomb(lite)
    assert len(bomb) < 40 and parse(bomb).width == 8192
    assert settings().max_decode_pixels == DEFAULT_MAX_DECODE_PIXELS == 4096 * 4096
    tracemalloc.start()
    try:
        with pytest.raises(PacketLimitError) as info:
            lite.decode(bomb)
        with pytest.raises(PacketLimitError):
            lite.decode_preview(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the grey picture alone would be 192 MiB
    message = str(info.value)
    assert "8192x8192" in message and str(4096 * 4096) in message
    assert "SEMLINK_MAX_DECODE_PIXELS" in message and "--max-pixels" in message


def test_the_decode_limit_is_configurable(lite: Codec, chelsea: np.ndarray) -> None:
    packet = lite.encode(chelsea, Budget(max_bytes=400)).data
    pixels = chelsea.shape[0] * chelsea.shape[1]
    assert lite.decode(packet, restorer=False, max_pixels=pixels).image.shape == chelsea.shape
    with pytest.raises(PacketLimitError, match=f"at most {pixels - 1} pixels"):
        lite.decode(packet, max_pixels=pixels - 1)
    # From the settings the models were built with (SEMLINK_MAX_DECODE_PIXELS).
    tight = Codec(Models(LITE, lite.models.settings.model_copy(update={"max_decode_pixels": 1000})))
    with pytest.raises(PacketLimitError, match="at most 1000 pixels"):
        tight.decode(packet)
    with pytest.raises(PacketLimitError, match="at most 1000 pixels"):
        tight.decode_preview(packet)
    # A picture within the limit, even one with no reference layer, still decodes.
    assert lite.decode(_bomb(lite, 40, 30), max_pixels=1200).image.shape == (30, 40, 3)
    with pytest.raises(PacketLimitError, match="40x30 picture"):
        lite.decode(_bomb(lite, 40, 30), max_pixels=1199)


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from semlink.config import Settings

    monkeypatch.setenv("SEMLINK_MAX_DECODE_PIXELS", "1234")
    assert Settings().max_decode_pixels == 1234


def test_serve_passes_max_pixels_to_the_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.cli import app
    from services.rayserve.run import app_args

    seen: list[int | None] = []
    monkeypatch.setattr(decoder_server, "main", lambda _config, limit=None: seen.append(limit))
    result = CliRunner().invoke(app, ["serve", "decoder", "--max-pixels", "1000"])
    assert result.exit_code == 0, result.output
    assert seen == [1000]
    refused = CliRunner().invoke(app, ["serve", "encoder", "--max-pixels", "1000"])
    assert refused.exit_code == 2 and "--max-pixels" in refused.output
    args = app_args("decoder", config(), max_decode_pixels=1000)
    assert args["replica_env"] == {"SEMLINK_MAX_DECODE_PIXELS": "1000"}  # Ray replicas
    assert "replica_env" not in app_args("decoder", config())


# -- through the services ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def services(codecs: Codecs) -> Iterator[tuple[SemlinkClient, str, str]]:
    """A client of a real encoder and decoder, the decoder's and the encoder's address."""
    encoder, decoder = encoder_server.EncoderService(codecs), decoder_server.DecoderService(codecs)
    enc = ServiceThread("encoder", config(), encoder.add_servicers, encoder.load).start()
    dec = ServiceThread("decoder", config(), decoder.add_servicers, decoder.load).start()
    for service in (enc, dec):
        wait_until_serving(channel(service.address))
    yield SemlinkClient(channel(enc.address), channel(dec.address)), dec.address, enc.address
    for service in (enc, dec):
        service.stop()


def _status(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code(), info.value.details()


def test_encode_rpc_refuses_budgets_that_are_not_positive_and_finite(
    services: tuple[SemlinkClient, str, str], small: np.ndarray
) -> None:
    client, _, _ = services
    for bpp in BAD_BPP:
        code, details = _status(lambda bpp=bpp: client.encode(small, target_bpp=bpp))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (bpp, code, details)
        assert "positive and finite" in details, details
    code, details = _status(lambda: client.encode(small, max_bytes=0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "max_bytes is 0" in details
    # The budget is refused before the image is read (this one is not an image at all).
    stub = encoder_pb2_grpc.EncoderServiceStub(client.encoder)
    request = encoder_pb2.EncodeRequest(image=b"not an image", target_bpp=math.inf)
    code, details = _status(lambda: stub.Encode(request, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "target_bpp is inf" in details
    huge = client.encode(small, target_bpp=1e300)  # finite: the largest packet's budget
    assert parse(huge.packet).layers[0].kind == LayerKind.REFERENCE


def test_decode_rpc_refuses_unknown_image_formats(
    services: tuple[SemlinkClient, str, str], lite: Codec, small: np.ndarray
) -> None:
    client, address, _ = services
    packet = lite.encode(small, Budget(max_bytes=300)).data
    stub = decoder_pb2_grpc.DecoderServiceStub(channel(address))
    unknown: tuple[Any, ...] = (99, -1, 4)  # proto3 enums are open: these reach the server
    for fmt in unknown:
        options = decoder_pb2.DecodeOptions(format=fmt)
        request = decoder_pb2.DecodeRequest(packet=packet, options=options)
        code, details = _status(lambda r=request: stub.Decode(r, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (fmt, code, details)
        assert f"options.format is {fmt}" in details
        for name in ("IMAGE_FORMAT_PNG = 1", "IMAGE_FORMAT_WEBP = 2", "IMAGE_FORMAT_RAW_RGB = 3"):
            assert name in details
        stream = decoder_pb2.DecodeStreamRequest(packet=packet, options=options)
        code, _ = _status(lambda r=stream: list(stub.DecodeStream(r, timeout=30)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    unspecified = client.decode(packet, image_format=decoder_pb2.IMAGE_FORMAT_UNSPECIFIED)
    assert unspecified.image.startswith(b"\x89PNG")  # 0 still means PNG
    assert image_of(unspecified).shape == small.shape


def test_decode_rpc_refuses_a_header_claiming_a_huge_picture(
    services: tuple[SemlinkClient, str, str], lite: Codec, small: np.ndarray
) -> None:
    client, _, _ = services
    code, details = _status(lambda: client.decode(_bomb(lite)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "8192x8192" in details and "SEMLINK_MAX_DECODE_PIXELS" in details
    assert "--max-pixels" in details
    packet = lite.encode(small, Budget(max_bytes=300)).data
    assert image_of(client.decode(packet)).shape == small.shape


def test_a_decoder_served_with_a_lower_limit_applies_it(lite: Codec, small: np.ndarray) -> None:
    limited = Codecs.from_settings(settings().model_copy(update={"max_decode_pixels": 1000}))
    decoder = decoder_server.DecoderService(limited)
    dec = ServiceThread("decoder", config(), decoder.add_servicers, decoder.load).start()
    try:
        wait_until_serving(channel(dec.address))
        client = SemlinkClient(decoder=channel(dec.address))
        packet = lite.encode(small, Budget(max_bytes=300)).data
        code, details = _status(lambda: client.decode(packet))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "at most 1000 pixels" in details
    finally:
        dec.stop()


# -- tiny-model fingerprints --------------------------------------------------------------------
_FINGERPRINT = """
from semlink.config import Settings
from semlink.profiles import SEDIC
from semlink.resolver import Resolver
print(hex(Resolver(Settings(tiny_models=True)).models(SEDIC).fingerprint))
"""


def test_tiny_model_fingerprints_are_the_same_on_every_cpu_capability() -> None:
    """sedic's tiny models are drawn from a seed in floating point, which the CPU's vector
    kernels round differently: the fingerprint covers the recipe, not those numbers."""

    def fingerprint(capability: str | None) -> str:
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        if capability is not None:
            env["ATEN_CPU_CAPABILITY"] = capability
        result = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT],
            cwd=REPO,
            env={**env, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert fingerprint("default") == fingerprint(None)  # None: the machine's best kernels


def test_architecture_digest_covers_recipe_and_shapes_not_values() -> None:
    import torch

    from semlink.models.weights import architecture_digest

    def net(width: int) -> torch.nn.Conv2d:
        return torch.nn.Conv2d(3, width, 3)

    model = net(4)
    before = architecture_digest("seed=0", model)
    with torch.no_grad():
        model.weight.mul_(1 + 1e-6)  # what another CPU's rounding does
    assert architecture_digest("seed=0", model) == before
    assert architecture_digest("seed=1", model) != before
    assert architecture_digest("seed=0", net(5)) != before


# -- hostile requests (issue 13.4): the right status, a message to act on, the service stays up --
def _png(width: int, height: int, body: bytes) -> bytes:
    """A PNG whose IHDR says ``width`` x ``height`` and whose IDAT is ``body``."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_hostile_requests_get_actionable_statuses_and_the_service_stays_up(
    services: tuple[SemlinkClient, str, str], lite: Codec, small: np.ndarray
) -> None:
    import dataclasses
    import zlib

    from semlink.serving.client import png_bytes

    client, address, encoder_address = services
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases: list[tuple[str, Any, grpc.StatusCode, str]] = [
        ("empty image", lambda: client.encode(b"", max_bytes=500), invalid, "empty"),
        (
            "truncated PNG",
            lambda: client.encode(png_bytes(small)[:200], max_bytes=500),
            invalid,
            "not a readable PNG",
        ),
        (
            "20000x20000 PNG header (decompression bomb)",
            lambda: client.encode(_png(20000, 20000, zlib.compress(bytes(1000))), max_bytes=500),
            invalid,
            "at most 16384 pixels a side",
        ),
        (
            "valid PNG header, garbage body",
            lambda: client.encode(_png(64, 64, b"garbage" * 50), max_bytes=500),
            invalid,
            "not a readable PNG",
        ),
        ("zero budget", lambda: client.encode(small, max_bytes=0), invalid, "max_bytes is 0"),
        (
            "negative budget",
            lambda: client.encode(small, target_bpp=-1.0),
            invalid,
            "positive and finite",
        ),
    ]
    stub = encoder_pb2_grpc.EncoderServiceStub(client.encoder)
    png = png_bytes(small)
    for profile, expected in (("nope", "nope"), ("LITE", "lite")):
        request = encoder_pb2.EncodeRequest(image=png, profile=profile, max_bytes=500)
        cases.append(
            (
                f"profile {profile!r}",
                lambda r=request: stub.Encode(r, timeout=60),
                invalid,
                expected,
            )
        )
    for realism in (-1.0, 2.0, math.nan):
        request = encoder_pb2.EncodeRequest(image=png, max_bytes=500, realism=realism)
        cases.append(
            (f"realism {realism}", lambda r=request: stub.Encode(r, timeout=60), invalid, "realism")
        )
    # A valid header whose layers are garbage behind valid CRCs reaches the layer decoders.
    # (Any bytes are a caption's arithmetic-coded stream: that one decodes to some text.)
    header = parse(lite.encode(small, Budget(max_bytes=300)).data)
    for kind in (LayerKind.REFERENCE, LayerKind.OBJECT, LayerKind.SEGMAP):
        codec = 8 if kind is LayerKind.REFERENCE else 0
        layer = Layer(int(kind), codec, b"\xff\x13garbage" * 9)
        data = serialize(dataclasses.replace(header, layers=(layer,)))
        cases.append(
            (
                f"valid header, garbage {kind.name.lower()} layer",
                lambda p=data: client.decode(p, timeout=120),
                invalid,
                kind.name.lower(),
            )
        )
    # Text over the text layer's limits: refused by the encoder, and by the decoder.
    cases.append(
        (
            "caption hint of 1,200 bytes, 2,401 symbols",
            lambda: client.encode(small, max_bytes=500, caption="a " * 600),
            invalid,
            "at most 1024 symbols",
        )
    )
    long_caption = Layer(int(LayerKind.CAPTION), 0, _encode("a " * 2000, max_symbols=10**6))
    data = serialize(dataclasses.replace(header, layers=(long_caption,)))
    cases.append(
        (
            "caption layer coding past the limits",
            lambda p=data: client.decode(p, timeout=120),
            invalid,
            "more than 1024 symbols",
        )
    )
    for what, call, code, hint in cases:
        got, details = _status(call)
        assert got == code, (what, got, details)
        assert hint.lower() in details.lower(), (what, details)
        print(f"{what}: {got.name}: {details[:150]}")

    # 50 MB payloads: refused by the servers' 32 MiB message limit (the client's is raised
    # so the bytes reach them).
    big = 50 * 10**6
    with channel(encoder_address, max_message_bytes=64 * 2**20) as enc:
        got, details = _status(lambda: SemlinkClient(enc).encode(bytes(big), max_bytes=500))
    assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details, details
    with channel(address, max_message_bytes=64 * 2**20) as dec:
        got, details = _status(lambda: SemlinkClient(decoder=dec).decode(bytes(big)))
    assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details, details

    # Both services still answer.
    for ch in (client.encoder, client.decoder):
        assert ch is not None
        wait_until_serving(ch, timeout=10)
    packet = client.encode(small, max_bytes=300).packet
    assert image_of(client.decode(packet)).shape == small.shape
