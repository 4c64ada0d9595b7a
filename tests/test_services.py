"""The services with real servers on localhost: chain, errors, health, metrics, shutdown, auth."""

from __future__ import annotations

import dataclasses
import datetime
import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from semlink.budget import Budget
from semlink.codec import Codec, Codecs
from semlink.demo import free_port
from semlink.link import get_link_profile
from semlink.packet import parse, serialize
from semlink.quality import psnr
from semlink.serving.client import SemlinkClient, channel, image_of, png_bytes, wait_until_serving
from semlink.streams.reference import ReferenceCodec
from semlink.v1 import decoder_pb2, decoder_pb2_grpc, packet_pb2
from services.decoder import server as decoder_server
from services.encoder import server as encoder_server
from services.link import server as link_server

from .servers import ServiceThread, config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def chain(codecs: Codecs) -> Iterator[tuple[ServiceThread, ServiceThread, ServiceThread]]:
    encoder, decoder = encoder_server.EncoderService(codecs), decoder_server.DecoderService(codecs)
    enc = ServiceThread("encoder", config(), encoder.add_servicers, encoder.load).start()
    dec = ServiceThread("decoder", config(), decoder.add_servicers, decoder.load).start()
    profile = get_link_profile("geo")
    lnk = ServiceThread(
        "link", config(), link_server.servicers_for(profile, realtime=False), link_server.load
    )
    lnk.start()
    for service in (enc, dec, lnk):
        wait_until_serving(channel(service.address))
    yield enc, dec, lnk
    for service in (enc, dec, lnk):
        service.stop()


@pytest.fixture(scope="module")
def client(chain: tuple[ServiceThread, ServiceThread, ServiceThread]) -> SemlinkClient:
    enc, dec, lnk = chain
    return SemlinkClient(channel(enc.address), channel(dec.address), channel(lnk.address))


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_encode_link_decode_end_to_end(client: SemlinkClient, chelsea: np.ndarray) -> None:
    encoded = client.encode(chelsea, target_bpp=0.03, caption="a tabby cat")
    assert encoded.stats.packet_bytes == len(encoded.packet) <= int(0.03 * chelsea.size / 3 / 8)
    assert encoded.stats.bits_per_pixel == pytest.approx(8 * len(encoded.packet) / (451 * 300))
    sent = client.transmit(encoded.packet, seed=7)
    assert sent.stats.layers_delivered == 2 and sent.delivered == encoded.packet
    assert sent.stats.airtime_seconds == pytest.approx(8 * sent.stats.bytes_sent / 32_000)
    assert sent.stats.latency_seconds >= 0.27 + sent.stats.airtime_seconds - 1e-9
    decoded = client.decode(sent.delivered)
    assert list(decoded.stats.layers_used) == ["reference", "caption"]
    assert decoded.caption == "a tabby cat"
    assert psnr(chelsea, image_of(decoded)) > 22


def test_decode_stream_sends_preview_then_final(
    lite: Codec, client: SemlinkClient, chelsea: np.ndarray
) -> None:
    packet = lite.encode(chelsea, Budget(max_bytes=500)).data
    assert client.decoder is not None
    stub = decoder_pb2_grpc.DecoderServiceStub(client.decoder)
    stages = [
        (r.stage, image_of(r.result).shape)
        for r in stub.DecodeStream(decoder_pb2.DecodeStreamRequest(packet=packet), timeout=30)
    ]
    assert [s for s, _ in stages] == [
        decoder_pb2.DECODE_STAGE_PREVIEW,
        decoder_pb2.DECODE_STAGE_FINAL,
    ]
    assert all(shape == chelsea.shape for _, shape in stages)


def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code(), info.value.details()


