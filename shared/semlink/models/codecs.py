"""Where learned reference codecs come from: a directory of models, the package's shipped
ones, or tiny random ones; and the digests both ends agree on without loading anything.
The codec itself is :mod:`semlink.models.learned_codec` (re-exported here).

Real deployments point ``SEMLINK_REFERENCE_MODELS`` at a directory holding the weights,
a ``codecs.json`` that names each file's architecture and quality, and a ``manifest.json``
(sha256 of every file, checked before loading). compressai's own zoo files work as they
are: they are plain state dicts. Tests and ``--tiny`` demos build the same classes small.
Which codecs a profile holds is the resolver's choice (:mod:`semlink.resolver`); the
loaders here take directories and cache nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semlink.models.learned_codec import (
    LAYER_FORMAT,
    PAD,
    Analysis,
    AnalysisRunner,
    Architecture,
    LearnedCodec,
    LearnedCodecConfig,
    build,
    latent_hyperprior,
)
from semlink.models.weights import (
    MANIFEST,
    WeightsError,
    architecture_digest,
    load_state_dict,
    load_strict,
    say_once,
    sha256_of,
    verify_manifest,
)

if TYPE_CHECKING:
    from semlink.models.taef2 import TAEF2

CODECS_FILE = "codecs.json"


def _ready(config: LearnedCodecConfig, model: Any, digest: str, taef2: Any = None) -> LearnedCodec:
    model.eval()
    model.update(force=True)
    return LearnedCodec(config, model, digest, taef2=taef2)


def tiny_codecs(seed: int = 0) -> list[LearnedCodec]:
    """Both architectures at toy width, random weights: for tests and ``--tiny`` demos."""
    codecs = []
    for i, config in enumerate(
        (
            LearnedCodecConfig(architecture="bmshj2018-hyperprior", quality=1, N=8, M=12),
            LearnedCodecConfig(architecture="cheng2020-attn", quality=1, N=8),
        )
    ):
        torch.manual_seed(seed + i)
        model = build(config)
        # The recipe, not the float values drawn from it (they differ between CPUs).
        recipe = f"tiny {config.model_dump_json()} seed={seed + i}"
        codecs.append(_ready(config, model, architecture_digest(recipe, model)))
    return codecs


def load_codecs(
    directory: Path, taef2_dir: Path | None = None, taef2: TAEF2 | None = None
) -> list[LearnedCodec]:
    """Every model listed in ``directory/codecs.json``, sha256-verified and strictly loaded.

    taef2-latent-hyperprior models need the TAEF2 weights they were trained with in
    ``taef2_dir`` (``taef2``: those weights already loaded, shared with the restorer):
    ``WeightsError`` when they are missing or different."""
    listing = directory / CODECS_FILE
    if not listing.exists():
        raise WeightsError(
            f"{listing} not found: a learned-codec directory lists its models there, e.g. "
            '[{"architecture": "cheng2020-attn", "quality": 3, "N": 192, "file": "q3.pth"}]'
        )
    verify_manifest(directory)
    configs = [
        LearnedCodecConfig.model_validate(entry) for entry in json.loads(listing.read_text())
    ]
    digest = listing_digest(directory)
    codecs = []
    for config in configs:
        model = build(config)
        load_strict(model, load_state_dict(directory / config.file), what=config.file)
        latent = config.architecture.startswith("taef2")
        codecs.append(
            _ready(config, model, digest, _taef2_for(config, taef2_dir, taef2) if latent else None)
        )
    return codecs


def _taef2_for(config: LearnedCodecConfig, taef2_dir: Path | None, taef2: Any = None) -> Any:
    from semlink.models.taef2 import TAEF2

    if taef2_dir is None:
        raise WeightsError(f"{config.file} codes TAEF2 latents: it needs the TAEF2 weights")
    found = ":".join(sha256_of(taef2_dir / f"taef2_{p}.pth") for p in ("encoder", "decoder"))
    if config.taef2_sha256 and found != config.taef2_sha256:
        raise WeightsError(
            f"{config.file} was trained with other TAEF2 weights than those in {taef2_dir}"
        )
    return taef2 if taef2 is not None else TAEF2.load(taef2_dir)


def listing_digest(directory: Path) -> str:
    """What both ends of a learned-codec directory agree on: its manifest (the listing and
    the weights' sha256), read without loading anything."""
    manifest = directory / MANIFEST
    if not manifest.exists():
        raise WeightsError(f"{manifest} not found: learned reference codecs need a manifest")
    return hashlib.sha256(manifest.read_bytes() + _FORMAT_TAG).hexdigest()


def tiny_digest(codecs: Sequence[LearnedCodec]) -> str:
    """The digest of tiny codecs (no manifest: their recipes and architectures)."""
    return hashlib.sha256("".join(c.digest for c in codecs).encode() + _FORMAT_TAG).hexdigest()


_FORMAT_TAG = f"|learned-layer={LAYER_FORMAT}".encode()
"""What every learned-codec digest appends: the layer format the codecs write."""

SHIPPED = ("ref_codec", "latent_codec")
"""Learned-codec directories shipped as package data (``semlink/data/<name>/``), written by
``semlink train ref-codec --ship`` and ``semlink train latent-codec --ship``."""


def shipped_dirs() -> tuple[Path, ...]:
    """The shipped learned-codec directories present in the package."""
    data = Path(str(resources.files("semlink").joinpath("data")))
    return tuple(data / name for name in SHIPPED if (data / name / CODECS_FILE).exists())


def needs_taef2(directory: Path) -> bool:
    listing = json.loads((directory / CODECS_FILE).read_text())
    return any(e["architecture"].startswith("taef2") for e in listing)


def load_shipped(
    dirs: Sequence[Path], taef2_dir: Path, taef2: TAEF2 | None = None
) -> list[LearnedCodec]:
    """The project-trained reference codecs lite holds (the TAEF2 one only with TAEF2)."""
    codecs: list[LearnedCodec] = []
    for directory in dirs:
        if needs_taef2(directory) and not (taef2_dir / "taef2_decoder.pth").exists():
            say_once(
                f"lite: TAEF2 weights not in {taef2_dir}, so the TAEF2 latent reference path "
                "is off (set SEMLINK_WEIGHTS_DIR to enable it)"
            )
            continue
        codecs.extend(load_codecs(directory, taef2_dir, taef2))
    return codecs


def shipped_digest(dirs: Sequence[Path]) -> str | None:
    """sha256 over the shipped codecs' manifests; None when none are shipped."""
    if not dirs:
        return None
    manifests = b"".join((d / MANIFEST).read_bytes() for d in dirs)
    return hashlib.sha256(manifests + _FORMAT_TAG).hexdigest()


__all__ = [
    "CODECS_FILE",
    "LAYER_FORMAT",
    "PAD",
    "SHIPPED",
    "Analysis",
    "AnalysisRunner",
    "Architecture",
    "LearnedCodec",
    "LearnedCodecConfig",
    "architecture_digest",
    "build",
    "latent_hyperprior",
    "listing_digest",
    "load_codecs",
    "load_shipped",
    "needs_taef2",
    "shipped_digest",
    "shipped_dirs",
    "tiny_codecs",
    "tiny_digest",
]
