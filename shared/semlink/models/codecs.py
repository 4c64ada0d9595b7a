"""Learned reference codecs (compressai): a scale hyperprior and cheng2020-attn.

Real deployments point ``SEMLINK_REFERENCE_MODELS`` at a directory holding the weights,
a ``codecs.json`` that names each file's architecture and quality, and a ``manifest.json``
(sha256 of every file, checked before loading). compressai's own zoo files work as they
are: they are plain state dicts. Tests and ``--tiny`` demos build the same classes small.

The bitstream is compressai's: its rANS coder over integer CDF tables that ``update()``
derives from the weights. The analysis transform (``g_a`` then ``h_a``) is the part an
edge device runs; it can run in onnxruntime (:mod:`semlink.models.onnx_edge`) while the
entropy coding stays here, so both paths produce the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from torch import nn

from semlink.config import settings
from semlink.models.weights import (
    MANIFEST,
    WeightsError,
    load_state_dict,
    load_strict,
    state_digest,
    verify_manifest,
)

Architecture = Literal["bmshj2018-hyperprior", "cheng2020-attn"]
CODECS_FILE = "codecs.json"
PAD = 64
"""Both architectures downsample by 64 (16 in g_a, 4 more in h_a): inputs are padded to it."""


class LearnedCodecConfig(BaseModel):
    """One model file: its architecture, its rate point and its channel widths."""

    model_config = ConfigDict(extra="forbid")

    architecture: Architecture
    quality: int
    """Rate point, higher is more bytes (compressai zoo numbering, 1..8)."""
    N: int = 128
    M: int = 192
    """Latent channels (bmshj2018-hyperprior only; cheng2020-attn uses N)."""
    file: str = ""


def build(config: LearnedCodecConfig) -> Any:
    from compressai.models import Cheng2020Attention, ScaleHyperprior

    if config.architecture == "cheng2020-attn":
        return Cheng2020Attention(N=config.N)
    return ScaleHyperprior(N=config.N, M=config.M)


def _is_autoregressive(model: nn.Module) -> bool:
    from compressai.models import JointAutoregressiveHierarchicalPriors

    return isinstance(model, JointAutoregressiveHierarchicalPriors)


class Analysis(nn.Module):
    """The edge's network: image in [0, 1] (padded to 64) -> latents y and hyper-latents z."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.g_a, self.h_a = model.g_a, model.h_a
        self.autoregressive = _is_autoregressive(model)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.g_a(x)
        z = self.h_a(y if self.autoregressive else torch.abs(y))
        return y, z


AnalysisRunner = Callable[[NDArray[np.float32]], tuple[NDArray[np.float32], NDArray[np.float32]]]


@dataclass
class LearnedCodec:
    config: LearnedCodecConfig
    model: Any
    """A compressai CompressionModel (untyped library)."""
    digest: str
    analysis_runner: AnalysisRunner | None = None
    """Replaces the PyTorch analysis transform (e.g. an onnxruntime session)."""

    @property
    def name(self) -> str:
        return f"{self.config.architecture}-q{self.config.quality}"

    def analysis(self, x: NDArray[np.float32]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.analysis_runner is not None:
            y, z = self.analysis_runner(x)
            return torch.from_numpy(y), torch.from_numpy(z)
        with torch.no_grad():
            y, z = Analysis(self.model)(torch.from_numpy(x))
        return y, z

    @torch.no_grad()
    def compress(self, image: NDArray[np.uint8]) -> tuple[bytes, bytes]:
        """(z string, y string) for an RGB image of any size (padded to 64 inside)."""
        x = _to_input(image)
        y, z = self.analysis(x)
        model = self.model
        z_strings = model.entropy_bottleneck.compress(z)
        z_hat = model.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        if _is_autoregressive(model):
            kernel, pad = 5, 2
            y_string = model._compress_ar(
                F.pad(y, (pad, pad, pad, pad)),
                model.h_s(z_hat),
                z_hat.shape[2] * 4,
                z_hat.shape[3] * 4,
                kernel,
                pad,
            )
        else:
            indexes = model.gaussian_conditional.build_indexes(model.h_s(z_hat))
            y_string = model.gaussian_conditional.compress(y, indexes)[0]
        return bytes(z_strings[0]), bytes(y_string)

    @torch.no_grad()
    def decompress(self, z: bytes, y: bytes, width: int, height: int) -> NDArray[np.uint8]:
        shape = (-(-height // PAD), -(-width // PAD))
        out = self.model.decompress([[y], [z]], shape)["x_hat"][0, :, :height, :width]
        return (out.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _to_input(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    height, width = image.shape[:2]
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    ph, pw = -height % PAD, -width % PAD
    return np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge"))


def _ready(config: LearnedCodecConfig, model: Any, digest: str) -> LearnedCodec:
    model.eval()
    model.update(force=True)
    return LearnedCodec(config, model, digest)


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
        codecs.append(_ready(config, model, state_digest(model)))
    return codecs


def load_codecs(directory: Path) -> list[LearnedCodec]:
    """Every model listed in ``directory/codecs.json``, sha256-verified and strictly loaded."""
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
    digest = hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()
    codecs = []
    for config in configs:
        model = build(config)
        load_strict(model, load_state_dict(directory / config.file), what=config.file)
        codecs.append(_ready(config, model, digest))
    return codecs


@cache
def _tiny() -> tuple[LearnedCodec, ...]:
    return tuple(tiny_codecs(0))


@cache
def _loaded(directory: Path) -> tuple[LearnedCodec, ...]:
    return tuple(load_codecs(directory))


def reference_codecs() -> Sequence[LearnedCodec]:
    """The learned codecs the settings select; empty when none are configured."""
    s = settings()
    codecs: tuple[LearnedCodec, ...] = ()
    if s.tiny_models:
        codecs = _tiny()
    elif s.reference_models is not None:
        codecs = _loaded(s.reference_models)
    if s.edge_onnx is not None:
        from semlink.models.onnx_edge import use_onnx

        for codec in codecs:
            path = s.edge_onnx / f"{codec.name}.onnx"
            if not path.exists():
                raise WeightsError(
                    f"{path} not found: run `semlink weights export-onnx {s.edge_onnx}` "
                    "with the same models, or unset SEMLINK_EDGE_ONNX"
                )
            if codec.analysis_runner is None:
                use_onnx(codec, path)
    return codecs


def reference_codecs_digest() -> str:
    """What both ends must agree on: the listing and the weights (no loading on the edge)."""
    s = settings()
    if s.tiny_models:
        return hashlib.sha256("".join(c.digest for c in _tiny()).encode()).hexdigest()
    if s.reference_models is not None:
        manifest = s.reference_models / MANIFEST
        if not manifest.exists():
            raise WeightsError(f"{manifest} not found: learned reference codecs need a manifest")
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    return "none"
