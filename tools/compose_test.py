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
6. Grafana cannot be installed here: its provisioning files are validated instead.
7. `docker-compose down -v` and a check that no container, network or volume is left; then
   `docker-compose --profile gpu config` must render the GPU stack.

Prints image sizes, build and start-up times. Logs go to out/compose-test/.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out" / "compose-test"
PROJECT = "semlink-compose-test"
COMPOSE_FILE = REPO / "docker-compose.yml"
PUBLIC_BASE = "python:3.11-slim"
PUBLIC_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
STANDIN_BASE = "semlink-standin/python:3.11-bookworm"
STANDIN_PROMETHEUS = "semlink-standin/prometheus:bookworm"
IMAGES = {
    # image -> (Dockerfile, target): what the script builds; docker-compose.yml uses these names
    "semlink-encoder": ("services/encoder/Dockerfile", None),
    "semlink-decoder:cpu": ("services/decoder/Dockerfile", "cpu"),
}
PORTS = {"encoder": 50051, "link": 50053, "decoder": 50052}
PROMETHEUS_URL = "http://127.0.0.1:9090"
PIP_DIRS_PORT = 47311
"""Where local package folders are served during builds: a fixed port keeps PIP_EXTRA, and so
the build cache, the same from run to run (any free port if it is taken)."""
MIN_PSNR_DB = 20.0
"""Every demo photo at 0.03 bpp decodes above this (they measure 21-27 dB in process)."""
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    capture: bool = False,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``log`` its output goes to that file (the tail is shown on failure)."""
    full_env = {**os.environ, **(env or {})}
    if log is not None:
        with log.open("w") as f:
            done = subprocess.run(
                list(cmd),
                stdout=f,
                stderr=subprocess.STDOUT,
                env=full_env,
                timeout=timeout,
                text=True,
                check=False,
            )
        if check and done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise SystemExit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{tail}\n(log: {log})")
        return done
    done = subprocess.run(
        list(cmd), capture_output=capture, env=full_env, timeout=timeout, text=True, check=False
    )
    if check and done.returncode != 0:
        detail = (done.stderr or "") if capture else ""
        raise SystemExit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{detail}")
    return done


# ---------------------------------------------------------------------------------------------
# Static checks: Grafana provisioning, build arguments (also run by tests/test_compose_test.py)


def validate_grafana(repo: Path = REPO) -> list[str]:
    """Grafana's provisioning, checked without Grafana: the problems found (empty: all good).

    Dashboards load as JSON with panels whose queries use the provisioned datasource; the
    datasource points at the compose service that runs Prometheus, on the port Prometheus
    listens on; the provisioning and dashboard folders are mounted where Grafana reads them.
    """
    problems: list[str] = []
    compose = yaml.safe_load((repo / "docker-compose.yml").read_text())
    services = compose["services"]
    grafana = services.get("grafana")
    if grafana is None:
        return ["docker-compose.yml has no grafana service"]
    mounts = {}
    for volume in grafana.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = (repo / source).resolve()
    provisioning = mounts.get("/etc/grafana/provisioning")
    if provisioning is None:
        return ["grafana: nothing is mounted at /etc/grafana/provisioning"]
    datasources: dict[str, dict[str, Any]] = {}
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            datasources[source["uid"]] = source
    if not datasources:
        problems.append(f"no datasource under {provisioning / 'datasources'}")
    for uid, source in datasources.items():
        url = urllib.parse.urlsplit(source.get("url", ""))
        target = services.get(url.hostname or "")
        if source.get("type") != "prometheus":
            problems.append(f"datasource {uid}: type {source.get('type')!r}, not prometheus")
        elif target is None:
            problems.append(f"datasource {uid}: {url.hostname!r} is no compose service")
        elif "prometheus" not in str(target.get("image", "")):
            problems.append(f"datasource {uid}: service {url.hostname!r} does not run Prometheus")
        elif url.port not in {int(str(p).split(":")[-1]) for p in target.get("ports", [])}:
            problems.append(f"datasource {uid}: port {url.port} is not Prometheus' port")
        elif url.hostname not in grafana.get("depends_on", []):
            problems.append(f"grafana does not depend on {url.hostname!r}")
    dashboards = 0
    for path in sorted((provisioning / "dashboards").glob("*.y*ml")):
        for provider in yaml.safe_load(path.read_text()).get("providers", []):
            folder = mounts.get(provider["options"]["path"])
            if folder is None:
                problems.append(f"provider {provider['name']}: its path is not mounted")
                continue
            for board in sorted(folder.glob("*.json")):
                try:
                    dashboard = json.loads(board.read_text())
                except json.JSONDecodeError as e:
                    problems.append(f"{board.name}: not JSON ({e})")
                    continue
                dashboards += 1
                if not dashboard.get("panels"):
                    problems.append(f"{board.name}: no panels")
                for panel in dashboard.get("panels", []):
                    for item in (panel, *panel.get("targets", [])):
                        used = (item.get("datasource") or {}).get("uid")
                        if used not in datasources:
                            problems.append(
                                f"{board.name}: panel {panel.get('title')!r} uses datasource "
                                f"{used!r}, not a provisioned one"
                            )
    if dashboards == 0:
        problems.append("no dashboard is provisioned")
    return problems


def dockerfile_args(dockerfile: Path) -> set[str]:
    """The build arguments a Dockerfile declares."""
    return set(re.findall(r"^ARG ([A-Z_]+)", dockerfile.read_text(), re.M))


# ---------------------------------------------------------------------------------------------
# Engine, daemon, images


def ensure_engine() -> None:
    missing = [
        p
        for p in ("docker.io", "docker-compose")
        if not shutil.which("dockerd" if p == "docker.io" else "docker-compose")
    ]
    if missing:
        apt_install(missing)


def apt_install(packages: list[str]) -> None:
    say(f"installing {' '.join(packages)} with apt-get")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], log=OUT / "apt-update.log", env=env)
    run(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        log=OUT / "apt-install.log",
        env=env,
    )


@functools.cache
def docker() -> str:
    """A docker CLI whose `build` runs BuildKit against this engine (secrets, RUN --mount)."""
    candidates = [c for c in (shutil.which("docker"), "/usr/bin/docker") if c and Path(c).exists()]
    for cli in dict.fromkeys(candidates):
        if run([cli, "buildx", "version"], check=False, capture=True).returncode == 0:
            return cli
        version = run([cli, "--version"], capture=True).stdout
        major = re.search(r"version (\d+)\.", version)
        if major and int(major.group(1)) < 23:  # BuildKit built in, DOCKER_BUILDKIT=1
            return cli
    raise SystemExit(f"no docker CLI that builds with BuildKit among {candidates}")


def compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return [docker(), "compose"]


def daemon_up() -> bool:
    return run([docker(), "info"], check=False, capture=True).returncode == 0


def ensure_daemon() -> subprocess.Popen[bytes] | None:
    """Start dockerd (at low priority: builds share the machine) when none answers."""
    if daemon_up():
        say("a Docker daemon is running")
        return None
    say("starting dockerd --iptables=false")
    log = (OUT / "dockerd.log").open("wb")
    daemon = subprocess.Popen(
        ["nice", "-n", "10", "dockerd", "--iptables=false"], stdout=log, stderr=subprocess.STDOUT
    )
    for _ in range(120):
        if daemon_up():
            return daemon
        if daemon.poll() is not None:
            raise SystemExit(f"dockerd exited with {daemon.returncode}; see {OUT / 'dockerd.log'}")
        time.sleep(0.5)
    raise SystemExit("dockerd did not answer within 60 s")


def stop_daemon(daemon: subprocess.Popen[bytes] | None) -> None:
    if daemon is not None and daemon.poll() is None:
        say("stopping the dockerd this run started")
        daemon.terminate()
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()


def image_exists(image: str) -> bool:
    return run([docker(), "image", "inspect", image], check=False, capture=True).returncode == 0


def pullable(image: str) -> bool:
    """The image is here or can be pulled (a short try: public registries may be unreachable)."""
    if image_exists(image):
        return True
    try:
        done = run([docker(), "pull", image], check=False, capture=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def image_mb(image: str) -> float:
    return (
        int(run([docker(), "image", "inspect", "-f", "{{.Size}}", image], capture=True).stdout)
        / 1e6
    )


def standin_image(tag: str, packages: list[str], changes: list[str], report: Report) -> str:
    """A Debian bookworm minbase image with ``packages`` (mmdebstrap + docker import)."""
    if image_exists(tag):
        say(f"reusing the stand-in image {tag}")
        report.images[tag] = {"size_mb": image_mb(tag), "build_s": float("nan")}
        return tag
    if not shutil.which("mmdebstrap"):
        apt_install(["mmdebstrap"])
    tarball = OUT / (tag.replace("/", "_").replace(":", "_") + ".tar")
    say(f"building the stand-in image {tag} (mmdebstrap bookworm: {', '.join(packages)})")
    start = time.monotonic()
    run(
        [
            "nice",
            "-n",
            "10",
            "mmdebstrap",
            "--variant=minbase",
            "--include=" + ",".join(packages),
            "bookworm",
            str(tarball),
        ],
        log=OUT / f"mmdebstrap-{tag.split('/')[-1].split(':')[0]}.log",
    )
    cmd = [docker(), "import"]
    for change in [f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8", *changes]:
        cmd += ["--change", change]
    run([*cmd, str(tarball), tag], capture=True)
    tarball.unlink()
    seconds = time.monotonic() - start
    report.images[tag] = {"size_mb": image_mb(tag), "build_s": seconds}
    say(f"  {tag} ready in {seconds:.0f} s")
    return tag


# ---------------------------------------------------------------------------------------------
# Build inputs for machines without the public indices


def pip_config() -> dict[str, list[str]]:
    """pip's configuration (files and environment) as key -> values."""
    done = run([sys.executable, "-m", "pip", "config", "list"], check=False, capture=True)
    config: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        config.setdefault(name, []).extend(value.strip().strip("'\"").split())
    return config


