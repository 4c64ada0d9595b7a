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
from typing import Annotated

import typer

from semlink.cli import build_app
from semlink.cli._common import _fail, console


class Engine(StrEnum):
    process = "process"
    ray = "ray"


class ServiceKind(StrEnum):
    encoder = "encoder"
    decoder = "decoder"
    link = "link"


def serve_cmd(
    service: Annotated[ServiceKind, typer.Argument(help="Which service to run.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="gRPC port.")] = 50051,
    metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics port (-1 = off).")] = 9100,
    workers: Annotated[int, typer.Option(help="Requests computed at once.")] = 2,
    max_waiting: Annotated[
        int, typer.Option(help="Waiting requests before RESOURCE_EXHAUSTED.")
    ] = 8,
    grace: Annotated[float, typer.Option(help="Seconds SIGTERM waits for in-flight calls.")] = 30.0,
    memory_budget_gib: Annotated[
        float,
        typer.Option(
            help="Memory the requests in flight may hold together, in GiB (0 = no limit). "
            "Each reserves its picture's estimate first; one that could never fit gets "
            "RESOURCE_EXHAUSTED saying how large a picture fits."
        ),
    ] = 6.0,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (enables TLS).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key.")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="PEM CA: require client certs (mTLS).")
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(help="Name of an environment variable holding a bearer token to require."),
    ] = None,
    link: Annotated[str, typer.Option(help="Link profile (link service).")] = "leo",
    loss: Annotated[
        float | None, typer.Option(help="Override: Bernoulli frame loss (link).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Override: channel rate in bit/s (link).")
    ] = None,
    realtime: Annotated[
        bool, typer.Option(help="Link: hold each reply for the emulated latency.")
    ] = True,
    engine: Annotated[
        Engine,
        typer.Option(
            help="process: this process computes; ray: replicas on a Ray cluster behind a "
            "gRPC gateway on --port (encoder, decoder)."
        ),
    ] = Engine.process,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray: cluster to join (auto, host:6379); default starts a local one."),
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, help="Ray: replicas (autoscaling minimum).")] = 1,
    max_replicas: Annotated[
        int | None,
        typer.Option(help="Ray: autoscale on ongoing requests up to this many replicas."),
    ] = None,
    replica_cpus: Annotated[float, typer.Option(help="Ray: CPUs per replica.")] = 1.0,
    replica_gpus: Annotated[
        float, typer.Option(help="Ray: GPUs per replica (fractions share one).")
    ] = 0.0,
    max_batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="Ray, decoder: Decode calls a replica computes together (lite's restorer "
            "runs once per batch; 1 = no batching).",
        ),
    ] = 1,
    batch_wait_timeout: Annotated[
        float,
        typer.Option(
            min=0.0, help="Ray, decoder: seconds a batch that is not full waits for more calls."
        ),
    ] = 0.01,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Decoder: largest picture (width x height) a packet may claim; larger ones "
            "get INVALID_ARGUMENT before anything is allocated (default: "
            "SEMLINK_MAX_DECODE_PIXELS, 16777216 = 4096x4096).",
        ),
    ] = None,
) -> None:
    """Run a gRPC service until SIGTERM (then drain in-flight calls)."""
    import os

    from semlink.serving import ServerConfig

    # Secrets mounted from files often end in a newline: it is never part of the token.
    token = ((os.environ.get(token_env) or "").strip() or None) if token_env else None
    if token_env and not token:
        raise _fail(f"environment variable {token_env} is empty or unset")
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
        token=token,
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
        return
    if service is ServiceKind.encoder:
        from services.encoder.server import main as encoder_main

        encoder_main(config)
    elif service is ServiceKind.decoder:
        from services.decoder.server import main as decoder_main

        decoder_main(config, max_pixels)
    else:
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
