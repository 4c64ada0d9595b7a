"""The two locks and the lean installs (issue 34.2, docs/install.md).

requirements.lock is the CPU set (what `make` and CI install), requirements-gpu.lock the GPU
decoder's: they must pin the same packages at the same versions except the CUDA/CPU builds,
and both must satisfy pyproject.toml. The edge encoder's image installs only the package's
dependencies and its `demo` extra: the lite codec, the services and the demo client must run
with the rest of the stack absent.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
CPU_LOCK = REPO / "requirements.lock"
GPU_LOCK = REPO / "requirements-gpu.lock"
BUILDS = {"torch", "torchvision", "onnxruntime", "onnxruntime-gpu"}
"""What may differ between the locks: the CPU and CUDA builds."""
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins(lock: Path) -> dict[str, Requirement]:
    """name -> requirement of every pin in ``lock`` (comments and pip options skipped)."""
    out: dict[str, Requirement] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        name = requirement.name.lower()
        assert name not in out, f"{lock.name} pins {name} twice"
        out[name] = requirement
    return out


def pinned(requirement: Requirement) -> Version:
    (spec,) = requirement.specifier
    assert spec.operator == "==", requirement
    return Version(spec.version)


def test_the_locks_differ_only_in_the_builds() -> None:
    cpu, gpu = pins(CPU_LOCK), pins(GPU_LOCK)
    assert set(cpu) - BUILDS == set(gpu) - BUILDS
    for name in set(cpu) - BUILDS:
        assert str(cpu[name]) == str(gpu[name]), name


def test_the_cpu_lock_holds_no_cuda_build() -> None:
    cpu, gpu = pins(CPU_LOCK), pins(GPU_LOCK)
    assert pinned(cpu["torch"]).local == "cpu"
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu  # one module name: never both
    for lock in (cpu, gpu):
        assert not [n for n in lock if n.startswith(("nvidia-", "triton", "cuda-"))]
    assert pinned(cpu["onnxruntime"]) == pinned(gpu["onnxruntime-gpu"])


@pytest.mark.parametrize("lock", [CPU_LOCK, GPU_LOCK], ids=lambda p: p.name)
def test_torchvision_is_torchs(lock: Path) -> None:
    """torchvision 0.N pins torch 2.(N-15): a mismatched pair never imports."""
    lock_pins = pins(lock)
    torch, vision = pinned(lock_pins["torch"]), pinned(lock_pins["torchvision"])
    assert (torch.major, torch.minor) == (2, vision.minor - 15), (torch, vision)


@pytest.mark.parametrize("lock", [CPU_LOCK, GPU_LOCK], ids=lambda p: p.name)
def test_the_locks_satisfy_the_package(lock: Path) -> None:
    lock_pins = pins(lock)
    extras = PROJECT["optional-dependencies"].values()
    needs = PROJECT["dependencies"] + [r for extra in extras for r in extra]
    for line in needs:
        requirement = Requirement(line)
        name = requirement.name.lower()
        assert name in lock_pins, f"{lock.name} does not pin {name}"
        version = pinned(lock_pins[name])
        assert requirement.specifier.contains(version, prereleases=True), (lock.name, line)


def _edge_blocked() -> list[str]:
    """Top-level modules the edge image lacks: the `full` extra's beyond `demo` and the
    dependencies, and the lock-only stacks."""
    edge = {Requirement(r).name for r in PROJECT["dependencies"]}
    edge |= {Requirement(r).name for r in PROJECT["optional-dependencies"]["demo"]}
    full = {Requirement(r).name for r in PROJECT["optional-dependencies"]["full"]}
    modules = {name.replace("-", "_") for name in full - edge}
    return sorted(modules | {"compressai", "onnxruntime", "onnx", "ray", "torch_geometric"})


EDGE_RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed: import raises, find_spec answers None

import services.encoder.server, services.link.server, semlink.demo
import numpy as np, skimage.data
from semlink import decode, encode
from semlink.models.weights import WeightsError

image = skimage.data.chelsea()
packet = encode(image, "lite", max_bytes=600, caption="a cat").data
assert decode(packet).image.shape == image.shape
try:
    encode(image, "sedic", max_bytes=600)
except WeightsError as e:
    assert "full" in str(e), e
else:
    raise AssertionError("sedic encoded without its stack")
print("edge ok")
"""


@pytest.mark.slow
def test_the_edge_set_runs_lite_the_services_and_the_demo() -> None:
    """What services/encoder/Dockerfile installs is enough for its jobs: lite encode and
    decode, the encoder and link servers, the demo client; the sedic profile fails saying
    what it needs."""
    code = EDGE_RUN.format(blocked=_edge_blocked())
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("edge ok"), done.stdout


def test_torchvision_imports_with_or_without_its_extension() -> None:
    """semlink._torchvision: PyPI's CUDA torchvision 0.28.0 on CPU torch (the CPU lock where
    the PyTorch index is unreachable) imports; with a matching build nothing is declared."""
    code = (
        "import semlink, sys\n"
        "assert 'torch' not in sys.modules\n"
        "import torchvision, piq, compressai, segment_anything\n"
        "from semlink import _torchvision\n"
        "print(torchvision.extension._has_ops(), len(_torchvision._declared))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    has_ops, declared = done.stdout.split()
    assert (has_ops, declared) in {("True", "0"), ("False", "1")}
