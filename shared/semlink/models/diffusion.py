"""Components of the diffusion decoder: real weights from a local directory, or tiny random ones.

Real deployments point ``from_pretrained`` at a directory in diffusers layout (Stable
Diffusion 1.5 + a tile ControlNet: ``unet/ vae/ text_encoder/ tokenizer/ scheduler/
controlnet/`` plus ``manifest.json``); it is verified against the manifest and loaded
with safetensors only, offline. Tests and ``--tiny`` demos build the same classes with
tiny random configs (the diffusers "dummy components" pattern, tokenizer built locally).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from semlink.models.weights import verify_manifest

TINY_WORDS = [
    "a",
    "an",
    "the",
    "of",
    "on",
    "in",
    "with",
    "and",
    "at",
    "near",
    "next",
    "to",
    "red",
    "green",
    "blue",
    "white",
    "black",
    "yellow",
    "brown",
    "grey",
    "cat",
    "dog",
    "bird",
    "parrot",
    "man",
    "woman",
    "child",
    "boat",
    "car",
    "house",
    "tree",
    "sky",
    "grass",
    "water",
    "road",
    "field",
    "door",
    "window",
    "wall",
    "mountain",
    "sea",
    "beach",
    "street",
    "building",
    "flower",
    "hat",
    "shirt",
    "table",
    "chair",
    "face",
]


@dataclass
class DiffusionComponents:
    unet: UNet2DConditionModel
    controlnet: ControlNetModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: DDIMScheduler

    @property
    def vae_scale(self) -> int:
        return int(2 ** (len(self.vae.config.block_out_channels) - 1))

    def to(
        self, device: torch.device | str, dtype: torch.dtype = torch.float32
    ) -> DiffusionComponents:
        for module in (self.unet, self.controlnet, self.vae, self.text_encoder):
            module.to(device=device, dtype=dtype)
        return self

    @classmethod
    def tiny(cls, seed: int = 0) -> DiffusionComponents:
        """Random components small enough for CPU tests (seconds per decode)."""
        torch.manual_seed(seed)
        blocks = {"block_out_channels": (8, 16), "layers_per_block": 1, "norm_num_groups": 4}
        unet = UNet2DConditionModel(
            **blocks,
            sample_size=8,
            in_channels=4,
            out_channels=4,
            cross_attention_dim=32,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            attention_head_dim=4,
        )
        controlnet = ControlNetModel(
            **blocks,
            in_channels=4,
            cross_attention_dim=32,
            attention_head_dim=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            conditioning_embedding_out_channels=(8, 8, 16, 16),  # image -> latent: 1/8
        )
        # Four levels: the latent is 1/8 of the image, as in Stable Diffusion, so packet
        # masks at H/8 x W/8 line up with it and attention stays affordable.
        vae = AutoencoderKL(
            block_out_channels=(8, 8, 16, 16),
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            norm_num_groups=4,
            layers_per_block=1,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        )
        vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
        for ch in "abcdefghijklmnopqrstuvwxyz'":
            vocab[ch] = len(vocab)
            vocab[ch + "</w>"] = len(vocab)
        for word in TINY_WORDS:
            vocab.setdefault(word + "</w>", len(vocab))
        tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=32)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(vocab),
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=32,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        scheduler = DDIMScheduler(
            num_train_timesteps=1000,
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            clip_sample=False,
            set_alpha_to_one=False,
        )
        return cls(unet, controlnet, vae, text_encoder, tokenizer, scheduler)

    @classmethod
    def from_pretrained(
        cls, directory: Path, dtype: torch.dtype = torch.float32
    ) -> DiffusionComponents:
        """Real weights from a local diffusers-layout directory, verified against its manifest."""
        verify_manifest(directory)
        common = {"local_files_only": True, "use_safetensors": True, "torch_dtype": dtype}
        return cls(
            unet=UNet2DConditionModel.from_pretrained(directory / "unet", **common),
            controlnet=ControlNetModel.from_pretrained(directory / "controlnet", **common),
            vae=AutoencoderKL.from_pretrained(directory / "vae", **common),
            text_encoder=CLIPTextModel.from_pretrained(
                directory / "text_encoder", local_files_only=True, use_safetensors=True, dtype=dtype
            ),
            tokenizer=CLIPTokenizer.from_pretrained(directory / "tokenizer", local_files_only=True),
            scheduler=DDIMScheduler.from_pretrained(directory / "scheduler", local_files_only=True),
        )
