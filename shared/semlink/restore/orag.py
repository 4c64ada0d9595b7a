"""SEDIC's decoder, Algorithm 1: multi-stage ControlNet with object-wise attention guidance.

Inputs come from a packet: the decoded reference image (upsampled to full size), the
overall caption, and objects (description, mask at latent resolution). Reads top to
bottom like the algorithm:

  z_T ~ N(0, I), seeded by the packet header; ControlNet is conditioned on the reference
  (tile-style) at every step of every stage.

  stage 0, global: denoise from z_T with the overall caption; keep every z^0_t.
      dual path (SDGIC): the UNet's cross-attention also reads every object's semantic
      tokens, appended to the caption's; ControlNet carries the reference.
  stage j = 1..J, object j (most salient first):
      denoise from the same z_T with the object's description as prompt; at each step
        if t > T':  z <- z - eta * grad_z E_j(z)           (attention guidance, ORAG)
                    E_j = mean_k (1 - sum_{m in M_j} A[m,k] / sum_m A[m,k])^2
        after the step: z^j_t = M_j * z^j_t + (1 - M_j) * z^{j-1}_t   (latent fusion)
  output: the VAE decodes z^J_0.

The global pass comes first here because latent fusion needs a trajectory to fuse into:
every object stage only writes inside its own mask, and everything outside stays the
global reconstruction. The cancellation ``check`` runs between steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from semlink.models.diffusion import DiffusionComponents
from semlink.restore.attention import (
    AttentionStore,
    CapturingAttnProcessor,
    EnoughMaps,
    object_energy,
)


@dataclass
class ObjectPrompt:
    description: str
    mask: NDArray[np.bool_] | None
    """Object mask at any resolution (the packet carries H/8 x W/8); None = whole image."""


@dataclass
class ORAGOutput:
    image: NDArray[np.uint8]
    energies: list[list[tuple[float, float]]] = field(default_factory=list)
    """Per object stage, per guided step: (E before the update, E after it)."""
    trajectories: list[list[torch.Tensor]] = field(default_factory=list)
    """Per stage, the latent after every step (kept only when asked for)."""
    masks: list[torch.Tensor] = field(default_factory=list)


class ORAGPipeline:
    """Inference only; one ``__call__``."""

    def __init__(self, components: DiffusionComponents) -> None:
        self.c = components
        self.store = AttentionStore()
        processors: dict[str, CapturingAttnProcessor] = {}
        for name in self.c.unet.attn_processors:
            energy_layer = name.startswith(("down_blocks", "mid_block")) and ".attn2." in name
            processors[name] = CapturingAttnProcessor(self.store, capture=energy_layer)
        self.store.needed = sum(p.capture for p in processors.values())
        self.c.unet.set_attn_processor(dict(processors))  # diffusers empties the dict it is given
        # Guidance differentiates the energy with respect to the latent only. With the UNet's
        # weights frozen, autograd keeps no inputs for weight gradients in the energy pass:
        # the same energy and gradient, bit for bit, with less kept for the backward pass.
        self.c.unet.requires_grad_(False)
        self.device = next(self.c.unet.parameters()).device
        self.dtype = next(self.c.unet.parameters()).dtype

    # -- small pieces -------------------------------------------------------------------
    def encode_prompt(self, text: str) -> tuple[torch.Tensor, list[int]]:
        """Text embedding and the positions of the prompt's own tokens (not BOS/EOS/pad)."""
        tok = self.c.tokenizer
        ids = tok(
            text,
            padding="max_length",
            max_length=tok.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        content = [
            i
            for i, t in enumerate(ids[0].tolist())
            if t not in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        ]
        with torch.no_grad():
            embedding = self.c.text_encoder(ids.to(self.device))[0].to(self.dtype)
        return embedding, content

    def semantic_tokens(self, caption: str, descriptions: Sequence[str]) -> torch.Tensor:
        """SDGIC's dual path: the caption's embedding followed by every object's content
        tokens, so the UNet's cross-attention reads the objects' semantics in the global
        pass while the reference keeps entering through ControlNet's residuals."""
        return self._with_object_tokens(self.encode_prompt(caption)[0], descriptions)

    def _with_object_tokens(self, text: torch.Tensor, descriptions: Sequence[str]) -> torch.Tensor:
        extra = []
        for description in descriptions:
            embedding, tokens = self.encode_prompt(description)
            extra.append(embedding[:, tokens])
        return torch.cat([text, *extra], dim=1)

    def predict_noise(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        control: torch.Tensor,
        control_text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noise estimate: ControlNet reads ``control_text`` (default ``text``), UNet ``text``."""
        down, mid = self.c.controlnet(
            z,
            t,
            encoder_hidden_states=text if control_text is None else control_text,
            controlnet_cond=control,
            return_dict=False,
        )
        return self.c.unet(
            z,
            t,
            encoder_hidden_states=text,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample

    def energy(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        tokens: list[int],
    ) -> torch.Tensor:
        """ORAG's energy of latent ``z``: the UNet's contracting path and middle block only.

        Those maps do not depend on ControlNet (its residuals join the skip connections
        and the middle block's output), so neither ControlNet nor the expanding path runs.
        """
        self.store.clear()
        self.store.active = True
        try:
            with contextlib.suppress(EnoughMaps):
                self.c.unet(z, t, encoder_hidden_states=text)
            return object_energy(self.store.maps, mask, tokens, (z.shape[-2], z.shape[-1]))
        finally:
            self.store.active = False
            self.store.clear()

    def guide(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        mask: torch.Tensor,
        tokens: list[int],
        eta: float,
    ) -> tuple[torch.Tensor, float]:
        """One attention-guidance update z <- z - eta * grad_z E; returns (z, E before)."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            e = self.energy(z, t, text, mask, tokens)
            (grad,) = torch.autograd.grad(e, z)
        return (z - eta * grad).detach(), float(e.detach())

    def _latent_mask(self, mask: NDArray[np.bool_] | None, hw: tuple[int, int]) -> torch.Tensor:
        if mask is None:
            return torch.ones(hw, device=self.device, dtype=self.dtype)
        m = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
        return (F.interpolate(m, size=hw, mode="nearest")[0, 0] > 0.5).to(self.device, self.dtype)

    # -- the algorithm ------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        reference: NDArray[np.uint8],
        caption: str,
        objects: Sequence[ObjectPrompt] = (),
        *,
        steps: int = 20,
        seed: int = 0,
        eta: float = 20.0,
        guided_fraction: float = 0.5,
        check: Callable[[], None] | None = None,
        keep_trajectories: bool = False,
        measure_energy: bool = False,
        dual_path: bool = True,
    ) -> ORAGOutput:
        height, width = reference.shape[:2]
        scale = self.c.vae_scale
        if height % scale or width % scale:
            raise ValueError(f"image sides must be multiples of {scale}, got {width}x{height}")
        latent_hw = (height // scale, width // scale)
        control = (
            torch.from_numpy(np.array(reference, copy=True))
            .permute(2, 0, 1)[None]
            .to(self.device, self.dtype)
            / 255.0
        )
        generator = torch.Generator().manual_seed(seed)
        z_T = torch.randn((1, self.c.unet.config.in_channels, *latent_hw), generator=generator)
        z_T = (z_T * self.c.scheduler.init_noise_sigma).to(self.device, self.dtype)
        scheduler = self.c.scheduler
        scheduler.set_timesteps(steps)
        guided_until = round(guided_fraction * steps)  # steps with t > T'
        out = ORAGOutput(image=np.empty(0, np.uint8))

        # Stage 0: the global reconstruction with the overall caption (and, dual path, the
        # objects' semantic tokens in cross-attention; ControlNet sees the caption alone).
        caption_text, _ = self.encode_prompt(caption)
        text = (
            self._with_object_tokens(caption_text, [o.description for o in objects])
            if dual_path
            else caption_text
        )
        z = z_T
        previous: list[torch.Tensor] = []
        for t in scheduler.timesteps:
            if check:
                check()
            noise = self.predict_noise(z, t, text, control, caption_text)
            z = scheduler.step(noise, t, z).prev_sample
            previous.append(z)
        if keep_trajectories:
            out.trajectories.append(list(previous))

        # Stages 1..J: one per object, guided and fused into the previous stage.
        for obj in objects:
            text, tokens = self.encode_prompt(obj.description)
            mask = self._latent_mask(obj.mask, latent_hw)
            out.masks.append(mask)
            energies: list[tuple[float, float]] = []
            z = z_T
            current: list[torch.Tensor] = []
            scheduler.set_timesteps(steps)
            for i, t in enumerate(scheduler.timesteps):
                if check:
                    check()
                if i < guided_until and tokens:
                    z, before = self.guide(z, t, text, mask, tokens, eta)
                    if measure_energy:
                        energies.append((before, float(self.energy(z, t, text, mask, tokens))))
                z = scheduler.step(self.predict_noise(z, t, text, control), t, z).prev_sample
                z = mask * z + (1 - mask) * previous[i]  # latent fusion
                current.append(z)
            previous = current
            out.energies.append(energies)
            if keep_trajectories:
                out.trajectories.append(list(current))

        decoded = self.c.vae.decode(previous[-1] / self.c.vae.config.scaling_factor).sample
        pixels = ((decoded[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0)
        out.image = pixels.cpu().numpy()
        return out
