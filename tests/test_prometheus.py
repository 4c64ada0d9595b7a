"""The dashboards and alerts on a real Prometheus server (Debian's ``prometheus`` package).

Encoder, link and decoder run as local processes; Prometheus runs the shipped
deploy/prometheus/prometheus.yml (its jobs and rule files) with the targets pointed at those
processes and 1 s scrape and evaluation intervals. After a short demo load (Encode ->
Transmit -> Decode over gRPC): every target is up, every PromQL expression of the Grafana
dashboards (but the Ray decoder's batching, which a plain process never exports) and the
signal of every alerting rule (its expression without the threshold) return data,
Prometheus evaluates every rule without error, and an overload of the decoder makes
SemlinkDecoderQueueSaturated pending or firing. Skipped only where no ``prometheus``
binary is on PATH (``apt-get install prometheus``; .ci/run installs it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from semlink.demo import LocalService, free_port, sample_images
from semlink.serving.client import SemlinkClient, channel, image_of, wait_until_serving

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARDS = REPO / "deploy" / "grafana"
PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="no `prometheus` binary on PATH: apt-get install prometheus (Debian's package)",
    ),
]

# The decoder has the default capacity (10 places, the alert's threshold is 8) with one
# worker, so a few concurrent callers fill it.
SERVICE_ARGS = {
    "encoder": [],
    "link": ["--link", "leo", "--loss", "0.05"],
    "decoder": ["--workers", "1", "--max-waiting", "9"],
}
SATURATION_ALERT = "SemlinkDecoderQueueSaturated"
# Grafana's interval variables: as wide as the dashboards' own windows.
INTERVAL_VARIABLE = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{__\w+\}")
TEMPLATE_VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\]")
# Series only a decoder on Ray Serve exports (its batches): this stack's decoder is a plain
# process, so their panels' queries must parse and evaluate, and may return nothing.
RAY_ONLY = re.compile(r"\bsemlink_decode_batch_size_")
THRESHOLD = re.compile(r"\s*(?:>=|<=|==|!=|>|<)\s*[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?\s*$")


@dataclass
class Stack:
    prometheus: str
    """Base URL of the Prometheus HTTP API."""
    services: dict[str, LocalService]
    packets: list[bytes]
    log_dir: Path
    decodes: Counter[str] = field(default_factory=Counter)


def get_json(url: str, timeout: float = 10.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:  # Prometheus answers a bad query with 400 + JSON
        body = err.read().decode(errors="replace")
        raise AssertionError(f"{url}: HTTP {err.code}: {body}") from err


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant query; the result vector (an error fails the test with Prometheus's words)."""
    answer = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert answer["status"] == "success", f"{promql}: {answer}"
    data = answer["data"]
    assert data["resultType"] == "vector", f"{promql}: {data['resultType']}"
    return list(data["result"])


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    return [v for v in (float(s["value"][1]) for s in result) if math.isfinite(v)]


def wait_for(what: str, check: Any, timeout: float, log_dir: Path | None = None) -> Any:
    """Call CHECK until it returns something true; fail after TIMEOUT seconds."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    logs = prometheus_log(log_dir) if log_dir else ""
    raise AssertionError(f"{what} within {timeout} s (last: {last}){logs}")


def prometheus_log(log_dir: Path) -> str:
    path = log_dir / "prometheus.log"
    return "\nprometheus.log:\n" + path.read_text()[-3000:] if path.exists() else ""


def prometheus_config(services: dict[str, LocalService]) -> dict[str, Any]:
    """The shipped configuration, scraping the local processes every second."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [
                f"127.0.0.1:{services[t.rpartition(':')[0]].metrics_port}"
                for t in static["targets"]
            ]
    return config


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every target of every Grafana dashboard,
    with interval variables as 5m and template variables as ``.*``."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    found = []
    for path in sorted(DASHBOARDS.rglob("*.json")):
        dashboard = json.loads(path.read_text())
        rows = dashboard.get("rows", [])
        for panel in panels([*dashboard.get("panels", []), *rows]):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    expr = INTERVAL_VARIABLE.sub("5m", target["expr"])
                    expr = TEMPLATE_VARIABLE.sub(".*", expr)
                    found.append((path.name, str(panel.get("title", "")), expr))
    return found


