"""The compose stack: docker-compose with this run's project name, health, what is left after
`down`, and the GPU profile's rendered config."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import yaml

from .engine import compose_cli, docker
from .report import Report
from .shell import REPO, run, say

PROJECT = "semlink-compose-test"
COMPOSE_FILE = REPO / "docker-compose.yml"


def compose(*args: str, env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return run([*compose_cli(), "-p", PROJECT, "-f", str(COMPOSE_FILE), *args], env=env, **kw)


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
