"""The ``serve`` command and the ``semlink`` command line.

``semlink serve encoder|decoder|link [options]`` runs one gRPC service until SIGTERM;
``python -m services.<name> [options]`` is the same command (``serve_main``). ``app`` is the
library's command line (``semlink.cli.build_app``) with ``serve`` added: the library never
imports services/, so the wiring lives here. The servers are imported inside the command.
The console script (``services.script``) answers a plain ``semlink info PACKET`` without
typer and hands every other command line to ``app``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from semlink.cli import build_app
from semlink.cli._common import _fail, console

if TYPE_CHECKING:
    from semlink.serving import ServerConfig


class Engine(StrEnum):
    process = "process"
    ray = "ray"


class ServiceKind(StrEnum):
    encoder = "encoder"
    decoder = "decoder"
    link = "link"


# The serve command's options, one type each (their help is what `semlink serve --help` shows).
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="gRPC port.")]
MetricsPort = Annotated[int, typer.Option(help="Prometheus /metrics port (-1 = off).")]
Workers = Annotated[int, typer.Option(help="Requests computed at once.")]
MaxWaiting = Annotated[int, typer.Option(help="Waiting requests before RESOURCE_EXHAUSTED.")]
Grace = Annotated[float, typer.Option(help="Seconds SIGTERM waits for in-flight calls.")]
MemoryBudget = Annotated[
    float,
    typer.Option(
        help="Memory the requests in flight may hold together, in GiB (0 = no limit). "
        "Each reserves its picture's estimate first; one that could never fit gets "
        "RESOURCE_EXHAUSTED saying how large a picture fits."
    ),
]
TlsCert = Annotated[Path | None, typer.Option(help="PEM certificate (enables TLS).")]
TlsKey = Annotated[Path | None, typer.Option(help="PEM private key.")]
TlsClientCa = Annotated[Path | None, typer.Option(help="PEM CA: require client certs (mTLS).")]
TokenEnv = Annotated[
    str | None,
    typer.Option(help="Name of an environment variable holding a bearer token to require."),
]
Link = Annotated[str, typer.Option(help="Link profile (link service).")]
Loss = Annotated[float | None, typer.Option(help="Override: Bernoulli frame loss (link).")]
Rate = Annotated[float | None, typer.Option(help="Override: channel rate in bit/s (link).")]
Realtime = Annotated[bool, typer.Option(help="Link: hold each reply for the emulated latency.")]
EngineOption = Annotated[
    Engine,
    typer.Option(
        help="process: this process computes; ray: replicas on a Ray cluster behind a "
        "gRPC gateway on --port (encoder, decoder)."
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(help="Ray: cluster to join (auto, host:6379); default starts a local one."),
]
Replicas = Annotated[int, typer.Option(min=1, help="Ray: replicas (autoscaling minimum).")]
MaxReplicas = Annotated[
    int | None, typer.Option(help="Ray: autoscale on ongoing requests up to this many replicas.")
]
ReplicaCpus = Annotated[float, typer.Option(help="Ray: CPUs per replica.")]
ReplicaGpus = Annotated[float, typer.Option(help="Ray: GPUs per replica (fractions share one).")]
MaxBatchSize = Annotated[
    int,
    typer.Option(
        min=1,
        help="Ray, decoder: Decode calls a replica computes together (lite's restorer "
        "runs once per batch; 1 = no batching).",
    ),
]
BatchWaitTimeout = Annotated[
    float,
    typer.Option(
        min=0.0, help="Ray, decoder: seconds a batch that is not full waits for more calls."
    ),
]
MaxPixels = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Decoder: largest picture (width x height) a packet may claim; larger ones "
        "get INVALID_ARGUMENT before anything is allocated (default: "
        "SEMLINK_MAX_DECODE_PIXELS, 16777216 = 4096x4096).",
    ),
]


def serve_cmd(
    service: Annotated[ServiceKind, typer.Argument(help="Which service to run.")],
    host: Host = "127.0.0.1",
    port: Port = 50051,
    metrics_port: MetricsPort = 9100,
    workers: Workers = 2,
    max_waiting: MaxWaiting = 8,
    grace: Grace = 30.0,
    memory_budget_gib: MemoryBudget = 6.0,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_client_ca: TlsClientCa = None,
    token_env: TokenEnv = None,
    link: Link = "leo",
    loss: Loss = None,
    rate: Rate = None,
    realtime: Realtime = True,
    engine: EngineOption = Engine.process,
    ray_address: RayAddress = None,
    replicas: Replicas = 1,
    max_replicas: MaxReplicas = None,
    replica_cpus: ReplicaCpus = 1.0,
    replica_gpus: ReplicaGpus = 0.0,
    max_batch_size: MaxBatchSize = 1,
    batch_wait_timeout: BatchWaitTimeout = 0.01,
    max_pixels: MaxPixels = None,
) -> None:
    """Run a gRPC service until SIGTERM (then drain in-flight calls)."""
    from semlink.serving import ServerConfig

    config = ServerConfig(
        host=host,
        port=port,
        metrics_port=None if metrics_port < 0 else metrics_port,
        workers=workers,
        max_waiting=max_waiting,
        grace_seconds=grace,
        memory_budget=round(memory_budget_gib * 2**30) if memory_budget_gib > 0 else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        token=_token(token_env),
    )
    if max_pixels is not None and service is not ServiceKind.decoder:
        raise _fail("--max-pixels bounds what the decoder allocates: serve decoder with it")
    console.print(f"semlink {service.value} on {host}:{port}, metrics on {metrics_port}")
    if engine is Engine.ray:
        if service is ServiceKind.link:
            raise _fail("--engine ray serves the encoder and the decoder; run link as a process")
        from services.rayserve.run import main as ray_main

        ray_main(
            service.value,
            config,
            ray_address,
            replicas=replicas,
            max_replicas=max_replicas,
            num_cpus=replica_cpus,
            num_gpus=replica_gpus,
            max_decode_pixels=max_pixels,
            max_batch_size=max_batch_size,
            batch_wait_timeout_s=batch_wait_timeout,
        )
    elif service is ServiceKind.link:
        _serve_link(config, link, loss, rate, realtime)
    else:
        _serve_process(service, config, max_pixels)


def _token(token_env: str | None) -> str | None:
    """The bearer token in environment variable ``token_env`` (None: no token). Secrets
    mounted from files often end in a newline: it is never part of the token."""
    import os

    token = ((os.environ.get(token_env) or "").strip() or None) if token_env else None
    if token_env and not token:
        raise _fail(f"environment variable {token_env} is empty or unset")
    return token


def _serve_process(service: ServiceKind, config: ServerConfig, max_pixels: int | None) -> None:
    """The encoder or the decoder in this process (its main builds its codecs)."""
    if service is ServiceKind.encoder:
        from services.encoder.server import main as encoder_main

        encoder_main(config)
    else:
        from services.decoder.server import main as decoder_main

        decoder_main(config, max_pixels)


def _serve_link(
    config: ServerConfig, link: str, loss: float | None, rate: float | None, realtime: bool
) -> None:
    """The link emulator in this process, on ``link``'s profile with the overrides given."""
    from semlink.link import LossModel, get_link_profile
    from services.link.server import main as link_main

    try:
        profile = get_link_profile(link)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from exc
    profile = profile.with_overrides(
        rate_bps=rate, loss=LossModel.bernoulli(loss) if loss is not None else None
    )
    link_main(config, profile, realtime)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to APP as a top-level command."""
    app.command("serve")(serve_cmd)


app = build_app()
"""The ``semlink`` command line: the library's commands and ``serve``."""
register(app)


def serve_main(service: str) -> None:
    """Entry point of ``python -m services.<service>``."""
    app(["serve", service, *sys.argv[1:]])


if __name__ == "__main__":
    app()
