"""tools/render_dashboard.py without its stack: Grafana's variables and legends, the units,
and a drawing of every panel of the dashboard from made-up answers (the real run needs
Prometheus and about three minutes: docs/dashboard.md)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _load_tool() -> Any:
    path = REPO / "tools" / "render_dashboard.py"
    spec = importlib.util.spec_from_file_location("render_dashboard", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_dashboard"] = module
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()
DASHBOARD = json.loads(TOOL.DASHBOARD.read_text())


def test_grafana_intervals_follow_the_datasource_scrape_interval() -> None:
    assert TOOL.datasource_time_interval() == 5.0  # jsonData.timeInterval, as prometheus.yml
    intervals = TOOL.grafana_intervals(120.0, 5.0)
    assert intervals["__rate_interval"] == 20.0  # 4 scrapes
    assert intervals["__interval"] == 5.0
    wide = TOOL.grafana_intervals(24 * 3600.0, 5.0)  # a day over 800 points: 108 s each
    assert wide["__interval"] == 108.0 and wide["__rate_interval"] == 113.0


def test_every_query_is_sent_without_variables() -> None:
    intervals = TOOL.grafana_intervals(120.0, 5.0)
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    assert any("$__rate_interval" in e for e in exprs)
    for expr in exprs:
        sent = TOOL.substitute(expr, intervals)
        assert "$" not in sent and "[[" not in sent, sent
        assert re.findall(r"\[(\w+)\]", sent) in ([], ["20s"], ["20s", "20s"]), sent
    assert TOOL.substitute('up{job=~"$job"}[$__interval]', intervals) == 'up{job=~".*"}[5s]'


def test_legend_and_units_as_grafana_writes_them() -> None:
    labels = {"__name__": "semlink_queue_depth", "service": "decoder"}
    assert TOOL.legend("depth {{service}} {{replica}}", labels) == "depth decoder"
    assert TOOL.legend("", labels) == 'semlink_queue_depth{service="decoder"}'
    assert TOOL.format_value(0.25, "s") == "250 ms"
    assert TOOL.format_value(3.4, "s") == "3.4 s"
    assert TOOL.format_value(0.052, "percentunit") == "5.2%"
    assert TOOL.format_value(72900.0, "bps") == "72.9 kb/s"
    assert TOOL.format_value(608.0, "Bps") == "608 B/s"
    assert TOOL.format_value(0.5, "reqps") == "0.5 req/s"
    assert TOOL.format_value(float("nan"), "s") == "-"


@pytest.mark.parametrize("empty_batching", [False, True])
def test_every_panel_is_drawn(tmp_path: Path, empty_batching: bool) -> None:
    start = 1_700_000_000.0
    panels = []
    for panel in DASHBOARD["panels"]:
        series: list[dict[str, Any]] = []
        if not (empty_batching and "batch" in panel["title"]):
            times = [start + t for t in range(0, 121, 2)] if panel["type"] != "table" else [start]
            series = [
                {
                    "legend": target.get("legendFormat", ""),
                    "labels": {"service": "decoder", "version": "0.1.0"},
                    "values": [[t, str(1 + (t - start) / 100)] for t in times],
                }
                for target in panel["targets"]
            ]
        unit = panel["fieldConfig"]["defaults"]["unit"]
        panels.append({**panel, "unit": unit, "series": series})
    results = {
        "dashboard": DASHBOARD["title"],
        "start": start,
        "end": start + 120,
        "scrape_seconds": 1.0,
        "decoder_engine": "ray",
        "rate_interval": 20.0,
        "calls": {"Decode OK": 10, "Decode DATA_LOSS": 1},
        "panels": panels,
    }
    out = tmp_path / "dashboard.png"
    TOOL.draw(results, out, dpi=40)
    with Image.open(out) as image:
        assert image.size == (640, 678)  # 16 x (0.95 + 53 rows x 0.3 + 0.1) inches at 40 dpi


def test_the_documentation_names_every_panel() -> None:
    doc = (REPO / "docs" / "dashboard.md").read_text()
    for panel in DASHBOARD["panels"]:
        assert f"**{panel['title']}**" in doc, panel["title"]
    assert "tools/render_dashboard.py" in doc and "dashboard.png" in doc
