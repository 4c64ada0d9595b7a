"""Loading weights safely: sha256 manifests, no pickles, strict key matching.

A weights directory holds the files and ``manifest.json``::

    {"files": {"unet/diffusion_pytorch_model.safetensors": "<sha256>", ...}}

:func:`verify_manifest` refuses a directory whose files do not hash to the manifest
(tampered or half-downloaded). :func:`load_state_dict` reads safetensors, or
``torch.load(weights_only=True)`` for .pt/.pth (never an arbitrary pickle).
:func:`load_strict` refuses a state dict whose keys differ from the model's, naming
them; research code's ``strict=False`` hides renamed keys and decodes garbage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

MANIFEST = "manifest.json"


class WeightsError(RuntimeError):
    """Weights are missing, tampered with or do not fit the model."""


class TamperedWeightsError(WeightsError):
    pass


class KeyMismatchError(WeightsError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, files: list[str] | None = None) -> dict[str, str]:
    """Hash ``files`` (default: every file below ``directory``) into ``manifest.json``."""
    names = files or sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    table = {name: sha256_of(directory / name) for name in names}
    (directory / MANIFEST).write_text(json.dumps({"files": table}, indent=2, sort_keys=True) + "\n")
    return table


def verify_manifest(directory: Path) -> dict[str, str]:
    """Check every file named in ``directory/manifest.json``; return the table."""
    manifest = directory / MANIFEST
    if not manifest.exists():
        raise WeightsError(
            f"{manifest} not found: weights need a manifest of sha256 sums "
            f"(`semlink weights fetch` writes one)"
        )
    table: dict[str, str] = json.loads(manifest.read_text())["files"]
    for name, expected in table.items():
        path = directory / name
        if not path.exists():
            raise WeightsError(
                f"{path} is listed in the manifest but missing; fetch the weights again"
            )
        actual = sha256_of(path)
        if actual != expected:
            raise TamperedWeightsError(
                f"{path} has sha256 {actual}, the manifest says {expected}: the file was changed "
                f"or is incomplete; fetch it again"
            )
    return table


def architecture_digest(recipe: str, *modules: nn.Module) -> str:
    """sha256 over ``recipe`` (what builds the models: their config and seed) and the
    modules' parameter names, shapes and dtypes: what tiny random models put into a
    fingerprint, where there is no file to hash.

    Never the parameters' values: they are drawn from the seed in floating point at start-up,
    and the CPU's vector kernels (AVX-512, AVX2 or none: ``ATEN_CPU_CAPABILITY``) round them
    differently, so a digest of the numbers would differ between two ends that built the
    same models and refuse each other's packets."""
    digest = hashlib.sha256(recipe.encode())
    for module in modules:
        digest.update(f"|{type(module).__module__}.{type(module).__qualname__}".encode())
        for name, parameter in module.named_parameters():
            digest.update(f"|{name}:{tuple(parameter.shape)}:{parameter.dtype}".encode())
    return digest.hexdigest()


def state_digest(*modules: nn.Module) -> str:
    """sha256 over the modules' state dicts (names and exact bytes): two modules hold the
    same numbers. Not for fingerprints of models built at start-up (see
    :func:`architecture_digest`)."""
    digest = hashlib.sha256()
    for module in modules:
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(key.encode())
            raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            digest.update(raw.numpy().tobytes())
    return digest.hexdigest()


def verify_if_local(source: str | Path) -> None:
    """Check a local model directory against its manifest, when it has one (hub ids pass)."""
    directory = Path(source)
    if directory.is_dir() and (directory / MANIFEST).exists():
        verify_manifest(directory)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file, or a .pt/.pth with ``weights_only=True``."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    if path.suffix in (".pt", ".pth", ".bin"):
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, dict):
            raise WeightsError(f"{path} does not hold a state dict")
        return loaded
    raise WeightsError(f"{path}: unknown weight format (use .safetensors, .pt or .pth)")


def load_strict(
    module: nn.Module, state_dict: dict[str, torch.Tensor], what: str = "model"
) -> None:
    """Load with every key matched; name missing and unexpected keys otherwise."""
    expected = set(module.state_dict())
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise KeyMismatchError(
            f"{what}: state dict does not match the architecture; missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''} (wrong config or renamed keys)"
        )
    module.load_state_dict(state_dict, strict=True)


_said: set[str] = set()


def say_once(message: str) -> None:
    """Log a fallback notice (weights missing, so a path is off) once per process."""
    import logging

    if message not in _said:
        _said.add(message)
        logging.getLogger("semlink").warning(message)
