"""Build inputs for machines without the public indices: the local package folders pip's
configuration names (served read-only on 127.0.0.1 while the images build) and a CPU torch."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .shell import OUT, run

PUBLIC_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
PIP_DIRS_PORT = 47311
"""Where local package folders are served during builds: a fixed port keeps PIP_EXTRA, and so
the build cache, the same from run to run (any free port if it is taken)."""


def pip_config() -> dict[str, list[str]]:
    """pip's configuration (files and environment) as key -> values."""
    done = run([sys.executable, "-m", "pip", "config", "list"], check=False, capture=True)
    config: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        config.setdefault(name, []).extend(value.strip().strip("'\"").split())
    return config


def local_package_dirs(config: dict[str, list[str]]) -> list[tuple[str, Path]]:
    """The local find-links directories and file:// indices pip's configuration names."""
    found: list[tuple[str, Path]] = []
    for kind in ("find-links", "index-url", "extra-index-url"):
        for value in config.get(kind, []):
            path = Path(urllib.parse.urlsplit(value).path if value.startswith("file:") else value)
            if path.is_absolute() and path.is_dir():
                entry = ("find-links" if kind == "find-links" else "extra-index-url", path)
                if entry not in found:
                    found.append(entry)
    return found


@contextlib.contextmanager
def serve_package_dirs(dirs: list[tuple[str, Path]]) -> Iterator[list[str]]:
    """Serve local package directories read-only on 127.0.0.1; yield pip options for them."""
    if not dirs:
        yield []
        return
    root = OUT / "pip-dirs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    options: list[tuple[str, str]] = []
    for i, (kind, path) in enumerate(dirs):
        # An index's pages link to ../../files/...: serve the folder above "simple".
        served = path.parent if path.name == "simple" else path
        (root / f"d{i}").symlink_to(served)
        options.append((kind, f"d{i}/simple/" if path.name == "simple" else f"d{i}/"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", PIP_DIRS_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pip = [f"--{kind} http://127.0.0.1:{port}/{url}" for kind, url in options]
        yield [*pip, "--trusted-host 127.0.0.1"]
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def reachable(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def torch_pip(dirs: list[tuple[str, Path]]) -> tuple[str | None, str]:
    """TORCH_PIP for the builds (None: the Dockerfiles' default) and why."""
    if os.environ.get("SEMLINK_TORCH_PIP"):
        return os.environ["SEMLINK_TORCH_PIP"], "from SEMLINK_TORCH_PIP"
    if reachable(PUBLIC_TORCH_INDEX + "/torch/"):
        return None, f"the pinned CPU wheels from {PUBLIC_TORCH_INDEX}"
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for kind, path in dirs:
        if kind != "find-links":
            continue
        for wheel in sorted(path.glob(f"torch-*+cpu-{py}-{py}-*.whl"), reverse=True):
            version = wheel.name.split("-")[1]
            return (
                f"torch=={version}",
                f"{PUBLIC_TORCH_INDEX} is unreachable: the local CPU wheel {wheel.name} "
                "(torchvision: PyPI's, which semlink._torchvision lets import on CPU torch)",
            )
    raise SystemExit(f"{PUBLIC_TORCH_INDEX} is unreachable and no local CPU torch wheel is found")
