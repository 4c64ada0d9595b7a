"""Render the Grafana dashboard from a real Prometheus's query results into a PNG.

Grafana cannot run here (no package source provides it), so this draws what an operator
would see. It starts the three services on free localhost ports (encoder and link as
processes, the decoder on Ray Serve with batching, or as a process with ``--engine
process``), Prometheus (Debian's ``prometheus`` binary) on the shipped
deploy/prometheus/prometheus.yml with its targets pointed at them and 1 s scrapes, and
pushes real traffic for ``--seconds``: photos Encode -> Transmit -> Decode, bursts of
concurrent Decodes (Ray gathers them into batches) and calls that fail on purpose. Then it
evaluates every target of every panel of deploy/grafana/dashboards/semlink.json with
``query_range`` over the traffic window (Grafana's variables substituted), saves the answers
as JSON beside the logs, and draws each panel (title, unit, legend from ``legendFormat``)
where its ``gridPos`` puts it:

    .venv/bin/python tools/render_dashboard.py                       # docs/dashboard.png
    .venv/bin/python tools/render_dashboard.py --replot out/dashboard/results.json

``--replot`` draws saved answers again without running anything (seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "semlink.json"
DATASOURCE = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
MAX_DATA_POINTS = 800
"""Points Grafana asks for per panel (about its width in pixels)."""
SERVICES = ("encoder", "link", "decoder")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
BPPS = (0.02, 0.03, 0.05)

# Grafana's look (dark theme, classic palette), so the picture reads as the dashboard.
BACKGROUND, PANEL, BORDER, TEXT, DIM = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e"
PALETTE: tuple[str, ...] = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2")
PALETTE += ("#b877d9", "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17", "#890f02")


# --- Grafana's side: variables, legends, units ------------------------------------------


def grafana_intervals(window: float, time_interval: float) -> dict[str, float]:
    """Grafana's interval variables, in seconds, for a WINDOW-second range on a datasource
    whose scrape interval setting (``jsonData.timeInterval``) is TIME_INTERVAL:
    ``$__interval`` is the range over the panel's points but at least the scrape interval,
    ``$__rate_interval`` the larger of ``$__interval`` + scrape and 4 scrapes."""
    interval = max(time_interval, window / MAX_DATA_POINTS)
    return {
        "__rate_interval": max(interval + time_interval, 4 * time_interval),
        "__interval": interval,
        "interval": interval,
        "__range": window,
    }


def substitute(expr: str, intervals: dict[str, float]) -> str:
    """EXPR as Grafana sends it: interval variables as durations, template variables (the
    dashboard has none) as ``.*``."""
    for name, value in sorted(intervals.items(), key=lambda kv: -len(kv[0])):
        duration = f"{math.ceil(value)}s"
        expr = re.sub(rf"\$\{{{name}\}}|\${name}\b|\[\[{name}\]\]", duration, expr)
    return re.sub(r"\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\]", ".*", expr)


def datasource_time_interval() -> float:
    """The provisioned datasource's scrape interval setting, in seconds (Grafana: 15 s)."""
    import yaml

    source = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]
    text = str(source.get("jsonData", {}).get("timeInterval", "15s"))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    if match is None:
        raise SystemExit(f"{DATASOURCE}: timeInterval {text!r} is not like 5s")
    return float(match[1]) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[match[2]]


