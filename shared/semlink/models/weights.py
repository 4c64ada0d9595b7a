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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file
from torch import nn

from semlink.errors import WeightsError

MANIFEST = "manifest.json"

T = TypeVar("T")


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
    table = _manifest_table(manifest)
    for name, expected in table.items():
        path = directory / name
        if not path.resolve().is_relative_to(directory.resolve()):
            raise WeightsError(f"{manifest}: entry {name!r} points outside {directory}")
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


def _manifest_table(manifest: Path) -> dict[str, str]:
    """The ``files`` table of a manifest; ``WeightsError`` naming what is wrong with it."""
    shape = '{"files": {"<relative path>": "<sha256 hex>", ...}}'
    try:
        parsed = json.loads(manifest.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(
            f"{manifest} is not valid JSON ({exc}); a manifest is {shape}: write it again "
            f"(`semlink weights fetch` or `semlink weights synth`)"
        ) from exc
    table = parsed.get("files") if isinstance(parsed, dict) else None
    if not isinstance(table, dict) or not table:
        raise WeightsError(f"{manifest} lists no files; a manifest is {shape}")
    for name, digest in table.items():
        if not (isinstance(digest, str) and len(digest) == 64 and _is_hex(digest)):
            raise WeightsError(
                f"{manifest}: the entry for {name!r} is {digest!r}, not a sha256 hex digest"
            )
    return table


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def check_loading_info(what: str, info: dict[str, Any]) -> None:
    """Refuse a ``from_pretrained(..., output_loading_info=True)`` load (diffusers or
    transformers) that left parameters at random, ignored some or resized some: the
    libraries only warn about those, and the model would decode garbage."""
    missing = sorted(info.get("missing_keys") or [])
    unexpected = sorted(info.get("unexpected_keys") or [])
    mismatched = [
        item
        if isinstance(item, str)
        else f"{item[0]}: file {tuple(item[1])}, model {tuple(item[2])}"
        for item in info.get("mismatched_keys") or []
    ]
    errors = [str(e) for e in info.get("error_msgs") or []]
    if missing or unexpected or mismatched or errors:
        raise KeyMismatchError(
            f"{what}: the weights do not fit the architecture its config.json describes; "
            f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}, wrong shape "
            f"{mismatched[:3]}{' ...' if len(mismatched) > 3 else ''}"
            f"{', ' + errors[0][:300] if errors else ''} (wrong config or renamed keys)"
        )


def load_error(what: str, exc: Exception, wrong_shapes: list[str] | None = None) -> WeightsError:
    """A library's failure to build or fill a model from a directory, said plainly
    (``wrong_shapes``: :func:`shape_mismatches`, when the library's message lacks them)."""
    first = str(exc).strip().splitlines()
    detail = " ".join(line.strip() for line in first[:4])[:600]
    shapes = f"; wrong shape: {wrong_shapes[:3]}" if wrong_shapes else ""
    return WeightsError(
        f"{what}: cannot load ({type(exc).__name__}: {detail}){shapes}; the files do not fit "
        f"the architecture its config describes (wrong shape, wrong config or a damaged file)"
    )


def shape_mismatches(build: Callable[[], nn.Module], directory: Path) -> list[str]:
    """Tensors of ``directory``'s safetensors files whose shapes differ from the model
    ``build`` makes (built on the meta device: no memory, no time); [] when none do or the
    model cannot be built."""
    from safetensors import safe_open

    try:
        with torch.device("meta"):
            own = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except Exception:  # the diagnosis must never hide the error it explains
        return []
    wrong = []
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shape = tuple(f.get_slice(key).get_shape())
                if key in own and own[key] != shape:
                    wrong.append(f"{key}: file {shape}, model {own[key]}")
    return wrong


def load_checked(
    what: str,
    load: Callable[[], tuple[T, dict[str, Any]]],
    mismatches: Callable[[], list[str]] | None = None,
) -> T:
    """What ``load`` loads: a ``from_pretrained(..., output_loading_info=True)`` call of
    diffusers or transformers and its loading info. A failure is a :func:`load_error`
    naming ``what`` (and the tensors of the wrong shape ``mismatches`` finds); a load that
    left parameters random, ignored or resized is refused (:func:`check_loading_info`)."""
    try:
        loaded, info = load()
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise load_error(what, exc, mismatches() if mismatches else None) from exc
    check_loading_info(what, info)
    return loaded


def load_transformers(
    what: str, source: str | Path, model: Any, processor: Any, build: Callable[[], nn.Module]
) -> tuple[Any, Any]:
    """A transformers ``model`` class and its ``processor`` class loaded from ``source``: a
    local directory (its manifest checked first, when it has one) or a hub id, refused as
    :func:`load_checked` says; ``build`` makes the model from its config alone (to name the
    files' tensors whose shapes differ from it)."""
    verify_if_local(source)

    def load() -> tuple[tuple[Any, Any], dict[str, Any]]:
        loaded, info = model.from_pretrained(str(source), output_loading_info=True)
        return (loaded, processor.from_pretrained(str(source))), info

    return load_checked(what, load, lambda: shape_mismatches(build, Path(source)))


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
    own = module.state_dict()
    wrong = [
        f"{key}: file {tuple(tensor.shape)}, model {tuple(own[key].shape)}"
        for key, tensor in state_dict.items()
        if tuple(tensor.shape) != tuple(own[key].shape) and own[key].numel() > 0
    ]
    if wrong:
        raise KeyMismatchError(
            f"{what}: {len(wrong)} tensors have the wrong shape for the architecture, e.g. "
            f"{wrong[:3]} (a checkpoint of another variant or size?)"
        )
    module.load_state_dict(state_dict, strict=True)


_said: set[str] = set()


def say_once(message: str) -> None:
    """Log a fallback notice (weights missing, so a path is off) once per process."""
    import logging

    if message not in _said:
        _said.add(message)
        logging.getLogger("semlink").warning(message)
