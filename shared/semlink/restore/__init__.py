"""Decoder stages that turn decoded layers into the output image (restorers, diffusion).

This module stays free of torch: an edge encoder reads the restorer's default realism from
its manifest without loading any network."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

SHIPPED_RESTORER = "pixel_restorer"
"""Package data: ``data/pixel_restorer.safetensors`` (fp16) and ``data/pixel_restorer.json``
(manifest: sha256, recipe, default realism, data, steps, wall time, held-out results)."""


@lru_cache(maxsize=1)
def default_realism() -> float:
    """The realism encoders write by default: the shipped manifest's, chosen on held-out
    photos (0, fidelity, when the package has no restorer)."""
    manifest_file = resources.files("semlink").joinpath("data", f"{SHIPPED_RESTORER}.json")
    if not manifest_file.is_file():
        return 0.0
    return float(json.loads(manifest_file.read_text())["recipe"].get("realism", 0.0))


__all__ = ["SHIPPED_RESTORER", "default_realism"]
