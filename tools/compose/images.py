"""The images: stand-in bases where the public ones cannot be pulled, the semlink builds
(BuildKit, build arguments only where the Dockerfile declares them), the lean-image check,
whether the demo client can run in the edge image."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

from .engine import apt_install, docker, image_exists, image_mb
from .report import Report
from .shell import OUT, REPO, run, say
from .static import dockerfile_args

IMAGES = {
    # image -> (Dockerfile, target): what the script builds; docker-compose.yml uses these names
    "semlink-encoder": ("services/encoder/Dockerfile", None),
    "semlink-decoder:cpu": ("services/decoder/Dockerfile", "cpu"),
}
PUBLIC_BASE = "python:3.11-slim"
STANDIN_BASE = "semlink-standin/python:3.11-bookworm"
STANDIN_PROMETHEUS = "semlink-standin/prometheus:bookworm"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def standin_image(tag: str, packages: list[str], changes: list[str], report: Report) -> str:
    """A Debian bookworm minbase image with ``packages`` (mmdebstrap + docker import)."""
    if image_exists(tag):
        say(f"reusing the stand-in image {tag}")
        report.images[tag] = {"size_mb": image_mb(tag), "build_s": float("nan")}
        return tag
    if not shutil.which("mmdebstrap"):
        apt_install(["mmdebstrap"])
    tarball = OUT / (tag.replace("/", "_").replace(":", "_") + ".tar")
    say(f"building the stand-in image {tag} (mmdebstrap bookworm: {', '.join(packages)})")
    start = time.monotonic()
    run(
        [
            "nice",
            "-n",
            "10",
            "mmdebstrap",
            "--variant=minbase",
            "--include=" + ",".join(packages),
            "bookworm",
            str(tarball),
        ],
        log=OUT / f"mmdebstrap-{tag.split('/')[-1].split(':')[0]}.log",
    )
    cmd = [docker(), "import"]
    for change in [f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8", *changes]:
        cmd += ["--change", change]
    run([*cmd, str(tarball), tag], capture=True)
    tarball.unlink()
    seconds = time.monotonic() - start
    report.images[tag] = {"size_mb": image_mb(tag), "build_s": seconds}
    say(f"  {tag} ready in {seconds:.0f} s")
    return tag


def build(
    image: str,
    dockerfile: str,
    target: str | None,
    args: dict[str, str],
    secret: Path | None,
    report: Report,
    cold: bool = False,
) -> None:
    cmd = [docker(), "build", "--network", "host", "-f", dockerfile, "-t", image]
    if cold:
        cmd.append("--no-cache")
    if target:
        cmd += ["--target", target]
    declared = dockerfile_args(REPO / dockerfile)
    for key, value in args.items():
        if key in declared:
            cmd += ["--build-arg", f"{key}={value}"]
    if secret is not None:
        cmd += ["--secret", f"id=pip_ca,src={secret}"]
    say(f"building {image} ({dockerfile}{', target ' + target if target else ''})")
    say(f"  DOCKER_BUILDKIT=1 {shlex.join([*cmd, str(REPO)])}")
    start = time.monotonic()
    name = image.replace(":", "-")
    run(
        [*cmd, str(REPO)],
        env={"DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"},
        log=OUT / f"build-{name}.log",
    )
    seconds = time.monotonic() - start
    size = image_mb(image)
    report.images[image] = {"build_s": seconds, "size_mb": size}
    say(f"  {image}: {size:.0f} MB, built in {seconds:.0f} s")


def in_image(image: str, code: str) -> subprocess.CompletedProcess[str]:
    return run(
        [docker(), "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", code],
        check=False,
        capture=True,
        timeout=300,
    )


def check_lean(image: str, report: Report) -> None:
    """The edge image: CPU torch, no CUDA libraries, no build secret left in it."""
    code = (
        "import importlib.metadata as m, torch; "
        "print(torch.__version__, torch.version.cuda, "
        "sorted(d.metadata['Name'] for d in m.distributions() "
        "if d.metadata['Name'].lower().startswith(('nvidia', 'cuda', 'triton'))))"
    )
    done = in_image(image, code)
    if done.returncode != 0:
        raise SystemExit(f"{image}: torch does not import:\n{done.stderr}")
    say(f"  {image}: torch, CUDA, CUDA packages = {done.stdout.strip()}")
    if "None []" not in done.stdout:
        raise SystemExit(f"{image} is not lean: {done.stdout}")
    secret = in_image(
        image,
        "import os; print(os.path.exists('/run/secrets/pip_ca'), 'PIP_CERT' in os.environ)",
    )
    if secret.stdout.split() != ["False", "False"]:
        raise SystemExit(f"{image}: the CA bundle secret is visible in the image: {secret.stdout}")


DEMO_CLIENT_IMPORTS = "import services.cli, semlink.demo, semlink.quality.metrics"
"""What the compose file's demo client (``semlink demo``) imports before its first photo, in
its order: the command line, which imports semlink first, then the demo and its metrics (piq,
which imports torchvision). semlink must come first: where the PyTorch CPU index cannot be
reached the image holds PyPI's torchvision on CPU torch, which imports only once
``semlink._torchvision`` is installed (docs/install.md), so a bare ``import torchvision``
fails there while the demo client runs."""


def demo_client_runs(image: str, report: Report) -> bool:
    """Whether the demo client's imports succeed in IMAGE, as ``semlink demo`` makes them (a
    note with the error's last line where they do not)."""
    done = in_image(image, DEMO_CLIENT_IMPORTS)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        report.notes.append(f"{image}: the demo client's imports fail ({last}): it is left out")
    return done.returncode == 0
