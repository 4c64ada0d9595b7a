"""What compose-test checks without Docker (tests/test_compose_test.py runs these too)."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from .shell import REPO


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


def instructions(dockerfile: Path) -> list[str]:
    """A Dockerfile's instructions: comments dropped, continuation lines joined, white space
    folded."""
    lines = [ln for ln in dockerfile.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [" ".join(i.split()) for i in joined.splitlines() if i.strip()]


def stage(dockerfile: Path, name: str) -> list[str]:
    """The instructions of stage ``name`` (``FROM ... AS name`` up to the next ``FROM``)."""
    found: list[str] = []
    for instruction in instructions(dockerfile):
        if instruction.startswith("FROM "):
            if found:
                break
            if instruction.endswith(f" AS {name}"):
                found.append(instruction)
        elif found:
            found.append(instruction)
    return found


SHARED_UNTIL = "COPY requirements.lock pyproject.toml ./"
"""The encoder image and the decoder's cpu target are the same instructions up to this one (the
base, the venv, CPU torch): BuildKit builds those layers once and both images share them. The
two Dockerfiles repeat these lines on purpose (a Dockerfile cannot include another)."""


def layer_sharing(repo: Path = REPO) -> list[str]:
    """Where the encoder's and the decoder cpu target's first instructions part (empty: they
    share every layer up to ``SHARED_UNTIL``)."""
    encoder = stage(repo / "services/encoder/Dockerfile", "cpu")
    decoder = stage(repo / "services/decoder/Dockerfile", "cpu")
    if SHARED_UNTIL not in encoder or SHARED_UNTIL not in decoder:
        return [f"{SHARED_UNTIL!r} is not in both Dockerfiles' cpu stages"]
    a, b = encoder[: encoder.index(SHARED_UNTIL) + 1], decoder[: decoder.index(SHARED_UNTIL) + 1]
    return [
        f"the encoder's instruction {i + 1} {x!r} is the decoder's {y!r}: the images no longer "
        "share their torch layers"
        for i, (x, y) in enumerate(zip(a, b, strict=False))
        if x != y
    ] + ([] if len(a) == len(b) else [f"{len(a)} shared instructions against {len(b)}"])
