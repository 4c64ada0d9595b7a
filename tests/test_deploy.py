"""deploy/ and docker-compose.yml, checked statically (no Docker engine here) plus the probe."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from semlink.link import LinkProfile
from semlink.obs import ServiceMetrics
from semlink.serving.client import channel, wait_until_serving
from services.link import server as link_server

from .servers import ServiceThread, config

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SEMLINK_SERVICES = {"encoder": 50051, "link": 50053, "decoder-cpu": 50052, "decoder-gpu": 50052}


def command_of(name: str) -> list[str]:
    """A compose service's command: its own entrypoint, else its Dockerfile's ENTRYPOINT."""
    service = COMPOSE["services"][name]
    if "entrypoint" in service:
        return list(service["entrypoint"])
    dockerfile = (REPO / service["build"]["dockerfile"]).read_text()
    entrypoints = re.findall(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    assert entrypoints, f"{name}: no ENTRYPOINT"
    return list(json.loads(entrypoints[-1]))


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def exported_names() -> set[str]:
    """Every sample name the services can export (from the real metric definitions)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    families: list[Metric] = list(ServiceMetrics("probe").registry.collect())
    return {f.name + s for f in families for s in suffixes[f.type]}


def test_compose_has_the_stack_with_profiles_and_healthchecks() -> None:
    services = COMPOSE["services"]
    assert set(services) >= {*SEMLINK_SERVICES, "prometheus", "grafana", "demo"}
    assert services["decoder-cpu"]["profiles"] == ["cpu"]
    assert services["decoder-gpu"]["profiles"] == ["gpu"]
    devices = services["decoder-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("decoder-cpu", "decoder-gpu"):
        assert services[name]["networks"]["default"]["aliases"] == ["decoder"]
    for name, port in SEMLINK_SERVICES.items():
        test = services[name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "semlink.serving.probe"]
        assert test[4] == f"127.0.0.1:{port}"
        assert flag(command_of(name), "--port") == str(port)
        build = services[name]["build"]
        dockerfile = (REPO / build["dockerfile"]).read_text()
        if "target" in build:
            assert re.search(rf"^FROM .+ AS {build['target']}$", dockerfile, re.M)


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {"encoder:9101", "link:9103", "decoder:9102"}
    for target in targets:
        host, port = target.split(":")
        name = "decoder-cpu" if host == "decoder" else host
        assert flag(command_of(name), "--metrics-port") == port


def test_dashboard_queries_only_exported_metrics_through_the_provisioned_datasource() -> None:
    source = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = source["datasources"][0]["uid"]
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/semlink.yml").read_text()
    )
    mounts = COMPOSE["services"]["grafana"]["volumes"]
    assert any(
        m.endswith(":" + provider["providers"][0]["options"]["path"] + ":ro") for m in mounts
    )
    exported = exported_names()
    queried: set[str] = set()
    for path in (REPO / "deploy/grafana/dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["panels"], path
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
                queried |= set(re.findall(r"\b(?:grpc_server|semlink)_[a-z_]+", target["expr"]))
    missing = queried - exported
    assert not missing, f"dashboards query metrics nobody exports: {sorted(missing)}"
    wanted = {
        "semlink_bits_per_pixel_sum",
        "semlink_stream_bytes_total",
        "semlink_encode_seconds_bucket",
        "semlink_decode_seconds_bucket",
        "semlink_queue_depth",
        "semlink_link_airtime_seconds_sum",
        "semlink_link_frames_total",
        "grpc_server_handled_total",
    }
    assert wanted <= queried


def test_probe_exit_codes() -> None:
    svc = ServiceThread(
        "link",
        config(metrics_port=None),
        link_server.servicers_for(LinkProfile("t", 1e6, 0.0), realtime=False),
        link_server.load,
    ).start()
    try:
        wait_until_serving(channel(svc.address))
        ok = subprocess.run(
            [sys.executable, "-m", "semlink.serving.probe", svc.address], capture_output=True
        )
        assert ok.returncode == 0 and b"SERVING" in ok.stdout
    finally:
        svc.stop()
    down = subprocess.run(
        [sys.executable, "-m", "semlink.serving.probe", svc.address], capture_output=True
    )
    assert down.returncode == 1


@pytest.mark.parametrize("option", ["--encoder", "--via", "--decoder", "--out"])
def test_compose_demo_client_uses_real_cli_options(option: str) -> None:
    from typer.testing import CliRunner

    from semlink.cli import app

    assert option in COMPOSE["services"]["demo"]["entrypoint"]
    assert option in CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
