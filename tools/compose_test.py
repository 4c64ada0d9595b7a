"""`make compose-test`: the docker-compose demo stack, built, started, checked and removed.

1. Installs Docker's engine and docker-compose with apt-get (Debian's docker.io and
   docker-compose 1.29) when they are missing, and starts `dockerd --iptables=false` when no
   daemon answers (stopped again at the end).
2. Builds the images with BuildKit: encoder (which also runs the link emulator and the demo
   client) and decoder (cpu target). Where the public bases or the PyTorch CPU index cannot be
   reached it passes build arguments instead: a stand-in base image (Debian bookworm minbase
   with python3 3.11, made with mmdebstrap and `docker import`), the local CPU torch wheel, the
   local package directories that pip's configuration names (served read-only on 127.0.0.1
   while the images build) and pip's CA bundle as a build secret.
3. `docker-compose --profile cpu up -d`, then waits for every service's healthcheck (the gRPC
   probe for the semlink services).
4. Pushes the demo photos through Encode -> link -> Decode from this machine over the
   published ports, checks the decoded pictures (PSNR against the originals; the same packet
   decoded in this process must give the same picture within 0.1 dB) and that the packets
   equal what the encoder gives in this process.
5. Checks that Prometheus reports every scrape target up and that the semlink metrics moved
   (a stand-in image from Debian's prometheus package where the public one cannot be pulled).
6. Grafana cannot be installed here: its provisioning files are validated instead (before
   anything runs, with the check that the two Dockerfiles still share their torch layers).
7. `docker-compose down -v` and a check that no container, network or volume is left; then
   `docker-compose --profile gpu config` must render the GPU stack.

Prints image sizes, build and start-up times. Logs go to out/compose-test/.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.compose.engine import docker, ensure_daemon, ensure_engine, pullable, stop_daemon
from tools.compose.images import (
    IMAGES,
    PUBLIC_BASE,
    STANDIN_BASE,
    STANDIN_PROMETHEUS,
    build,
    check_lean,
    demo_client_runs,
    standin_image,
)
from tools.compose.inputs import local_package_dirs, pip_config, serve_package_dirs, torch_pip
from tools.compose.probes import check_targets, metric_values, push_photos, wait_metrics_moved
from tools.compose.report import Report, print_table
from tools.compose.shell import OUT, T0, run, say
from tools.compose.stack import (
    COMPOSE_FILE,
    check_gpu_config,
    compose,
    container_of,
    dangling_volumes,
    leftovers,
    wait_healthy,
)
from tools.compose.static import dockerfile_args, layer_sharing, validate_grafana

__all__ = ["IMAGES", "dockerfile_args", "layer_sharing", "main", "validate_grafana"]


def check_static(report: Report) -> None:
    """What needs no Docker: the two Dockerfiles still share their torch layers, and Grafana
    (it cannot be installed here) is provisioned right."""
    drift = layer_sharing()
    if drift:
        raise SystemExit(
            "services/encoder/Dockerfile ~ services/decoder/Dockerfile: " + "; ".join(drift)
        )
    problems = validate_grafana()
    if problems:
        raise SystemExit("Grafana provisioning: " + "; ".join(problems))
    say(
        "Grafana: provisioning valid (dashboards load as JSON, datasource -> prometheus:9090); "
        "Grafana itself is not started: it cannot be installed here"
    )
    report.notes.append("grafana skipped (cannot be installed here); provisioning validated")


def bases(report: Report) -> tuple[dict[str, str], dict[str, str]]:
    """(build arguments, compose environment) naming stand-in images for the Python base and
    for Prometheus where the public ones cannot be pulled."""
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    if not pullable(PUBLIC_BASE):
        args["BASE_IMAGE"] = standin_image(
            STANDIN_BASE,
            ["python3", "python3-pip", "python3-venv", "ca-certificates"],
            [],
            report,
        )
        report.notes.append(f"{PUBLIC_BASE} cannot be pulled: built on {STANDIN_BASE}")
    public_prometheus = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prometheus"]["image"]
    public_prometheus = re.sub(r"\$\{PROMETHEUS_IMAGE:-(.*)\}", r"\1", public_prometheus)
    if not pullable(public_prometheus):
        env["PROMETHEUS_IMAGE"] = standin_image(
            STANDIN_PROMETHEUS,
            ["prometheus", "wget", "ca-certificates"],
            [
                'ENTRYPOINT ["/usr/bin/prometheus"]',
                'CMD ["--config.file=/etc/prometheus/prometheus.yml", '
                '"--storage.tsdb.path=/prometheus"]',
                "EXPOSE 9090",
            ],
            report,
        )
        report.notes.append(
            f"{public_prometheus} cannot be pulled: Debian's prometheus "
            f"package in {STANDIN_PROMETHEUS}"
        )
    return args, env


def build_images(args: dict[str, str], no_cache: bool, report: Report) -> None:
    """The semlink images, with torch, pip's local folders and its CA bundle as this machine
    can give them."""
    config = pip_config()
    dirs = local_package_dirs(config)
    torch, why = torch_pip(dirs)
    say(f"torch for the images: {why}")
    secret = Path(config["cert"][0]) if config.get("cert") else None
    if secret is not None:
        say(f"pip's CA bundle {secret} goes to the builds as the secret pip_ca")
    with serve_package_dirs(dirs if torch is not None else []) as pip_extra:
        if torch is not None:
            args["TORCH_PIP"] = torch
        if pip_extra:
            args["PIP_EXTRA"] = " ".join(pip_extra)
            say(f"local package folders served to the builds: {[str(p) for _, p in dirs]}")
        for i, (image, (dockerfile, target)) in enumerate(IMAGES.items()):
            # --no-cache: the first image from scratch; the next ones share its layers
            cold = no_cache and i == 0
            build(image, dockerfile, target, args, secret, report, cold)


def exercise(services: list[str], env: dict[str, str], started: float, report: Report) -> None:
    """The stack is up: wait for health, push the photos, check Prometheus and the demo."""
    wait_healthy([s for s in services if s != "demo"], env, started, report)
    check_targets({"semlink-encoder", "semlink-link", "semlink-decoder"})
    time.sleep(6)  # one scrape interval after the probes
    before = metric_values()
    say("pushing the demo photos from this machine over the published ports")
    push_photos(report)
    wait_metrics_moved(before, len(report.rows))
    if "demo" in services:
        cid = container_of("demo", env)
        code = run([docker(), "wait", cid], capture=True, timeout=600).stdout.strip()
        if code != "0":
            raise SystemExit(f"the demo client container exited {code}")
        say("  demo client container exited 0")
    compose("logs", "--no-color", env=env, log=OUT / "compose-logs.log", check=False)


def run_stack(services: list[str], env: dict[str, str], keep: bool, report: Report) -> None:
    """`up`, the checks, then (unless ``keep``) `down -v` and a check that nothing is left."""
    say(f"docker-compose --profile cpu up -d {' '.join(services)} (grafana skipped)")
    before_volumes = dangling_volumes()
    started = time.monotonic()
    compose(
        "--profile", "cpu", "up", "-d", "--no-build", *services, env=env, log=OUT / "compose-up.log"
    )
    try:
        exercise(services, env, started, report)
    finally:
        if not keep:
            down = ("--profile", "cpu", "down", "-v", "--remove-orphans")
            compose(*down, env=env, log=OUT / "compose-down.log")
    if not keep:
        left = leftovers()
        new_volumes = dangling_volumes() - before_volumes
        if left or new_volumes:
            raise SystemExit(f"left behind: {left} {sorted(new_volumes)}")
        say("torn down: no container, network or volume of the stack is left")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--no-cache", action="store_true", help="build from scratch (not the stand-in bases)"
    )
    opts = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    report = Report()
    check_static(report)
    ensure_engine()
    daemon = ensure_daemon()
    try:
        args, env = bases(report)
        build_images(args, opts.no_cache, report)
        services = ["encoder", "link", "decoder-cpu", "prometheus"]
        check_lean("semlink-encoder", report)
        if demo_client_runs("semlink-encoder", report):
            services.append("demo")
        else:
            say("the demo client container is left out: its imports fail in its image (notes)")
        run_stack(services, env, opts.keep, report)
        check_gpu_config(env)
    finally:
        if not opts.keep:
            stop_daemon(daemon)
    print_table(report, time.monotonic() - T0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