def test_decoder_errors_map_to_status_codes(
    lite: Codec, client: SemlinkClient, chelsea: np.ndarray
) -> None:
    good = lite.encode(chelsea, Budget(max_bytes=400)).data
    packet = parse(good)
    code, details = _code(lambda: client.decode(b"\xff\x00garbage"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a semlink packet" in details
    foreign = serialize(dataclasses.replace(packet, model_fingerprint=0xABCDEF01))
    code, details = _code(lambda: client.decode(foreign))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    lite_fingerprint = lite.models.fingerprint  # the decoder's models
    assert "0xabcdef01" in details and f"{lite_fingerprint:#010x}" in details
    damaged = bytearray(good)
    damaged[-12] ^= 0x10
    code, details = _code(lambda: client.decode(bytes(damaged)))
    assert code == grpc.StatusCode.DATA_LOSS and "CRC32C" in details
    newer = packet_pb2.Packet(format_version=3, size=64 | 64 << 16).SerializeToString()
    code, details = _code(lambda: client.decode(newer))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "version 3" in details
    # A VVC layer from an encoder configuration this decoder lacks (codec id 11 = version
    # 4) is refused, never decoded with other parameter sets into a wrong picture.
    reference = packet.layers[0]
    assert reference.codec == ReferenceCodec.VVC_FAST_UNFILTERED
    other = dataclasses.replace(reference, codec=int(ReferenceCodec.VVC_FAST_UNFILTERED) + 1)
    foreign_config = serialize(dataclasses.replace(packet, layers=(other, *packet.layers[1:])))
    code, details = _code(lambda: client.decode(foreign_config))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "VVC encoder configuration version 4" in details


def test_encoder_errors_map_to_status_codes(client: SemlinkClient) -> None:
    code, details = _code(lambda: client.encode(b"", max_bytes=500))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "empty" in details
    gif = io.BytesIO()
    Image.new("RGB", (32, 32)).save(gif, "GIF")
    code, details = _code(lambda: client.encode(gif.getvalue(), max_bytes=500))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "GIF is not accepted" in details
    code, details = _code(lambda: client.encode(b"\x89PNG\r\n\x1a\nbroken", max_bytes=500))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a readable" in details
    wide = png_bytes(np.zeros((2, 20000, 3), np.uint8))  # small file, too many columns
    code, details = _code(lambda: client.encode(wide, max_bytes=500))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "at most 16384" in details
    code, details = _code(
        lambda: client.encode(png_bytes(np.zeros((64, 64, 3), np.uint8)), max_bytes=3)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "at least" in details


def test_deadline_exceeded(client: SemlinkClient, astronaut: np.ndarray) -> None:
    code, _ = _code(lambda: client.encode(astronaut, target_bpp=0.03, timeout=0.05))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_overload_answers_resource_exhausted(astronaut: np.ndarray) -> None:
    encoder = encoder_server.EncoderService()
    busy = ServiceThread(
        "encoder", config(workers=1, max_waiting=0), encoder.add_servicers, encoder.load
    ).start()
    try:
        wait_until_serving(channel(busy.address))
        c = SemlinkClient(channel(busy.address))
        codes: list[grpc.StatusCode] = []

        def call() -> None:
            try:
                c.encode(astronaut, target_bpp=0.02)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                codes.append(err.code())

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert codes.count(grpc.StatusCode.OK) >= 1
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert scrape(busy.metrics_url)['semlink_queue_depth{service="encoder"}'] == 0
    finally:
        busy.stop()


def test_health_is_not_serving_until_models_load(chelsea: np.ndarray) -> None:
    loaded = threading.Event()

    async def slow_load() -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, loaded.wait, 30)

    encoder = encoder_server.EncoderService()
    svc = ServiceThread("encoder", config(), encoder.add_servicers, slow_load).start()
    try:
        ch = channel(svc.address)
        health = health_pb2_grpc.HealthStub(ch)
        status = health.Check(
            health_pb2.HealthCheckRequest(service="semlink.v1.EncoderService"), timeout=5
        )
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        code, details = _code(lambda: SemlinkClient(ch).encode(chelsea, max_bytes=400))
        assert code == grpc.StatusCode.UNAVAILABLE and "loading" in details
        loaded.set()
        wait_until_serving(ch, timeout=10)
        assert SemlinkClient(ch).encode(chelsea, max_bytes=400).stats.packet_bytes <= 400
    finally:
        loaded.set()
        svc.stop()


def test_reflection_lists_the_service(
    chain: tuple[ServiceThread, ServiceThread, ServiceThread],
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel(chain[0].address))
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    names = {s.name for s in response.list_services_response.service}
    assert "semlink.v1.EncoderService" in names and "grpc.health.v1.Health" in names


def test_metrics_move_by_the_right_amounts(
    chain: tuple[ServiceThread, ServiceThread, ServiceThread],
    client: SemlinkClient,
    chelsea: np.ndarray,
) -> None:
    enc, _, lnk = chain
    rpc = 'grpc_method="Encode",grpc_service="semlink.v1.EncoderService",grpc_type="unary"'
    before = scrape(enc.metrics_url)
    responses = [client.encode(chelsea, max_bytes=b, caption="a cat") for b in (400, 600)]
    _code(lambda: client.encode(b"", max_bytes=400))
    # The server counts a call as handled just after the client has its status: on a busy
    # machine a scrape can come first, so read until the counter has caught up (<= 5 s).
    handled = f'grpc_server_handled_total{{grpc_code="INVALID_ARGUMENT",{rpc}}}'
    for _ in range(50):
        after = scrape(enc.metrics_url)
        if after.get(handled, 0.0) > before.get(handled, 0.0):
            break
        time.sleep(0.1)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta(f"grpc_server_started_total{{{rpc}}}") == 3
    assert delta(f'grpc_server_handled_total{{grpc_code="OK",{rpc}}}') == 2
    assert delta(f'grpc_server_handled_total{{grpc_code="INVALID_ARGUMENT",{rpc}}}') == 1
    assert delta(f"grpc_server_handling_seconds_count{{{rpc}}}") == 3
    assert delta('semlink_packet_bytes_count{service="encoder"}') == 2
    assert delta('semlink_packet_bytes_sum{service="encoder"}') == sum(
        len(r.packet) for r in responses
    )
    reference = sum(
        layer.bytes for r in responses for layer in r.stats.layers if layer.kind == "reference"
    )
    assert delta('semlink_stream_bytes_total{service="encoder",stream="reference"}') == reference
    assert after['semlink_build_info{service="encoder",version="0.1.0"}'] == 1
    buckets = [k for k in after if k.startswith("grpc_server_handling_seconds_bucket")]
    assert any('le="60.0"' in k for k in buckets)
    link_before = scrape(lnk.metrics_url)
    sent = client.transmit(responses[0].packet, seed=3)
    link_after = scrape(lnk.metrics_url)
    key = 'semlink_link_frames_total{outcome="sent",profile="geo"}'
    assert link_after[key] - link_before.get(key, 0) == sent.stats.frames_sent
    key = 'semlink_link_airtime_seconds_sum{profile="geo"}'
    assert link_after[key] - link_before.get(key, 0) == pytest.approx(sent.stats.airtime_seconds)


def test_sigterm_finishes_the_in_flight_call(astronaut: np.ndarray) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.encoder",
            "--port",
            str(port),
            "--metrics-port",
            "-1",
            "--grace",
            "60",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ch = channel(f"127.0.0.1:{port}")
        wait_until_serving(ch, timeout=60)
        result: dict[str, object] = {}

        def call() -> None:
            try:
                result["response"] = SemlinkClient(ch).encode(
                    astronaut, target_bpp=0.05, timeout=120
                )
            except grpc.RpcError as err:
                result["error"] = err

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(1.0)  # the call is running: astronaut at 0.05 bpp takes seconds
        process.send_signal(signal.SIGTERM)
        thread.join(120)
        assert "error" not in result, result.get("error")
        response = result["response"]
        assert response.stats.packet_bytes > 0  # type: ignore[attr-defined]
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()


def _certificates(tmp: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def make(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, ca: bool):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer_name, issuer_key = issuer if issuer else (subject, key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), False
            )
        return key, builder.sign(issuer_key, hashes.SHA256())

    ca_key, ca_cert = make("semlink test CA", None, True)
    paths = {}
    for name, (key, cert) in {
        "ca": (ca_key, ca_cert),
        "server": make("localhost", (ca_cert.subject, ca_key), False),
        "client": make("ground-station", (ca_cert.subject, ca_key), False),
    }.items():
        paths[f"{name}.key"] = tmp / f"{name}.key"
        paths[f"{name}.crt"] = tmp / f"{name}.crt"
        paths[f"{name}.key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[f"{name}.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


def test_mtls_and_bearer_token(tmp_path: Path, chelsea: np.ndarray) -> None:
    certs = _certificates(tmp_path)
    cfg = config(
        tls_cert=certs["server.crt"],
        tls_key=certs["server.key"],
        tls_client_ca=certs["ca.crt"],
        token="s3cret",
    )
    encoder = encoder_server.EncoderService()
    svc = ServiceThread("encoder", cfg, encoder.add_servicers, encoder.load).start()
    try:
        address = f"localhost:{svc.running.port}"  # type: ignore[union-attr]
        ca = certs["ca.crt"].read_bytes()
        client_pair = (certs["client.key"].read_bytes(), certs["client.crt"].read_bytes())
        secure = channel(address, root_certificates=ca, client_cert=client_pair)
        wait_until_serving(secure, timeout=30)  # health is open without a token
        code, details = _code(lambda: SemlinkClient(secure).encode(chelsea, max_bytes=400))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in details
        code, _ = _code(lambda: SemlinkClient(secure, token="wrong").encode(chelsea, max_bytes=400))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        ok = SemlinkClient(secure, token="s3cret").encode(chelsea, max_bytes=400)
        assert ok.stats.packet_bytes <= 400
        no_client_cert = channel(address, root_certificates=ca)
        code, _ = _code(
            lambda: SemlinkClient(no_client_cert, token="s3cret").encode(
                chelsea, max_bytes=400, timeout=5
            )
        )
        assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        plaintext = channel(address)
        code, _ = _code(
            lambda: SemlinkClient(plaintext, token="s3cret").encode(
                chelsea, max_bytes=400, timeout=5
            )
        )
        assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        svc.stop()
    assert os.environ.get("SEMLINK_TOKEN") is None  # nothing leaks into the environment


def test_decode_output_formats_carry_the_same_pixels(
    lite: Codec, client: SemlinkClient, chelsea: np.ndarray
) -> None:
    packet = lite.encode(chelsea, Budget(max_bytes=400)).data
    images = [
        image_of(client.decode(packet, image_format=f))
        for f in (
            decoder_pb2.IMAGE_FORMAT_PNG,
            decoder_pb2.IMAGE_FORMAT_WEBP,
            decoder_pb2.IMAGE_FORMAT_RAW_RGB,
        )
    ]
    assert all(np.array_equal(images[0], other) for other in images[1:])
