"""The demo: encoder, link and decoder as local processes, sample photos pushed through.

Each image goes Encode (edge) -> Transmit (emulated space link) -> Decode (ground),
over real gRPC on localhost, while every service exposes /metrics.
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
) -> list[DemoRow]:
    """Push the sample photos through the chain; write reconstructions and side-by-sides.

    Without ``addresses`` (encoder/link/decoder -> host:port) the three services are
    started here as local processes and stopped afterwards.
    """
    out.mkdir(parents=True, exist_ok=True)
    if addresses is not None:
        return _push_samples(out, bpp, addresses, announce)
    with local_services(link, loss, out) as services:
        urls = ", ".join(
            f"{n} http://127.0.0.1:{s.metrics_port}/metrics" for n, s in services.items()
        )
        announce(f"metrics: {urls}")
        return _push_samples(
            out, bpp, {n: f"127.0.0.1:{s.port}" for n, s in services.items()}, announce
        )


def _push_samples(
    out: Path, bpp: float, addresses: dict[str, str], announce: Callable[[str], object]
) -> list[DemoRow]:
    from semlink.serving.client import SemlinkClient, channel, image_of, wait_until_serving

    chans = {name: channel(address) for name, address in addresses.items()}
    for ch in chans.values():
        wait_until_serving(ch, timeout=120)
    announce("encoder, link and decoder are SERVING")
    client = SemlinkClient(chans["encoder"], chans["decoder"], chans["link"])
    rows = []
    for name, image in sample_images().items():
        start = time.perf_counter()
        encoded = client.encode(image, target_bpp=bpp)
        (out / f"{name}.slk").write_bytes(encoded.packet)
        sent = client.transmit(encoded.packet)
        decode_start = time.perf_counter()
        if sent.delivered:
            reconstruction = image_of(client.decode(sent.delivered))
            decode_ms = 1000 * (time.perf_counter() - decode_start)
        else:  # even the header was lost: nothing to decode
            reconstruction = np.full_like(image, 128)
            decode_ms = 0.0
        end_to_end = time.perf_counter() - start
        metrics = all_metrics(image, reconstruction, with_niqe=False)
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