def local_package_dirs(config: dict[str, list[str]]) -> list[tuple[str, Path]]:
    """The local find-links directories and file:// indices pip's configuration names."""
    found: list[tuple[str, Path]] = []
    for kind in ("find-links", "index-url", "extra-index-url"):
        for value in config.get(kind, []):
            path = Path(urllib.parse.urlsplit(value).path if value.startswith("file:") else value)
            if path.is_absolute() and path.is_dir():
                entry = ("find-links" if kind == "find-links" else "extra-index-url", path)
                if entry not in found:
                    found.append(entry)
    return found


@contextlib.contextmanager
def serve_package_dirs(dirs: list[tuple[str, Path]]) -> Iterator[list[str]]:
    """Serve local package directories read-only on 127.0.0.1; yield pip options for them."""
    if not dirs:
        yield []
        return
    root = OUT / "pip-dirs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    options: list[tuple[str, str]] = []
    for i, (kind, path) in enumerate(dirs):
        # An index's pages link to ../../files/...: serve the folder above "simple".
        served = path.parent if path.name == "simple" else path
        (root / f"d{i}").symlink_to(served)
        options.append((kind, f"d{i}/simple/" if path.name == "simple" else f"d{i}/"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", PIP_DIRS_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pip = [f"--{kind} http://127.0.0.1:{port}/{url}" for kind, url in options]
        yield [*pip, "--trusted-host 127.0.0.1"]
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def reachable(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def torch_pip(dirs: list[tuple[str, Path]]) -> tuple[str | None, str]:
    """TORCH_PIP for the builds (None: the Dockerfiles' default) and why."""
    if os.environ.get("SEMLINK_TORCH_PIP"):
        return os.environ["SEMLINK_TORCH_PIP"], "from SEMLINK_TORCH_PIP"
    if reachable(PUBLIC_TORCH_INDEX + "/torch/"):
        return None, f"the pinned CPU wheels from {PUBLIC_TORCH_INDEX}"
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for kind, path in dirs:
        if kind != "find-links":
            continue
        for wheel in sorted(path.glob(f"torch-*+cpu-{py}-{py}-*.whl"), reverse=True):
            version = wheel.name.split("-")[1]
            return (
                f"torch=={version}",
                f"{PUBLIC_TORCH_INDEX} is unreachable: the local CPU wheel {wheel.name} "
                "(torchvision: PyPI's, which semlink._torchvision lets import on CPU torch)",
            )
    raise SystemExit(f"{PUBLIC_TORCH_INDEX} is unreachable and no local CPU torch wheel is found")


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Report:
    images: dict[str, dict[str, float]] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    rows: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compose(*args: str, env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return run([*compose_cli(), "-p", PROJECT, "-f", str(COMPOSE_FILE), *args], env=env, **kw)


def build(
    image: str,
    dockerfile: str,
    target: str | None,
    args: dict[str, str],
    secret: Path | None,
    report: Report,
    cold: bool = False,
) -> None:
    cmd = [docker(), "build", "--network", "host", "-f", dockerfile, "-t", image]
    if cold:
        cmd.append("--no-cache")
    if target:
        cmd += ["--target", target]
    declared = dockerfile_args(REPO / dockerfile)
    for key, value in args.items():
        if key in declared:
            cmd += ["--build-arg", f"{key}={value}"]
    if secret is not None:
        cmd += ["--secret", f"id=pip_ca,src={secret}"]
    say(f"building {image} ({dockerfile}{', target ' + target if target else ''})")
    say(f"  DOCKER_BUILDKIT=1 {shlex.join([*cmd, str(REPO)])}")
    start = time.monotonic()
    name = image.replace(":", "-")
    run(
        [*cmd, str(REPO)],
        env={"DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"},
        log=OUT / f"build-{name}.log",
    )
    seconds = time.monotonic() - start
    size = image_mb(image)
    report.images[image] = {"build_s": seconds, "size_mb": size}
    say(f"  {image}: {size:.0f} MB, built in {seconds:.0f} s")


def in_image(image: str, code: str) -> subprocess.CompletedProcess[str]:
    return run(
        [docker(), "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", code],
        check=False,
        capture=True,
        timeout=300,
    )


def check_lean(image: str, report: Report) -> bool:
    """The edge image: CPU torch, no CUDA libraries. Returns whether torchvision imports."""
    code = (
        "import importlib.metadata as m, torch; "
        "print(torch.__version__, torch.version.cuda, "
        "sorted(d.metadata['Name'] for d in m.distributions() "
        "if d.metadata['Name'].lower().startswith(('nvidia', 'cuda', 'triton'))))"
    )
    done = in_image(image, code)
    if done.returncode != 0:
        raise SystemExit(f"{image}: torch does not import:\n{done.stderr}")
    say(f"  {image}: torch, CUDA, CUDA packages = {done.stdout.strip()}")
    if "None []" not in done.stdout:
        raise SystemExit(f"{image} is not lean: {done.stdout}")
    secret = in_image(
        image,
        "import os; print(os.path.exists('/run/secrets/pip_ca'), 'PIP_CERT' in os.environ)",
    )
    if secret.stdout.split() != ["False", "False"]:
        raise SystemExit(f"{image}: the CA bundle secret is visible in the image: {secret.stdout}")
    vision = in_image(image, "import torchvision")
    if vision.returncode != 0:
        report.notes.append(f"{image} has no torchvision: the demo client (piq) cannot run in it")
    return vision.returncode == 0


def container_of(service: str, env: dict[str, str]) -> str:
    return compose("ps", "-q", service, env=env, capture=True).stdout.strip()


def wait_healthy(services: list[str], env: dict[str, str], started: float, report: Report) -> None:
    pending = {s: container_of(s, env) for s in services}
    deadline = time.monotonic() + 420
    while pending and time.monotonic() < deadline:
        for service, cid in list(pending.items()):
            state = json.loads(
                run([docker(), "inspect", "-f", "{{json .State}}", cid], capture=True).stdout
            )
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                report.startup[service] = time.monotonic() - started
                say(f"  {service} healthy after {report.startup[service]:.0f} s")
                del pending[service]
            elif state["Status"] == "exited" or health == "unhealthy":
                logs = run([docker(), "logs", "--tail", "40", cid], capture=True, check=False)
                raise SystemExit(
                    f"{service} is {health or state['Status']}:\n{logs.stdout}{logs.stderr}"
                )
        time.sleep(2)
    if pending:
        raise SystemExit(f"not healthy within 420 s: {sorted(pending)}")


def prometheus_query(expr: str) -> dict[str, float]:
    """An instant query: job -> value."""
    url = f"{PROMETHEUS_URL}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        data = json.load(r)["data"]["result"]
    return {d["metric"].get("job", ""): float(d["value"][1]) for d in data}


HANDLED_OK = 'sum by (job) (grpc_server_handled_total{grpc_method="%s",grpc_code="OK"})'
MOVED = {
    # job -> PromQL that must grow by at least one per photo pushed
    "semlink-encoder": HANDLED_OK % "Encode",
    "semlink-link": HANDLED_OK % "Transmit",
    "semlink-decoder": HANDLED_OK % "Decode",
}
MOVED_ALSO = [
    "sum by (job) (semlink_packet_bytes_count)",
    'sum by (job) (semlink_link_frames_total{outcome="sent"})',
    "sum by (job) (semlink_decode_seconds_count)",
]


def metric_values() -> dict[str, float]:
    values: dict[str, float] = {}
    for expr in [*MOVED.values(), *MOVED_ALSO]:
        for job, value in prometheus_query(expr).items():
            values[f"{expr} @ {job}"] = value
    return values


def check_targets(jobs: set[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(f"{PROMETHEUS_URL}/api/v1/targets", timeout=10) as r:
            active = json.load(r)["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        if set(health) == jobs and all(h == "up" for h in health.values()):
            say(f"  Prometheus: every scrape target up: {sorted(health)}")
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"Prometheus targets not all up: {health} (want {sorted(jobs)})")
        time.sleep(2)


def push_photos(report: Report) -> None:
    """The demo photos through Encode -> link -> Decode over the published ports."""
    import numpy as np

    from semlink import decode, encode
    from semlink.demo import run_demo, sample_images
    from semlink.imaging import psnr

    addresses = {name: f"127.0.0.1:{port}" for name, port in PORTS.items()}
    out = OUT / "demo"
    rows = run_demo(out, bpp=0.03, addresses=addresses, announce=say)
    report.rows = rows
    originals = sample_images()
    for row in rows:
        packet = (out / f"{row.name}.slk").read_bytes()
        local = encode(originals[row.name], "lite", target_bpp=0.03).data
        from PIL import Image

        remote = np.asarray(Image.open(out / f"{row.name}-decoded.png").convert("RGB"))
        here = decode(packet).image
        remote_psnr = psnr(originals[row.name], remote)
        here_psnr = psnr(originals[row.name], here)
        diff = int(np.abs(remote.astype(int) - here.astype(int)).max())
        say(
            f"  {row.name}: {row.bytes} B, layers {row.layers}, PSNR {remote_psnr:.2f} dB "
            f"(decoded here: {here_psnr:.2f} dB, max pixel difference {diff}); "
            f"packet {'equals' if local == packet else 'DIFFERS from'} the in-process encode"
        )
        if remote_psnr < MIN_PSNR_DB:
            raise SystemExit(f"{row.name}: PSNR {remote_psnr:.2f} dB < {MIN_PSNR_DB}")
        if abs(remote_psnr - here_psnr) > 0.1:
            raise SystemExit(
                f"{row.name}: the container decodes to {remote_psnr:.2f} dB, this "
                f"process to {here_psnr:.2f} dB from the same packet"
            )
        if local != packet:
            report.notes.append(
                f"{row.name}: the container's packet differs from the in-process one"
            )


def leftovers() -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={PROJECT}"
    found = {
        "containers": run([docker(), "ps", "-aq", "--filter", label], capture=True).stdout,
        "networks": run([docker(), "network", "ls", "-q", "--filter", label], capture=True).stdout,
        "volumes": run([docker(), "volume", "ls", "-q", "--filter", label], capture=True).stdout,
    }
    return {k: v.split() for k, v in found.items() if v.split()}


def dangling_volumes() -> set[str]:
    return set(run([docker(), "volume", "ls", "-q"], capture=True).stdout.split())


def check_gpu_config(env: dict[str, str]) -> None:
    """`docker-compose --profile gpu config` renders, with the decoder's GPU reservation."""
    rendered = yaml.safe_load(
        run(
            [*compose_cli(), "-f", str(COMPOSE_FILE), "--profile", "gpu", "config"],
            env=env,
            capture=True,
        ).stdout
    )
    gpu = rendered["services"]["decoder-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    if devices[0]["driver"] != "nvidia" or gpu["build"]["target"] != "cuda":
        raise SystemExit(f"decoder-gpu renders wrong: {gpu}")
    say(f"`docker-compose --profile gpu config` renders: decoder-gpu on {devices}")


def print_table(report: Report, total: float) -> None:
    print("\n== compose-test ==")
    print(f"{'image':<40}{'size (MB)':>10}{'build (s)':>11}")
    for image, row in report.images.items():
        built = "reused" if row["build_s"] != row["build_s"] else f"{row['build_s']:.0f}"
        print(f"{image:<40}{row['size_mb']:>10.0f}{built:>11}")
    print("(the decoder's cpu target repeats the encoder's steps: the two share their layers)")
    print(f"\n{'service':<40}{'healthy after up (s)':>21}")
    for service, seconds in report.startup.items():
        print(f"{service:<40}{seconds:>21.0f}")
    print(
        f"\n{'photo':<12}{'bytes':>7}{'bpp':>8}{'layers':>8}{'PSNR':>8}{'MS-SSIM':>9}"
        f"{'enc ms':>8}{'dec ms':>8}{'e2e s':>7}"
    )
    for r in report.rows:
        print(
            f"{r.name:<12}{r.bytes:>7}{r.bpp:>8.4f}{r.layers:>8}{r.psnr:>8.2f}"
            f"{r.ms_ssim:>9.4f}{r.encode_ms:>8.0f}{r.decode_ms:>8.0f}{r.end_to_end_s:>7.1f}"
        )
    for note in report.notes:
        print(f"note: {note}")
    print(f"\ncompose-test passed in {total:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--no-cache", action="store_true", help="build from scratch (not the stand-in bases)"
    )
    opts = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    report = Report()

    problems = validate_grafana()
    if problems:
        raise SystemExit("Grafana provisioning: " + "; ".join(problems))
    say(
        "Grafana: provisioning valid (dashboards load as JSON, datasource -> prometheus:9090); "
        "Grafana itself is not started: it cannot be installed here"
    )
    report.notes.append("grafana skipped (cannot be installed here); provisioning validated")

    ensure_engine()
    daemon = ensure_daemon()
    env: dict[str, str] = {}
    try:
        args: dict[str, str] = {}
        if not pullable(PUBLIC_BASE):
            args["BASE_IMAGE"] = standin_image(
                STANDIN_BASE,
                ["python3", "python3-pip", "python3-venv", "ca-certificates"],
                [],
                report,
            )
            report.notes.append(f"{PUBLIC_BASE} cannot be pulled: built on {STANDIN_BASE}")
        public_prometheus = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prometheus"][
            "image"
        ]
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
                cold = opts.no_cache and i == 0
                build(image, dockerfile, target, args, secret, report, cold)
        with_vision = check_lean("semlink-encoder", report)

        services = ["encoder", "link", "decoder-cpu", "prometheus"]
        if with_vision:
            services.append("demo")
        else:
            say("the demo client container is left out: its image has no torchvision (piq)")
        say(f"docker-compose --profile cpu up -d {' '.join(services)} (grafana skipped)")
        before_volumes = dangling_volumes()
        started = time.monotonic()
        compose(
            "--profile",
            "cpu",
            "up",
            "-d",
            "--no-build",
            *services,
            env=env,
            log=OUT / "compose-up.log",
        )
        try:
            wait_healthy([s for s in services if s != "demo"], env, started, report)
            check_targets({"semlink-encoder", "semlink-link", "semlink-decoder"})
            time.sleep(6)  # one scrape interval after the probes
            before = metric_values()
            say("pushing the demo photos from this machine over the published ports")
            push_photos(report)
            deadline = time.monotonic() + 30
            while True:
                after = metric_values()
                moved = {
                    job: after.get(f"{expr} @ {job}", 0) - before.get(f"{expr} @ {job}", 0)
                    for job, expr in MOVED.items()
                }
                also = {
                    k: after.get(k, 0) - before.get(k, 0)
                    for k in after
                    if any(k.startswith(e) for e in MOVED_ALSO)
                }
                if (
                    all(v >= len(report.rows) for v in moved.values())
                    and len(also) == len(MOVED_ALSO)
                    and all(v > 0 for v in also.values())
                ):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"semlink metrics did not move: {moved} {also}")
                time.sleep(2)
            say(f"  Prometheus: OK RPCs counted per job during the push: {moved}")
            say(f"  and: {also}")
            if "demo" in services:
                cid = container_of("demo", env)
                code = run([docker(), "wait", cid], capture=True, timeout=600).stdout.strip()
                if code != "0":
                    raise SystemExit(f"the demo client container exited {code}")
                say("  demo client container exited 0")
            compose("logs", "--no-color", env=env, log=OUT / "compose-logs.log", check=False)
        finally:
            if not opts.keep:
                compose(
                    "--profile",
                    "cpu",
                    "down",
                    "-v",
                    "--remove-orphans",
                    env=env,
                    log=OUT / "compose-down.log",
                )
        if not opts.keep:
            left = leftovers()
            new_volumes = dangling_volumes() - before_volumes
            if left or new_volumes:
                raise SystemExit(f"left behind: {left} {sorted(new_volumes)}")
            say("torn down: no container, network or volume of the stack is left")
        check_gpu_config(env)
    finally:
        if not opts.keep:
            stop_daemon(daemon)
    print_table(report, time.monotonic() - T0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
