"""TAEF2: the tiny autoencoder of the FLUX.2 latent space (TAESD family), written from its
layer description (../shared/weights/taef2/README.txt; weights MIT, Ollin Boer Bohan).

Images in [0, 1] -> 32 latent channels at H/8 x W/8 -> images. Two sources of weights:

- the package's ``data/taef2.safetensors`` (fp16, both halves, written by
  tools/ship_taef2.py from github.com/madebyollin/taesd @ 5cccb12d; MIT, see data/NOTICE):
  what lite's restorer decodes with, so every machine runs the same weights
  (:func:`packaged_taef2`);
- the weights directory setting (``SEMLINK_WEIGHTS_DIR``/taef2, plain state dicts loaded
  with ``weights_only=True``): what the training recipes and the TAEF2 latent codec use,
  pinned by the sha256 of those files (:func:`available_taef2`, :func:`frozen_taef2`).

Both load with strict keys.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from semlink.models.weights import WeightsError, load_state_dict, load_strict

WIDTH = 64
LATENT_CHANNELS = 32
PACKAGED = "taef2"
"""Package data: ``data/taef2.safetensors`` (fp16, keys ``encoder.*`` and ``decoder.*``) and
``data/taef2.json`` (manifest: sha256, source, licence)."""


def _conv(a: int, b: int, *, bias: bool = True, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(a, b, 3, stride=stride, padding=1, bias=bias)


class Block(nn.Module):
    """out = ReLU(conv(y) + y) with y = x (+ pool(x) in the mid blocks)."""

    def __init__(self, pooled: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(WIDTH, WIDTH), nn.ReLU(), _conv(WIDTH, WIDTH), nn.ReLU(), _conv(WIDTH, WIDTH)
        )
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.pool: nn.Sequential | None = None
        if pooled:
            self.pool = nn.Sequential(
                nn.Conv2d(WIDTH, 4 * WIDTH, 1, bias=False),
                nn.GroupNorm(4, 4 * WIDTH),
                nn.ReLU(),
                nn.Conv2d(4 * WIDTH, WIDTH, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.pool is None else x + self.pool(x)
        return self.fuse(self.conv(y) + self.skip(y))


class Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * torch.tanh(x / 3)


def encoder() -> nn.Sequential:
    def down() -> nn.Conv2d:
        return _conv(WIDTH, WIDTH, bias=False, stride=2)

    return nn.Sequential(
        _conv(3, WIDTH),
        Block(),
        down(),
        *(Block() for _ in range(3)),
        down(),
        *(Block() for _ in range(3)),
        down(),
        *(Block(pooled=True) for _ in range(3)),
        _conv(WIDTH, LATENT_CHANNELS),
    )


def decoder() -> nn.Sequential:
    def up() -> list[nn.Module]:
        return [nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False)]

    return nn.Sequential(
        Clamp(),
        _conv(LATENT_CHANNELS, WIDTH),
        nn.ReLU(),
        *(Block(pooled=True) for _ in range(3)),
        *up(),
        *(Block() for _ in range(3)),
        *up(),
        *(Block() for _ in range(3)),
        *up(),
        Block(),
        _conv(WIDTH, 3),
    )


class TAEF2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = encoder()
        self.decoder = decoder()

    @classmethod
    def load(cls, directory: Path) -> TAEF2:
        """Both halves from ``directory`` (taef2_encoder.pth, taef2_decoder.pth)."""
        model = cls()
        for part, module in (("encoder", model.encoder), ("decoder", model.decoder)):
            path = directory / f"taef2_{part}.pth"
            if not path.exists():
                raise WeightsError(
                    f"{path} not found: set SEMLINK_WEIGHTS_DIR to the directory holding taef2/"
                )
            load_strict(module, load_state_dict(path), what=f"TAEF2 {part}")
        return model.eval()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], N x 3 x H x W (H, W multiples of 8) -> N x 32 x H/8 x W/8."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).clamp(0, 1)


def available_taef2(directory: Path) -> TAEF2 | None:
    """TAEF2 from ``directory`` for the TAEF2 latent codec, or None when its weights are
    missing or do not fit (that path is then off). The resolver loads it once; the restorer
    uses :func:`packaged_taef2` instead."""
    try:
        return TAEF2.load(directory)
    except WeightsError:
        return None


def packaged_taef2() -> TAEF2 | None:
    """TAEF2 from the package (fp16 on disk, run in fp32), or None when the package has no
    ``data/taef2.safetensors`` or manifest. ``WeightsError`` when the file does not match its
    manifest's sha256 or the model's keys."""
    from safetensors.torch import load

    data = resources.files("semlink").joinpath("data")
    manifest_file = data.joinpath(f"{PACKAGED}.json")
    weights_file = data.joinpath(f"{PACKAGED}.safetensors")
    if not (manifest_file.is_file() and weights_file.is_file()):
        return None
    manifest = json.loads(manifest_file.read_text())
    raw = weights_file.read_bytes()
    if hashlib.sha256(raw).hexdigest() != manifest["files"][f"{PACKAGED}.safetensors"]:
        raise WeightsError(f"packaged {PACKAGED}.safetensors does not match its manifest")
    model = TAEF2()
    load_strict(model, {k: v.float() for k, v in load(raw).items()}, what="packaged TAEF2")
    return model.eval()


def frozen_taef2(directory: Path) -> TAEF2:
    """TAEF2 for training: loaded, eval mode, no gradients to its weights."""
    return TAEF2.load(directory).requires_grad_(False)
