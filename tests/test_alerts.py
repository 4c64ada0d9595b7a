"""deploy/prometheus/alerts.yml: the four alerts, only exported metrics, and promtool's check."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .test_deploy import exported_names

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"
WANTED = {
    "SemlinkDecoderQueueSaturated",
    "SemlinkDecodeLatencyP99High",
    "SemlinkErrorRatioHigh",
    "SemlinkLinkLossHigh",
}


def test_alerts_query_only_exported_metrics() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == WANTED
    exported = exported_names()
    for rule in rules:
        names = set(re.findall(r"\b(?:grpc_server|semlink)_[a-z_]+", rule["expr"]))
        assert names and names <= exported, f"{rule['alert']}: {sorted(names - exported)}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 rules found" in out.stdout
