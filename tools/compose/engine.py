"""Docker's engine and CLI: installed when missing, a daemon started when none answers,
images looked up, pulled and measured."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import time
from pathlib import Path

from .shell import OUT, run, say


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
