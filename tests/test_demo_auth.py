"""`semlink demo` against running services that require a bearer token (and TLS), as the
Kubernetes pods do: real servers on localhost with the material `tools/k8s_secrets.py`
writes, the demo run as the console script runs it (a subprocess). Without the token, or
the CA of a TLS server, or anything listening, it ends in one error line that names the
option to pass, non-zero, no traceback; with them it goes through."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semlink.cli import app
from semlink.codec import Codecs
from semlink.demo import SAMPLES, free_port
from semlink.link import get_link_profile
from semlink.serving.client import channel, wait_until_serving
from services.decoder import server as decoder_server
from services.encoder import server as encoder_server
from services.link import server as link_server

from .servers import ServiceThread, config

REPO = Path(__file__).resolve().parents[1]
Chain = dict[str, ServiceThread]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """token, ca.crt, tls.crt, tls.key: what the recipe's first step writes."""
    directory = tmp_path_factory.mktemp("secrets")
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "k8s_secrets.py"), str(directory)],
        check=True,
        capture_output=True,
    )
    return directory


def _chain(codecs: Codecs, **server: object) -> Iterator[Chain]:
    encoder, decoder = encoder_server.EncoderService(codecs), decoder_server.DecoderService(codecs)
    profile = get_link_profile("leo")
    chain = {
        "encoder": ServiceThread("encoder", config(**server), encoder.add_servicers, encoder.load),
        "link": ServiceThread(
            "link",
            config(**server),
            link_server.servicers_for(profile, realtime=False),
            link_server.load,
        ),
        "decoder": ServiceThread("decoder", config(**server), decoder.add_servicers, decoder.load),
    }
    try:
        for service in chain.values():
            service.start()
        yield chain
    finally:
        for service in chain.values():
            if service.running is not None:
                service.stop()


@pytest.fixture(scope="module")
def with_token(tiny: Codecs, secrets: Path) -> Iterator[Chain]:
    """The base overlay's pods: plaintext gRPC, the Secret's token required."""
    yield from _chain(tiny, token=(secrets / "token").read_text().strip())


@pytest.fixture(scope="module")
def with_tls(tiny: Codecs, secrets: Path) -> Iterator[Chain]:
    """The tls component's pods: the token over TLS, the certificate tools/k8s_secrets signs."""
    yield from _chain(
        tiny,
        token=(secrets / "token").read_text().strip(),
        tls_cert=secrets / "tls.crt",
        tls_key=secrets / "tls.key",
    )


def demo(
    chain: Chain | None, out: Path, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``semlink demo --encoder --via --decoder OPTIONS`` as the console script runs it."""
    if chain is None:  # nothing listens there
        port = free_port()
        addresses = {name: f"127.0.0.1:{port}" for name in ("encoder", "link", "decoder")}
    else:
        addresses = {name: service.address for name, service in chain.items()}
    remote = ("--encoder", addresses["encoder"], "--via", addresses["link"])
    remote += ("--decoder", addresses["decoder"])
    return subprocess.run(
        [sys.executable, "-m", "services.script", "demo", "--out", str(out), *remote, *options],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def fails_in_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Non-zero, one ``error:`` line holding EXPECTED, no traceback; returns that line."""
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert errors[0] == output.strip().splitlines()[-1], output  # the last word, nothing after
    for text in expected:
        assert text in errors[0], output
    return errors[0]


def goes_through(done: subprocess.CompletedProcess[str], out: Path) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "error" not in output.lower(), output
    for name in SAMPLES:
        assert name in done.stdout, output  # its row in the table
        assert (out / f"{name}.slk").stat().st_size > 0
        assert (out / f"{name}-decoded.png").exists()


def test_without_the_token_the_demo_says_to_pass_it(with_token: Chain, tmp_path: Path) -> None:
    line = fails_in_one_line(
        demo(with_token, tmp_path),
        "the encoder at 127.0.0.1:",
        "UNAUTHENTICATED",
        "--token-file",
        "deploy/k8s/base/secrets/token",
        "--token-env",
    )
    assert "bearer token" in line
    assert not list(tmp_path.glob("*-decoded.png"))


def test_a_wrong_token_is_called_wrong(with_token: Chain, tmp_path: Path) -> None:
    wrong = tmp_path / "token"
    wrong.write_text("not-the-token\n")
    fails_in_one_line(
        demo(with_token, tmp_path / "out", "--token-file", str(wrong)),
        "UNAUTHENTICATED",
        "the token given is not the services'",
    )


@pytest.mark.slow
def test_with_the_token_file_the_demo_goes_through(
    with_token: Chain, secrets: Path, tmp_path: Path
) -> None:
    goes_through(demo(with_token, tmp_path, "--token-file", str(secrets / "token")), tmp_path)


def test_tls_without_its_ca_says_to_pass_it(with_tls: Chain, secrets: Path, tmp_path: Path) -> None:
    line = fails_in_one_line(
        demo(with_tls, tmp_path, "--token-file", str(secrets / "token"), "--wait", "3"),
        "did not report SERVING within 3 s",
        "UNAVAILABLE",
        "--tls-ca",
    )
    assert "the encoder at 127.0.0.1:" in line


@pytest.mark.slow
def test_the_token_from_an_environment_variable_over_tls(
    with_tls: Chain, secrets: Path, tmp_path: Path
) -> None:
    token = (secrets / "token").read_text()
    options = ("--token-env", "AUTH_TOKEN", "--tls-ca", str(secrets / "ca.crt"))
    goes_through(demo(with_tls, tmp_path, *options, env={"AUTH_TOKEN": token}), tmp_path)


def test_nothing_listening_says_to_check_the_address(tmp_path: Path) -> None:
    fails_in_one_line(
        demo(None, tmp_path, "--wait", "1"),
        "the encoder at 127.0.0.1:",
        "did not report SERVING within 1 s",
        "check the address",
    )


def test_health_stays_open_without_the_token(with_token: Chain) -> None:
    """What lets the demo tell "not running" from "no token": health answers without it."""
    for service in with_token.values():
        wait_until_serving(channel(service.address), timeout=10)


runner = CliRunner()
REMOTE = ["--encoder", "a:1", "--via", "b:2", "--decoder", "c:3"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--token-file", "{tmp}/token"], "give --encoder, --via and --decoder too"),
        (
            [*REMOTE, "--token-file", "{tmp}/token", "--token-env", "AUTH_TOKEN"],
            "give the token once",
        ),
        ([*REMOTE, "--token-file", "{tmp}/none"], "cannot read the token file"),
        ([*REMOTE, "--token-file", "{tmp}/empty"], "is empty"),
        (
            [*REMOTE, "--token-env", "NO_SUCH_VAR"],
            "environment variable NO_SUCH_VAR is empty or unset",
        ),
        ([*REMOTE, "--tls-cert", "{tmp}/token"], "needs both --tls-cert and --tls-key"),
    ],
)
def test_the_credential_options_are_checked_before_any_call(
    options: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo ran before its options were checked")

    monkeypatch.setattr("semlink.demo.run_demo", refuse)
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "empty").write_text("\n")
    args = ["demo", "--out", str(tmp_path / "out")] + [o.format(tmp=tmp_path) for o in options]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in result.output, result.output
