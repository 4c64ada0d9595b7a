"""The ``demo`` command: encoder, link and decoder services (started as
``python -m services.X`` processes, or already running, with their token and TLS) with
sample photos pushed through. A service that refuses or cannot be reached ends it in one
error line saying what to do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from semlink.budget import DEFAULT_BPP
from semlink.cli._common import _fail, console

if TYPE_CHECKING:
    from semlink.demo import Credentials


def demo_cmd(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Where reconstructions and logs go.")
    ] = Path("out/demo"),
    bpp: Annotated[float, typer.Option("--bpp", help="Target bits per pixel.")] = DEFAULT_BPP,
    link: Annotated[
        str, typer.Option("--link", help="Link profile: leo, geo, nb-ntn, 6g-urban.")
    ] = "leo",
    loss: Annotated[
        float | None, typer.Option("--loss", help="Override the link's frame loss.")
    ] = None,
    encoder: Annotated[str | None, typer.Option(help="Use a running encoder at HOST:PORT.")] = None,
    via: Annotated[
        str | None, typer.Option(help="Use a running link service at HOST:PORT.")
    ] = None,
    decoder: Annotated[str | None, typer.Option(help="Use a running decoder at HOST:PORT.")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="Running services: a file holding the bearer token they require "
            "(Kubernetes: deploy/k8s/base/secrets/token)."
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(
            help="Running services: the name of an environment variable holding the bearer "
            "token they require (as semlink serve --token-env)."
        ),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            help="Running services: the PEM CA that signed their certificates (enables TLS)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="Running services: a PEM client certificate, where they require one."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="Running services: the client certificate's PEM key.")
    ] = None,
    tls_server_name: Annotated[
        str | None,
        typer.Option(
            help="Running services: the name their certificates hold, where the address does not."
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option(min=0.0, help="Seconds each service may take to report SERVING.")
    ] = 120.0,
) -> None:
    """Run encoder, link and decoder services locally and push sample photos through them.

    With --encoder, --via and --decoder it uses services that already run (docker-compose,
    Kubernetes), with their bearer token (--token-file or --token-env) and TLS (--tls-ca)
    where they require them.
    """
    from semlink.demo import SAMPLES, DemoError, run_demo
    from semlink.link import LINK_PROFILES

    if link not in LINK_PROFILES:
        raise _fail(f"unknown link profile {link!r}; known: {', '.join(LINK_PROFILES)}")
    remote = (encoder, via, decoder)
    if any(remote) and not all(remote):
        raise _fail("give all of --encoder, --via and --decoder, or none")
    credentials = _credentials(token_file, token_env, tls_ca, tls_cert, tls_key, tls_server_name)
    addresses = None
    if encoder and via and decoder:
        addresses = {"encoder": encoder, "link": via, "decoder": decoder}
        console.print(
            f"using the encoder at {encoder}, link at {via} and decoder at {decoder}; "
            f"{len(SAMPLES)} photos at {bpp} bpp"
        )
    elif credentials is not None:
        raise _fail(
            "--token-file, --token-env and --tls-* are for services that already run: "
            "give --encoder, --via and --decoder too"
        )
    else:
        console.print(
            f"starting encoder, link ({link}) and decoder; {len(SAMPLES)} photos at {bpp} bpp"
        )
    try:
        rows = run_demo(
            out,
            bpp,
            link,
            loss,
            announce=console.print,
            addresses=addresses,
            credentials=credentials,
            wait=wait,
        )
    except DemoError as err:
        raise _fail(str(err)) from None
    table = Table(
        "image",
        "bytes",
        "bpp",
        "airtime s",
        "link s",
        "layers",
        "frames sent/lost/re-tx",
        "PSNR dB",
        "MS-SSIM",
        "encode ms",
        "decode ms",
        "end-to-end s",
    )
    for r in rows:
        table.add_row(
            r.name,
            str(r.bytes),
            f"{r.bpp:.4f}",
            f"{r.airtime_s:.3f}",
            f"{r.link_latency_s:.3f}",
            r.layers,
            r.frames,
            f"{r.psnr:.2f}",
            f"{r.ms_ssim:.4f}",
            f"{r.encode_ms:.0f}",
            f"{r.decode_ms:.0f}",
            f"{r.end_to_end_s:.2f}",
        )
    console.print(table)
    console.print(f"reconstructions, side-by-side images and service logs in {out}/")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _credentials(
    token_file: Path | None,
    token_env: str | None,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_server_name: str | None,
) -> Credentials | None:
    """The token and TLS material the options name, read and checked now (None: none given).
    A token is stripped of surrounding white space, as ``semlink serve`` strips its own."""
    from semlink.demo import Credentials

    if not any((token_file, token_env, tls_ca, tls_cert, tls_key, tls_server_name)):
        return None
    if token_file and token_env:
        raise _fail("give the token once: --token-file or --token-env")
    token = None
    if token_file:
        token = _read(token_file, "token file").decode(errors="replace").strip()
        if not token:
            raise _fail(f"the token file {token_file} is empty")
    elif token_env:
        token = os.environ.get(token_env, "").strip()
        if not token:
            raise _fail(f"environment variable {token_env} is empty or unset")
    if (tls_cert is None) != (tls_key is None):
        raise _fail("a client certificate needs both --tls-cert and --tls-key")
    client_cert = None
    if tls_cert is not None and tls_key is not None:
        client_cert = (_read(tls_key, "client key"), _read(tls_cert, "client certificate"))
    return Credentials(
        token=token,
        root_certificates=_read(tls_ca, "CA certificate") if tls_ca else None,
        client_cert=client_cert,
        tls_server_name=tls_server_name,
    )


def register(app: typer.Typer) -> None:
    """Add ``demo`` to APP as a top-level command."""
    app.command("demo")(demo_cmd)
