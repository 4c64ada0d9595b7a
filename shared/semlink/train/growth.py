"""Growing a trained :class:`~semlink.restore.network.PixelRestorer` into a larger shape
(more blocks, more channels, an H/2 stage, a noise input) without changing what it
computes, so a network that stopped improving at its size trains on from where it was
(``--init`` with ``--blocks``/``--width``/``--fine-width``/``--noise``)."""

from __future__ import annotations

import torch
from torch import nn


def _depth(weights: dict[str, torch.Tensor]) -> int:
    """Residual blocks in a :class:`PixelRestorer`'s state dict."""
    return 1 + max(int(key.split(".")[1]) for key in weights if key.startswith("body."))


def deepen(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a :class:`PixelRestorer` with fewer residual blocks, made into ``model``'s
    (same width, more blocks) without changing what it computes: the new blocks come after
    the old ones and start as the identity (their second convolution zero, their FiLM
    scale and shift zero), their first convolutions as ``model`` initialised them. A
    network that stopped improving at its depth trains on from where it was."""
    own = model.state_dict()
    old, new = _depth(weights), _depth(own)
    if new <= old:
        return weights
    grown = dict(weights)
    for i in range(old, new):
        for key in (f"body.{i}.conv1.weight", f"body.{i}.conv1.bias"):
            grown[key] = own[key]
        for key in (f"body.{i}.conv2.weight", f"body.{i}.conv2.bias"):
            grown[key] = torch.zeros_like(own[key])
    # The FiLM's last layer gives (scale, shift) per block in block order: rows for the new
    # blocks are appended as zeros (no modulation).
    for key in ("film.2.weight", "film.2.bias"):
        extra = own[key].shape[0] - weights[key].shape[0]
        grown[key] = torch.cat([weights[key], weights[key].new_zeros(extra, *own[key].shape[1:])])
    return grown


def widen(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a narrower :class:`PixelRestorer` made into ``model``'s width (same or
    fewer blocks) without changing what it computes: the new feature channels start at
    zero (``head``'s new rows zero) and stay zero (each block's second convolution writes
    nothing into them), and the old channels read nothing from the new ones (each block's
    second convolution reads none of its new inputs, ``tail`` none of its); the new first
    convolutions keep ``model``'s initialisation, so the second ones get a gradient at once.
    The FiLM rows of the new channels are zero (no modulation)."""
    own = model.state_dict()
    old, new = weights["head.weight"].shape[0], own["head.weight"].shape[0]
    if new <= old:
        return weights
    grown = dict(weights)

    def put(key: str, base: torch.Tensor) -> None:
        """``base`` with the old weights in its leading rows (and columns)."""
        value = base.clone()
        value[tuple(slice(0, n) for n in weights[key].shape)] = weights[key]
        grown[key] = value

    put("head.weight", torch.zeros_like(own["head.weight"]))
    put("head.bias", torch.zeros_like(own["head.bias"]))
    for key in weights:  # blocks only a deeper model has are deepen's business
        if key.startswith("body.") and ".conv1." in key:
            put(key, own[key])
        elif key.startswith("body."):  # conv2: nothing into the new, nothing read from them
            put(key, torch.zeros_like(own[key]))
    put("tail.weight", torch.zeros_like(own["tail.weight"]))
    if "fine_head.weight" in weights:
        # The fine stage reads the features depth-to-space by 2: the new channels arrive
        # as new context channels after the old ones, and are zero; it reads none of them.
        if weights["fine_head.weight"].shape[0] != own["fine_head.weight"].shape[0]:
            raise ValueError("widening a network's fine stage is not supported")
        put("fine_head.weight", torch.zeros_like(own["fine_head.weight"]))
    # The FiLM's last layer: (scale, shift) per old block, each ``width`` rows long.
    for key in ("film.2.weight", "film.2.bias"):
        chunks = weights[key].split(old)
        grown[key] = torch.cat(
            [torch.cat([c, c.new_zeros(new - old, *c.shape[1:])]) for c in chunks]
        )
    return grown


def refine(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a :class:`PixelRestorer` without a fine stage given ``model``'s, as
    ``model`` initialised it: its last convolution and FiLM rows are zero, so the network
    computes what the old one did and the fine stage learns from there."""
    if any(key.startswith("fine_") for key in weights):
        return weights
    return {**weights, **{k: v for k, v in model.state_dict().items() if k.startswith("fine_")}}


def listen(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a :class:`PixelRestorer` without ``model``'s noise input (or with fewer of
    its trailing input channels): each stage's first convolution reads nothing of the new
    ones (their columns zero), so the network computes what it did and learns to use them."""
    own = model.state_dict()
    grown = dict(weights)
    for key in ("head.weight", "fine_head.weight"):
        if key in weights and key in own and weights[key].shape[1] < own[key].shape[1]:
            old = weights[key]
            extra = old.new_zeros(old.shape[0], own[key].shape[1] - old.shape[1], *old.shape[2:])
            grown[key] = torch.cat([old, extra], 1)
    return grown


def grow(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """:func:`widen`, then :func:`deepen`, then :func:`refine`: a smaller network's weights
    in ``model``'s shape, computing what they did (new input channels, such as a noise
    input, are :func:`listen`'s, which ``init_from`` applies to every start)."""
    return refine(deepen(widen(weights, model), model), model)
