"""The demo: encoder, link and decoder as local processes, sample photos pushed through.

Each image goes Encode (edge) -> Transmit (emulated space link) -> Decode (ground),
over real gRPC on localhost, while every service exposes /metrics. Against services that
already run (compose, Kubernetes) it sends their bearer token and speaks TLS where
:class:`Credentials` say so; a service that refuses or cannot be reached ends the demo in a
:class:`DemoError` whose message names the service and says what to do.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
from numpy.typing import NDArray
from PIL import Image

from semlink.budget import DEFAULT_BPP
from semlink.quality import all_metrics

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


@dataclass(frozen=True)
class Credentials:
    """What services that require them are called with: the bearer token they check
    (``semlink serve --token-env``), and TLS (the CA that signed their certificates, a
    client certificate where they require one, the name their certificate holds where the
    address does not)."""

    token: str | None = None
    root_certificates: bytes | None = None
    client_cert: tuple[bytes, bytes] | None = None
    """(private key, certificate) as PEM."""
    tls_server_name: str | None = None

    @property
    def tls(self) -> bool:
        return self.root_certificates is not None or self.client_cert is not None


class DemoError(Exception):
    """A service refused the demo's call or could not be reached; the message is one
    sentence naming the service and saying what to do."""


@dataclass
class DemoRow:
    name: str
    bytes: int
    bpp: float
    airtime_s: float
    link_latency_s: float
    layers: str
    frames: str
    """Frames sent / dropped / retransmitted."""
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float
    end_to_end_s: float


def sample_images() -> dict[str, NDArray[np.uint8]]:
    """The photos that ship inside scikit-image (no download)."""
    return {name: getattr(skimage.data, name)() for name in SAMPLES}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalService:
    name: str
    port: int
    metrics_port: int
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def local_services(
    link: str, loss: float | None, log_dir: Path
) -> Iterator[dict[str, LocalService]]:
    """Start encoder, link and decoder processes on free ports; SIGTERM them on exit."""
    services: dict[str, LocalService] = {}
    try:
        for name in ("encoder", "link", "decoder"):
            port, metrics_port = free_port(), free_port()
            args = [
                sys.executable,
                "-m",
                f"services.{name}",
                "--port",
                str(port),
                "--metrics-port",
                str(metrics_port),
                "--grace",
                "10",
            ]
            if name == "link":
                args += ["--link", link] + (["--loss", str(loss)] if loss is not None else [])
            log = (log_dir / f"{name}.log").open("wb")
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            services[name] = LocalService(name, port, metrics_port, process)
        yield services
    finally:
        for service in services.values():
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in services.values():
            try:
                service.process.wait(20)
            except subprocess.TimeoutExpired:
                service.process.kill()


def run_demo(
    out: Path,
    bpp: float = DEFAULT_BPP,
    link: str = "leo",
    loss: float | None = None,
    announce: Callable[[str], object] = print,
    addresses: dict[str, str] | None = None,
    credentials: Credentials | None = None,
    wait: float = 120.0,
) -> list[DemoRow]:
    """Push the sample photos through the chain; write reconstructions and side-by-sides.

    Without ``addresses`` (encoder/link/decoder -> host:port) the three services are
    started here as local processes and stopped afterwards; ``credentials`` are for services
    that already run. Each service must report SERVING within ``wait`` seconds. Raises
    :class:`DemoError` when a service refuses a call or cannot be reached.
    """
    out.mkdir(parents=True, exist_ok=True)
    if addresses is not None:
        credentials = credentials or Credentials()
        return _push_samples(out, bpp, addresses, announce, credentials, wait, local=False)
    with local_services(link, loss, out) as services:
        urls = ", ".join(
            f"{n} http://127.0.0.1:{s.metrics_port}/metrics" for n, s in services.items()
        )
        announce(f"metrics: {urls}")
        addresses = {n: f"127.0.0.1:{s.port}" for n, s in services.items()}
        return _push_samples(out, bpp, addresses, announce, Credentials(), wait, local=True)


def _what_to_do(code: str | None, credentials: Credentials, log: Path | None) -> str:
    """The advice for a failed call's status ``code`` (its name; None: no answer at all).
    ``log``: the service's log, where the demo started it."""
    if log is not None:
        return f"its log says why: {log}"
    if code == "UNAUTHENTICATED":
        if credentials.token is None:
            return (
                "the services require a bearer token: pass it with --token-file FILE "
                "(Kubernetes: deploy/k8s/base/secrets/token) or --token-env VAR"
            )
        return "the token given is not the services' (Kubernetes: deploy/k8s/base/secrets/token)"
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", None):
        advice = "check the address and that the service runs (a port-forward still open?)"
        if credentials.tls:
            return advice + " and that --tls-ca signed its certificate (or give --tls-server-name)"
        return advice + "; if it serves TLS, pass the CA that signed its certificate: --tls-ca FILE"
    if code == "NOT_SERVING":
        return "it is still loading its models or shutting down; try again, or a longer --wait"
    if code == "PERMISSION_DENIED":
        return "check the token and the client certificate (--tls-cert, --tls-key)"
    return "the message says what it accepts"


