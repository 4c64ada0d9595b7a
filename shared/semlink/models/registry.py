"""The diffusion decoder's models, and the digest that goes into the fingerprint.

The ``sedic`` decoder needs diffusion weights. Settings pick them (the resolver,
:mod:`semlink.resolver`, calls these functions with its ``Settings``):

* ``SEMLINK_SEDIC_WEIGHTS=DIR``: a diffusers-layout directory with ``manifest.json``
  (``semlink weights fetch --profile sedic`` writes one), verified before loading;
* ``SEMLINK_TINY_MODELS=1``: tiny random components (tests, CPU demos): the whole path
  runs, the pictures are noise.

The digest is a sha256 over what the weights are loaded from: the manifest of the real
weights' files, so two ends agree on a fingerprint only if they hold the same files; for
tiny models, their seed and architecture (their values are computed at start-up in
floating point, which differs between CPUs). Nothing here is cached: the resolver's
``Models`` holds what it loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from semlink.models.diffusion import DiffusionComponents
from semlink.models.weights import MANIFEST, WeightsError, architecture_digest

if TYPE_CHECKING:
    from semlink.config import Settings


@dataclass
class DecoderModels:
    name: str
    components: DiffusionComponents
    digest: str
    max_steps: int | None = None
    """Cap on DynDiff's step count (``SEMLINK_SEDIC_MAX_STEPS``); None: its full range."""


def tiny_decoder_models(seed: int = 0) -> DecoderModels:
    """Tiny random components from ``seed``; their digest is over the recipe and the
    architecture, never the float values drawn at start-up (those differ between CPUs)."""
    components = DiffusionComponents.tiny(seed)
    return DecoderModels(
        f"tiny-{seed}",
        components,
        architecture_digest(
            f"DiffusionComponents.tiny(seed={seed})",
            components.unet,
            components.controlnet,
            components.vae,
            components.text_encoder,
        ),
    )


def placement() -> tuple[str, torch.dtype]:
    """fp16 on a CUDA GPU (attention through SDPA), fp32 on the CPU fallback."""
    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def real_decoder_models(directory: Path) -> DecoderModels:
    device, dtype = placement()
    components = DiffusionComponents.from_pretrained(directory, dtype)  # verifies the manifest
    components.to(device, dtype)
    digest = hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()
    return DecoderModels(str(directory), components, digest)


def decoder_models(settings: Settings) -> DecoderModels:
    """The diffusion decoder models ``settings`` select (loads them: decoder side only)."""
    if settings.tiny_models:
        models = tiny_decoder_models(0)
    elif settings.sedic_weights is not None:
        models = real_decoder_models(settings.sedic_weights)
    else:
        raise _no_weights()
    models.max_steps = settings.sedic_max_steps
    return models


def weights_digest(settings: Settings) -> str:
    """The digest of the real weights ``settings`` select, without loading them.

    The edge encoder stamps packets with the fingerprint of the ground decoder's models:
    it needs only their ``manifest.json``, never the weights themselves. (Tiny models
    have no manifest: their digest is :func:`tiny_decoder_models`'.)
    """
    if settings.sedic_weights is not None:
        manifest = settings.sedic_weights / MANIFEST
        if not manifest.exists():
            raise WeightsError(
                f"{manifest} not found: copy the decoder's weight manifest to the encoder"
            )
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    raise _no_weights()


def _no_weights() -> WeightsError:
    return WeightsError(
        "the sedic profile needs diffusion weights: set SEMLINK_SEDIC_WEIGHTS to a directory "
        "fetched with `semlink weights fetch --profile sedic`, or SEMLINK_TINY_MODELS=1 to run "
        "the pipeline with tiny random models"
    )
