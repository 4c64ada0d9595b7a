"""A cross-attention processor that keeps the attention maps ORAG's energy needs.

It computes attention exactly like diffusers' classic ``AttnProcessor`` (so outputs are
unchanged) but keeps the softmax probabilities of cross-attention layers while the
store is active; self-attention uses SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


class EnoughMaps(Exception):
    """Raised once every map the energy needs is captured: the rest of the forward is skipped."""


@dataclass
class AttentionStore:
    """Cross-attention maps of the UNet's contracting path and middle block, head-averaged.

    Those layers decide where each word goes and run before any ControlNet residual is
    added, so guidance needs only this part of the network: with ``needed`` set, the
    forward stops (:class:`EnoughMaps`) once they are all captured.
    """

    active: bool = False
    needed: int | None = None
    maps: list[torch.Tensor] = field(default_factory=list)

    def clear(self) -> None:
        self.maps = []


class CapturingAttnProcessor:
    def __init__(self, store: AttentionStore, capture: bool = True) -> None:
        self.store = store
        self.capture = capture
        """Whether this layer's cross-attention maps feed the energy (contracting path, middle)."""

    def __call__(
        self,
        attn: Any,  # diffusers.models.attention_processor.Attention
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: object,
        **kwargs: object,
    ) -> torch.Tensor:
        is_cross = encoder_hidden_states is not None
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        if is_cross:
            query, key, value = (attn.head_to_batch_dim(x) for x in (query, key, value))
            probs = attn.get_attention_scores(query, key, attention_mask)
            if self.store.active and self.capture:
                heads = attn.heads
                self.store.maps.append(probs.view(batch_size, heads, *probs.shape[1:]).mean(dim=1))
                if self.store.needed is not None and len(self.store.maps) >= self.store.needed:
                    raise EnoughMaps
            hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        else:
            heads = attn.heads
            q, k, v = (
                x.view(batch_size, -1, heads, x.shape[-1] // heads).transpose(1, 2)
                for x in (query, key, value)
            )
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
            hidden_states = out.transpose(1, 2).reshape(batch_size, -1, heads * q.shape[-1])
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def object_energy(
    maps: list[torch.Tensor], mask: torch.Tensor, tokens: list[int], latent_hw: tuple[int, int]
) -> torch.Tensor:
    """SEDIC's ORAG energy: E = mean_k (1 - sum_{m in M} A[m,k] / sum_m A[m,k])^2.

    ``maps`` are cross-attention maps (batch, pixels, tokens) at any UNet resolution;
    ``mask`` is the object mask at latent resolution (H, W), values in [0, 1]; ``tokens``
    are the prompt positions of the object's words. Averaged over layers.
    """
    if not maps or not tokens:
        raise ValueError("object energy needs attention maps and at least one object token")
    height, width = latent_hw
    energies = []
    for attention in maps:
        pixels = attention.shape[1]
        factor = round((height * width / pixels) ** 0.5)
        h, w = height // factor, width // factor
        if h * w != pixels:
            raise ValueError(
                f"attention map of {pixels} pixels does not fit a {height}x{width} latent"
            )
        level_mask = F.adaptive_avg_pool2d(mask[None, None].to(attention.dtype), (h, w)).reshape(
            1, h * w, 1
        )
        selected = attention[..., tokens]
        inside = (selected * level_mask).sum(dim=1)
        total = selected.sum(dim=1).clamp_min(1e-12)
        energies.append(((1 - inside / total) ** 2).mean())
    return torch.stack(energies).mean()