def alerting_rules() -> list[dict[str, Any]]:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    return [
        rule
        for name in config.get("rule_files", [])
        for group in yaml.safe_load((PROMETHEUS_DIR / name).read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def push_demo_load(client: SemlinkClient, stack: Stack) -> None:
    """Three photos Encode -> Transmit -> Decode, a few seconds apart (so every rate over the
    scrapes has increases), then one damaged packet that the decoder refuses (DATA_LOSS)."""
    images = sample_images()
    for name in ("astronaut", "coffee", "chelsea"):
        encoded = client.encode(images[name], target_bpp=0.03, timeout=120)
        stack.packets.append(encoded.packet)
        sent = client.transmit(encoded.packet)
        if sent.delivered:
            assert image_of(client.decode(sent.delivered, timeout=120)).shape == images[name].shape
            stack.decodes["OK"] += 1
        time.sleep(1.0)
    damaged = bytearray(stack.packets[-1])
    damaged[-12] ^= 0x10
    with pytest.raises(grpc.RpcError) as refused:
        client.decode(bytes(damaged))
    assert refused.value.code() == grpc.StatusCode.DATA_LOSS
    stack.decodes["DATA_LOSS"] += 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert PROMETHEUS is not None
    log_dir = tmp_path_factory.mktemp("prometheus")
    env = {**os.environ, "SEMLINK_LITE_RESTORER": "false"}  # Lanczos: cheap decodes
    processes: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as files:
        try:
            services: dict[str, LocalService] = {}
            for name, extra in SERVICE_ARGS.items():
                port, metrics_port = free_port(), free_port()
                log = files.enter_context((log_dir / f"{name}.log").open("wb"))
                args = [sys.executable, "-m", f"services.{name}", "--port", str(port)]
                args += ["--metrics-port", str(metrics_port), "--grace", "5", *extra]
                process = subprocess.Popen(
                    args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
                )
                processes.append(process)
                services[name] = LocalService(name, port, metrics_port, process)

            config = log_dir / "prometheus.yml"
            config.write_text(yaml.safe_dump(prometheus_config(services)))
            port = free_port()
            log = files.enter_context((log_dir / "prometheus.log").open("wb"))
            processes.append(
                subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={log_dir / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            base = f"http://127.0.0.1:{port}"
            stack = Stack(base, services, [], log_dir)

            chans = {name: channel(f"127.0.0.1:{s.port}") for name, s in services.items()}
            for name, ch in chans.items():
                try:
                    wait_until_serving(ch, timeout=180)
                except TimeoutError as err:
                    raise AssertionError(
                        f"{name}: {err}\n{(log_dir / f'{name}.log').read_text()[-3000:]}"
                    ) from err

            def ready() -> bool:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response,
                ):
                    return bool(response.status == 200)
                return False

            wait_for("Prometheus ready", ready, 60, log_dir)

            def all_up() -> bool:
                targets = get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
                return len(targets) == len(services) and all(t["health"] == "up" for t in targets)

            wait_for("every target scraped", all_up, 30, log_dir)
            client = SemlinkClient(chans["encoder"], chans["decoder"], chans["link"])
            push_demo_load(client, stack)

            # Prometheus has every call once it has scraped the decoder's last one.
            def scraped_all_decodes() -> bool:
                total = query(
                    base,
                    'sum(grpc_server_handled_total{grpc_service="semlink.v1.DecoderService"})',
                )
                return bool(total) and float(total[0]["value"][1]) == stack.decodes.total()

            wait_for("the load's decodes scraped", scraped_all_decodes, 30, log_dir)
            time.sleep(2.0)  # a couple more scrapes and rule evaluations
            yield stack
        finally:
            stop(processes)
    leftovers = [p.args for p in processes if p.poll() is None]
    assert not leftovers, f"still running: {leftovers}"


def test_every_scrape_target_is_up(stack: Stack) -> None:
    targets = get_json(f"{stack.prometheus}/api/v1/targets")["data"]["activeTargets"]
    jobs = {t["labels"]["job"]: t for t in targets}
    assert set(jobs) == {"semlink-encoder", "semlink-link", "semlink-decoder"}
    for job, target in jobs.items():
        assert target["health"] == "up" and not target["lastError"], (job, target)
    up = {s["metric"]["job"]: float(s["value"][1]) for s in query(stack.prometheus, "up")}
    assert up == dict.fromkeys(jobs, 1.0)


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    empty = []
    for dashboard, title, expr in queries:
        result = query(stack.prometheus, expr)
        if not finite_values(result) and not RAY_ONLY.search(expr):
            empty.append(f"{dashboard} / {title}: {expr} -> {result}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_every_alerting_rule_evaluates_and_its_signal_has_data(stack: Stack) -> None:
    rules = alerting_rules()
    assert {r["alert"] for r in rules} >= {SATURATION_ALERT, "SemlinkErrorRatioHigh"}
    for rule in rules:
        query(stack.prometheus, rule["expr"])  # the whole expression: no error
        signal_expr = THRESHOLD.sub("", rule["expr"].strip())
        assert signal_expr != rule["expr"].strip(), f"{rule['alert']}: no threshold to strip"
        result = query(stack.prometheus, signal_expr)
        assert finite_values(result), f"{rule['alert']}: {signal_expr} -> {result}"

    # Prometheus's own rule manager: every rule loaded and evaluated without error.
    def evaluated() -> dict[str, tuple[str, str]]:
        groups = get_json(f"{stack.prometheus}/api/v1/rules")["data"]["groups"]
        health = {
            r["name"]: (r["health"], r.get("lastError", ""))
            for g in groups
            for r in g["rules"]
            if r["type"] == "alerting"
        }
        return health if all(h != "unknown" for h, _ in health.values()) else {}

    health = wait_for("every rule evaluated", evaluated, 30, stack.log_dir)
    assert set(health) == {r["alert"] for r in rules}
    assert all(h == ("ok", "") for h in health.values()), health


def test_decoder_queue_saturation_alert_fires_under_overload(stack: Stack) -> None:
    decoder = channel(f"127.0.0.1:{stack.services['decoder'].port}")
    packet = stack.packets[0]  # the astronaut, 512 x 512: the longest decode
    done = threading.Event()
    codes: Counter[str] = Counter()
    lock = threading.Lock()

    def pump() -> None:
        client = SemlinkClient(decoder=decoder)
        while not done.is_set():
            try:
                client.decode(packet, timeout=60)
                code = "OK"
            except grpc.RpcError as err:
                code = err.code().name
            with lock:
                codes[code] += 1
            if code != "OK":
                done.wait(0.05)  # refused at once: no busy loop

    def saturation_alert() -> list[dict[str, Any]]:
        alerts = get_json(f"{stack.prometheus}/api/v1/alerts")["data"]["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == SATURATION_ALERT and a["state"] in {"pending", "firing"}
        ]

    assert not saturation_alert()  # the demo load stayed well below capacity
    callers = [threading.Thread(target=pump, daemon=True) for _ in range(16)]
    for caller in callers:
        caller.start()
    try:
        alerts = wait_for(f"{SATURATION_ALERT} pending or firing", saturation_alert, 90)
    finally:
        done.set()
        for caller in callers:
            caller.join(90)
    assert not any(caller.is_alive() for caller in callers)
    assert alerts[0]["labels"]["severity"] == "warning"
    assert float(alerts[0]["value"]) >= 8
    series = query(stack.prometheus, f'ALERTS{{alertname="{SATURATION_ALERT}"}}')
    assert {s["metric"]["alertstate"] for s in series} <= {"pending", "firing"} and series
    # Beyond its 10 places the decoder refused calls instead of piling them up.
    assert codes["OK"] > 0 and codes["RESOURCE_EXHAUSTED"] > 0, codes
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    depth = query(stack.prometheus, 'max_over_time(semlink_queue_depth{service="decoder"}[5m])')
    assert 8 <= float(depth[0]["value"][1]) <= 10