def legend(fmt: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: ``{{label}}`` replaced by the series' label value."""
    if not fmt:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return f"{labels.get('__name__', '')}{{{inner}}}"
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    return " ".join(text.split())


def _si(value: float, suffix: str, base: float = 1000.0) -> str:
    for prefix in ("", "k", "M", "G", "T"):
        if abs(value) < base or prefix == "T":
            return f"{value:.3g} {prefix}{suffix}".rstrip()
        value /= base
    raise AssertionError  # unreachable


def format_value(value: float, unit: str) -> str:
    """VALUE as Grafana writes it in UNIT (the units semlink.json uses)."""
    if not math.isfinite(value):
        return "-"
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if abs(value) >= scale or name == "µs":
                return f"{value / scale:.3g} {name}" if value else "0 s"
    if unit == "percentunit":
        return f"{100 * value:.3g}%"
    if unit == "Bps":
        return _si(value, "B/s")
    if unit == "bps":
        return _si(value, "b/s")
    if unit == "reqps":
        return f"{value:.3g} req/s"
    if unit == "short":
        return _si(value, "")
    return f"{value:.3g}"


# --- The stack: services, Prometheus, traffic -------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 30.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:  # a bad query: 400 and Prometheus's words
        raise SystemExit(f"{url}: HTTP {err.code}: {err.read().decode(errors='replace')}") from err


def prometheus_config(metrics_ports: dict[str, int], scrape: float) -> dict[str, Any]:
    """The shipped configuration (jobs, rule files) scraping the local services."""
    import yaml

    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    interval = f"{scrape:g}s"
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    config["rule_files"] = [str(PROMETHEUS_YML.parent / f) for f in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [
                f"127.0.0.1:{metrics_ports[t.rpartition(':')[0]]}" for t in static["targets"]
            ]
    return config


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if check():
                return
        time.sleep(0.5)
    raise SystemExit(f"no {what} within {timeout:.0f} s")


@contextlib.contextmanager
def running(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """ARGS as a process (output to LOG) until the block ends; then SIGTERM, and SIGKILL
    after a grace period."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Traffic:
    """What the load did, call by call (method -> status code -> count)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.packets: list[bytes] = []
        self.lock = threading.Lock()

    def record(self, method: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """CALL(*ARGS, **KWARGS): its answer, or None where it failed (counted either way)."""
        import grpc

        try:
            result = call(*args, **kwargs)
            code = "OK"
        except grpc.RpcError as err:
            result, code = None, err.code().name
        with self.lock:
            self.calls[method, code] += 1
        return result


def push_traffic(addresses: dict[str, str], seconds: float, say: Callable[[str], None]) -> Traffic:
    """For SECONDS: two callers Encode -> Transmit -> Decode photos at a few rates; every
    20 s a burst of six concurrent Decodes of packets seen so far (a ground station catching
    up after a pass); every 7 s one call that fails on purpose (a damaged packet, bytes that
    are no packet, bytes that are no image, a deadline too short to meet)."""
    import skimage.data

    from semlink.serving.client import SemlinkClient, channel, image_of

    photos = {name: getattr(skimage.data, name)() for name in PHOTOS}
    chans = {name: channel(address) for name, address in addresses.items()}
    client = SemlinkClient(chans["encoder"], chans["decoder"], chans["link"])
    traffic = Traffic()
    end = time.monotonic() + seconds
    stop = threading.Event()

    def pipeline(caller: int) -> None:
        turn = caller
        while time.monotonic() < end:
            name = PHOTOS[turn % len(PHOTOS)]
            bpp = BPPS[(turn // len(PHOTOS)) % len(BPPS)]
            turn += 2
            encoded = traffic.record(
                "Encode", client.encode, photos[name], target_bpp=bpp, timeout=120
            )
            if encoded is None:
                continue
            with traffic.lock:
                traffic.packets.append(encoded.packet)
            sent = traffic.record("Transmit", client.transmit, encoded.packet, seed=turn)
            if sent is not None and sent.delivered:
                decoded = traffic.record("Decode", client.decode, sent.delivered, 120)
                if decoded is not None:
                    assert image_of(decoded).shape == photos[name].shape

    def bursts() -> None:
        with ThreadPoolExecutor(6) as pool:
            while not stop.wait(20.0) and time.monotonic() < end - 5:
                with traffic.lock:
                    packets = random.Random(len(traffic.packets)).choices(traffic.packets, k=6)
                if packets:
                    say(f"burst of {len(packets)} concurrent Decodes")
                    decode = client.decode
                    calls = [pool.submit(traffic.record, "Decode", decode, p, 120) for p in packets]
                    for call in calls:
                        call.result()

    def failures() -> None:
        turn = 0
        while not stop.wait(7.0):
            with traffic.lock:
                packet = traffic.packets[-1] if traffic.packets else None
            if packet is None:
                continue
            damaged = bytearray(packet)
            damaged[-12] ^= 0x10
            wrong: list[tuple[str, Callable[..., Any], bytes, float]] = [
                ("Decode", client.decode, bytes(damaged), 60),  # DATA_LOSS
                ("Decode", client.decode, b"no semlink packet", 60),  # INVALID_ARGUMENT
                ("Encode", client.encode, b"no image at all", 60),  # INVALID_ARGUMENT
                ("Decode", client.decode, packet, 0.01),  # DEADLINE_EXCEEDED
            ]
            method, call, data, timeout = wrong[turn % len(wrong)]
            traffic.record(method, call, data, timeout=timeout)
            turn += 1

    threads = [threading.Thread(target=pipeline, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=bursts), threading.Thread(target=failures)]
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() < end:
            time.sleep(min(15.0, max(0.0, end - time.monotonic())))
            with traffic.lock:
                done = sum(traffic.calls.values())
            say(f"{done} calls, {max(0.0, end - time.monotonic()):.0f} s of traffic left")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return traffic


def evaluate(
    dashboard: dict[str, Any], prometheus: str, start: float, end: float, scrape: float
) -> list[dict[str, Any]]:
    """Every panel with its targets' answers: time series from ``query_range`` over
    [START, END] for graphs, the instant answer at END for tables."""
    window = end - start
    intervals = grafana_intervals(window, datasource_time_interval())
    step = max(scrape, round(window / 240, 1))  # finer than Grafana's: smoother lines
    panels = []
    for panel in dashboard["panels"]:
        entry = {
            key: panel.get(key)
            for key in ("id", "title", "type", "gridPos", "description")
            if key in panel
        }
        entry["unit"] = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
        entry["series"] = []
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], intervals)
            if panel["type"] == "table":
                params = {"query": expr, "time": f"{end:.3f}"}
                answer = get_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode(params))
                results = [
                    {"labels": r["metric"], "values": [r["value"]]}
                    for r in answer["data"]["result"]
                ]
            else:
                params = {
                    "query": expr,
                    "start": f"{start:.3f}",
                    "end": f"{end:.3f}",
                    "step": f"{step:g}",
                }
                url = f"{prometheus}/api/v1/query_range?" + urllib.parse.urlencode(params)
                answer = get_json(url)
                results = [
                    {"labels": r["metric"], "values": r["values"]} for r in answer["data"]["result"]
                ]
            for result in results:
                result["legend"] = legend(target.get("legendFormat", ""), result["labels"])
                result["expr"] = expr
            entry["series"] += sorted(results, key=lambda r: str(r["legend"]))
        panels.append(entry)
    return panels


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run the stack and the traffic; every panel's answers and what the traffic did."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise SystemExit("no `prometheus` binary on PATH: apt-get install prometheus")
    work: Path = args.work
    shutil.rmtree(work / "tsdb", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:5.0f} s] {message}", flush=True)

    began = time.monotonic()
    ports = {name: (free_port(), free_port()) for name in SERVICES}
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    extra = {
        "encoder": [],
        "link": ["--link", "leo", "--loss", "0.05"],
        "decoder": ["--workers", "1", "--max-waiting", "11"],
    }
    if args.engine == "ray":  # one replica that computes up to 4 waiting Decodes at once
        extra["decoder"] += ["--engine", "ray", "--max-batch-size", "4"]
        extra["decoder"] += ["--batch-wait-timeout", "0.2"]
    with contextlib.ExitStack() as stack:
        for name in SERVICES:
            port, metrics_port = ports[name]
            command = [sys.executable, "-m", f"services.{name}", "--port", str(port)]
            command += ["--metrics-port", str(metrics_port), "--grace", "10", *extra[name]]
            stack.enter_context(running(command, work / f"{name}.log", env))
        config = work / "prometheus.yml"
        import yaml

        metrics_ports = {name: ports[name][1] for name in SERVICES}
        config.write_text(yaml.safe_dump(prometheus_config(metrics_ports, args.scrape)))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}"]
        command += [f"--web.listen-address=127.0.0.1:{port}"]
        stack.enter_context(running(command, work / "prometheus.log"))

        from semlink.serving.client import channel, wait_until_serving

        addresses = {name: f"127.0.0.1:{ports[name][0]}" for name in SERVICES}
        for name, address in addresses.items():
            try:
                wait_until_serving(channel(address), timeout=300)
            except TimeoutError as err:
                raise SystemExit(f"{name} not serving: {err}; see {work / name}.log") from err
        say(f"encoder, link and decoder ({args.engine}) serving")

        def all_up() -> bool:
            targets = get_json(f"{base}/api/v1/targets", 5)["data"]["activeTargets"]
            return len(targets) == len(SERVICES) and all(t["health"] == "up" for t in targets)

        wait_for("Prometheus scraping every service", all_up, 60)
        say(f"Prometheus {base} scrapes every {args.scrape:g} s; traffic for {args.seconds:g} s")
        start = time.time()
        traffic = push_traffic(addresses, args.seconds, say)
        time.sleep(3 * args.scrape + 1)  # the last calls scraped and rules evaluated
        end = time.time()
        dashboard = json.loads(DASHBOARD.read_text())
        panels = evaluate(dashboard, base, start, end, args.scrape)
        say("every panel evaluated; stopping the stack")
    calls = {f"{method} {code}": n for (method, code), n in sorted(traffic.calls.items())}
    return {
        "dashboard": dashboard["title"],
        "start": start,
        "end": end,
        "scrape_seconds": args.scrape,
        "decoder_engine": args.engine,
        "rate_interval": grafana_intervals(end - start, datasource_time_interval())[
            "__rate_interval"
        ],
        "calls": calls,
        "panels": panels,
    }


# --- Drawing ------------------------------------------------------------------------------


def draw(results: dict[str, Any], out: Path, dpi: int) -> None:
    """Every panel where its gridPos puts it (24 columns; a row of the grid is 30 px in
    Grafana, here 0.3 inch), Grafana's dark theme, the legend right of each graph with
    each series' last value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    from PIL import Image

    panels = results["panels"]
    width, unit_height, header = 16.0, 0.3, 0.95  # inches
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    height = header + rows * unit_height + 0.1
    fig = plt.figure(figsize=(width, height), facecolor=BACKGROUND)
    start = datetime.fromtimestamp(results["start"], UTC)
    end = datetime.fromtimestamp(results["end"], UTC)
    calls = Counter[str](results["calls"])
    failed = sum(n for key, n in calls.items() if not key.endswith(" OK"))
    top = 1 - 0.12 / height
    fig.text(0.01, top, results["dashboard"], color=TEXT, fontsize=16, weight="bold", va="top")
    caption = (
        f"Drawn by tools/render_dashboard.py from a real Prometheus's answers to the "
        f"dashboard's queries (deploy/grafana/dashboards/semlink.json, $__rate_interval = "
        f"{results['rate_interval']:g} s) over {start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S} UTC. "
        f"Encoder, link (LEO, 5% frame loss) and decoder ({results['decoder_engine']}) on "
        f"localhost, scraped every {results['scrape_seconds']:g} s. Traffic: "
        f"{calls.total()} calls, {failed} failed (on purpose): "
        + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        + "."
    )
    fig.text(
        0.01,
        top - 0.36 / height,
        "\n".join(textwrap.wrap(caption, 190)),
        color=DIM,
        fontsize=9,
        va="top",
        linespacing=1.4,
    )

    def box(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """Grid units (from the top left) to figure coordinates (from the bottom left)."""
        left, right = x / 24, (x + w) / 24
        upper = 1 - (header + y * unit_height) / height
        lower = 1 - (header + (y + h) * unit_height) / height
        return left, lower, right - left, upper - lower

    for panel in panels:
        pos = panel["gridPos"]
        left, lower, w, h = box(pos["x"], pos["y"], pos["w"], pos["h"])
        pad_x, pad_y = 0.004, 0.06 / height
        frame = fig.add_axes((left + pad_x, lower + pad_y, w - 2 * pad_x, h - 2 * pad_y))
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color(BORDER)
        frame.text(
            0.008,
            0.975,
            panel["title"],
            color=TEXT,
            fontsize=10.5,
            weight="bold",
            va="top",
            transform=frame.transAxes,
        )
        # Inside the panel: room for the title, the axis labels and the legend.
        inner_left = left + pad_x + 0.85 / width  # the y axis' labels
        inner_width = w * (0.57 if panel["type"] != "table" else 1.0) - (inner_left - left)
        inner_lower = lower + pad_y + 0.32 / height
        inner_height = h - 2 * pad_y - 0.32 / height - 0.36 / height
        if panel["type"] == "table":
            bottom = lower + pad_y + 0.1 / height
            ax = fig.add_axes((left + 0.01, bottom, w - 0.02, inner_lower + inner_height - bottom))
            ax.axis("off")
            draw_table(ax, panel)
            continue
        ax = fig.add_axes((inner_left, inner_lower, inner_width, inner_height))
        ax.set_facecolor(PANEL)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(colors=DIM, labelsize=8, length=0)
        unit = panel["unit"]
        lines = []
        for index, series in enumerate(panel["series"]):
            times = mdates.date2num(
                [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
            )
            values = [float(v) for _, v in series["values"]]
            finite = [v for v in values if math.isfinite(v)]
            if not finite:
                continue
            label = f"{series['legend']}  {format_value(finite[-1], unit)}"
            (line,) = ax.plot(
                times, values, color=PALETTE[index % len(PALETTE)], linewidth=1.3, label=label
            )
            lines.append(line)
        ax.set_xlim(float(mdates.date2num(start)), float(mdates.date2num(end)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6, minticks=3))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: format_value(v, u)))
        ax.grid(color=BORDER, linewidth=0.6)
        if not lines:
            ax.set_yticks([])
            ax.set_xticks([])
            note = "No data"
            if "batch" in panel["title"].lower():
                note += " (the decoder batches only on Ray Serve)"
            ax.text(0.5, 0.5, note, color=DIM, ha="center", va="center", transform=ax.transAxes)
            continue
        low, high = ax.get_ylim()
        ax.set_ylim(min(0.0, low), high)
        legend_box = ax.legend(
            handles=lines,
            title="last value",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            frameon=False,
            fontsize=7.5,
            labelcolor=TEXT,
            handlelength=1.0,
            borderaxespad=0.0,
            alignment="left",
        )
        legend_box.get_title().set_color(DIM)
        legend_box.get_title().set_fontsize(7.5)
    picture = io.BytesIO()
    fig.savefig(picture, dpi=dpi, facecolor=BACKGROUND)
    plt.close(fig)
    # 256 colours are plenty for flat panels and a few lines: a third of the RGB PNG's size.
    with Image.open(picture) as image:
        image.convert("RGB").quantize(256).save(out, optimize=True)


def draw_table(ax: Any, panel: dict[str, Any]) -> None:
    """Grafana's table of an instant query: one row per series, one column per label."""
    ax.set_xticks([])
    ax.set_yticks([])
    series = panel["series"]
    if not series:
        ax.text(0.5, 0.5, "No data", color=DIM, ha="center", va="center", transform=ax.transAxes)
        return
    columns = sorted({k for s in series for k in s["labels"]} - {"__name__"})
    cells = [[s["labels"].get(c, "") for c in columns] + [s["values"][-1][1]] for s in series]
    table = ax.table(
        cellText=cells, colLabels=[*columns, "Value"], bbox=(0, 0, 1, 1), cellLoc="left"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for (row, _), cell in table.get_celld().items():
        cell.set_facecolor(BORDER if row == 0 else PANEL)
        cell.set_edgecolor(BACKGROUND)
        cell.get_text().set_color(TEXT)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "out" / "dashboard",
        help="logs, Prometheus's data and results.json (default: out/dashboard)",
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="traffic (default 120)")
    parser.add_argument("--scrape", type=float, default=1.0, help="scrape interval, seconds")
    parser.add_argument(
        "--engine",
        choices=("ray", "process"),
        default="ray",
        help="how the decoder runs: Ray Serve with batching (default) or a plain process",
    )
    parser.add_argument("--replot", type=Path, help="draw a saved results.json; run nothing")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args()
    began = time.monotonic()
    if args.replot:
        results = json.loads(args.replot.read_text())
    else:
        results = collect(args)
        saved = args.work / "results.json"
        saved.write_text(json.dumps(results, indent=1) + "\n")
        print(f"answers saved to {saved}")
    draw(results, args.out, args.dpi)
    size = args.out.stat().st_size / 1024
    print(f"{args.out}: {size:.0f} KiB, {len(results['panels'])} panels")
    print(f"wall time {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