@contextlib.contextmanager
def _calling(service: str, address: str, advice: Callable[[str], str]) -> Iterator[None]:
    """Turn a failed gRPC call to ``service`` into a :class:`DemoError`."""
    import grpc

    try:
        yield
    except grpc.RpcError as err:
        code = err.code().name
        raise DemoError(
            f"the {service} at {address} answered {code} ({err.details()}): {advice(code)}"
        ) from err


def _push_samples(
    out: Path,
    bpp: float,
    addresses: dict[str, str],
    announce: Callable[[str], object],
    credentials: Credentials,
    wait: float,
    local: bool,
) -> list[DemoRow]:
    from semlink.serving.client import (
        NotServingError,
        SemlinkClient,
        channel,
        image_of,
        wait_until_serving,
    )

    def advice(service: str) -> Callable[[str | None], str]:
        log = out / f"{service}.log" if local else None
        return lambda code: _what_to_do(code, credentials, log)

    chans = {
        name: channel(
            address,
            root_certificates=credentials.root_certificates,
            client_cert=credentials.client_cert,
            tls_server_name=credentials.tls_server_name,
        )
        for name, address in addresses.items()
    }
    for name, ch in chans.items():
        try:
            wait_until_serving(ch, timeout=wait)
        except NotServingError as err:
            raise DemoError(
                f"the {name} at {addresses[name]} did not report SERVING within {wait:g} s "
                f"({err.last}): {advice(name)(err.code)}"
            ) from err
    announce("encoder, link and decoder are SERVING")
    client = SemlinkClient(chans["encoder"], chans["decoder"], chans["link"], credentials.token)

    def calling(service: str) -> contextlib.AbstractContextManager[None]:
        return _calling(service, addresses[service], advice(service))

    rows = []
    for name, image in sample_images().items():
        start = time.perf_counter()
        with calling("encoder"):
            encoded = client.encode(image, target_bpp=bpp)
        (out / f"{name}.slk").write_bytes(encoded.packet)
        with calling("link"):
            sent = client.transmit(encoded.packet)
        decode_start = time.perf_counter()
        if sent.delivered:
            with calling("decoder"):
                decoded = client.decode(sent.delivered)
            reconstruction = image_of(decoded)
            decode_ms = 1000 * (time.perf_counter() - decode_start)
        else:  # even the header was lost: nothing to decode
            reconstruction = np.full_like(image, 128)
            decode_ms = 0.0
        end_to_end = time.perf_counter() - start
        metrics = all_metrics(image, reconstruction, with_niqe=False, with_perceptual=False)
        Image.fromarray(reconstruction).save(out / f"{name}-decoded.png")
        side_by_side = np.concatenate([image, reconstruction], axis=1)
        Image.fromarray(side_by_side).save(out / f"{name}-side-by-side.png")
        rows.append(
            DemoRow(
                name=name,
                bytes=len(encoded.packet),
                bpp=encoded.stats.bits_per_pixel,
                airtime_s=sent.stats.airtime_seconds,
                link_latency_s=sent.stats.latency_seconds,
                layers=f"{sent.stats.layers_delivered}/{sent.stats.layers_sent}",
                frames=f"{sent.stats.frames_sent}/{sent.stats.frames_dropped}/{sent.stats.frames_retransmitted}",
                psnr=metrics["psnr"],
                ms_ssim=metrics["ms_ssim"],
                encode_ms=1000 * sum(encoded.stats.stage_seconds.values()),
                decode_ms=decode_ms,
                end_to_end_s=end_to_end,
            )
        )
    return rows
