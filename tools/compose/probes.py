"""The running stack seen from this machine: the demo photos pushed through its published
ports, Prometheus' scrape targets and the semlink metrics that must move."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from .report import Report
from .shell import OUT, say

PORTS = {"encoder": 50051, "link": 50053, "decoder": 50052}
PROMETHEUS_URL = "http://127.0.0.1:9090"
MIN_PSNR_DB = 20.0
"""Every demo photo at 0.03 bpp decodes above this (they measure 21-27 dB in process)."""


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


def wait_metrics_moved(before: dict[str, float], photos: int) -> None:
    """Wait (30 s at most) until every job's OK RPCs grew by ``photos`` since ``before`` and
    every MOVED_ALSO series moved."""
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
            all(v >= photos for v in moved.values())
            and len(also) == len(MOVED_ALSO)
            and all(v > 0 for v in also.values())
        ):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"semlink metrics did not move: {moved} {also}")
        time.sleep(2)
    say(f"  Prometheus: OK RPCs counted per job during the push: {moved}")
    say(f"  and: {also}")
