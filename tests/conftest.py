from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import skimage.data
from PIL import Image

if TYPE_CHECKING:
    from semlink.codec import Codec, Codecs

REPO = Path(__file__).resolve().parents[1]
KODAK = Path(os.environ.get("SEMLINK_KODAK", REPO.parent / "shared" / "data" / "kodak"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return skimage.data.chelsea()


def kodak_image(name: str) -> np.ndarray:
    path = KODAK / f"{name}.png"
    if not path.exists():
        pytest.skip(f"Kodak image {path} not present (set SEMLINK_KODAK)")
    return np.asarray(Image.open(path).convert("RGB"))


# Codecs are built here once, from explicit settings, as a service's main builds them, and
# handed to the tests that use them (diffusers' habit: no environment variable decides).
@pytest.fixture(scope="session")
def codecs() -> Codecs:
    """Every profile's codec over the models the settings name (lite's shipped restorer)."""
    from semlink.codec import Codecs
    from semlink.config import Settings

    return Codecs.from_settings(Settings())


@pytest.fixture(scope="session")
def lite(codecs: Codecs) -> Codec:
    """lite's codec (learned restorer, shipped codecs): what a service encodes with."""
    return codecs["lite"]


@pytest.fixture(scope="session")
def lanczos() -> Codec:
    """lite's codec with its restorer switched off: the reference upsampled with Lanczos."""
    from semlink.codec import Codec
    from semlink.config import Settings
    from semlink.profiles import LITE
    from semlink.resolver import Models

    return Codec(Models(LITE, Settings(lite_restorer=False)))


@pytest.fixture(scope="session")
def tiny() -> Codecs:
    """Every profile's codec over tiny random models (sedic's diffusion, extraction and
    learned codecs; the whole pipeline runs, generative pictures are noise)."""
    from semlink.codec import Codecs
    from semlink.config import Settings

    return Codecs.from_settings(Settings(tiny_models=True))


# Tests that need Debian's prometheus package (tests/test_prometheus.py, promtool in
# tests/test_alerts.py) skip without it, and .ci/run installs it: a skip that easy to miss
# lets `make test` pass here while checking less than CI, so the run says so at its end.
# SEMLINK_REQUIRE_PROMETHEUS=1 (.ci/run sets it) turns such a skip into a failed run.
PROMETHEUS_SKIP = "apt-get install prometheus"
"""Words in the skip reason of every test that needs the prometheus package."""
REQUIRE_PROMETHEUS = "SEMLINK_REQUIRE_PROMETHEUS"


def _required() -> bool:
    return os.environ.get(REQUIRE_PROMETHEUS, "") not in {"", "0"}


def _prometheus_skips(reporter: pytest.TerminalReporter) -> list[tuple[str, str]]:
    """(test id, skip reason) of every test skipped for want of the prometheus package."""
    skips = []
    for report in reporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple) and PROMETHEUS_SKIP in str(report.longrepr[2]):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            skips.append((report.nodeid, reason))
    return skips


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """After the short test summary (-ra): which tests did not run for want of Prometheus."""
    yield
    skips = _prometheus_skips(terminalreporter)
    if not skips:
        return
    tr = terminalreporter
    tr.write_sep("=", f"{len(skips)} SKIPPED because no prometheus binary", red=True, bold=True)
    per_file = Counter(nodeid.partition("::")[0] for nodeid, _ in skips)
    tr.write_line(", ".join(f"{path}: {n}" for path, n in sorted(per_file.items())))
    tr.write_line(
        "The dashboards, alerts and rules were not checked on a real Prometheus here; CI "
        "(.ci/run) installs it and runs them. To run them here: "
        "sudo apt-get install --no-install-recommends prometheus",
        red=True,
        bold=True,
    )
    if _required():
        tr.write_line(f"{REQUIRE_PROMETHEUS} is set: this run fails.", red=True, bold=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if (
        _required()
        and reporter is not None
        and _prometheus_skips(reporter)
        and session.exitstatus == pytest.ExitCode.OK
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
