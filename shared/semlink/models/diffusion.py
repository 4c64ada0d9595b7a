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
from typing import Any

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from semlink.models.weights import WeightsError, load_checked, load_error, verify_manifest

TINY_WORDS = """
a an the of on in with and at near next to
red green blue white black yellow brown grey cat dog bird parrot
man woman child boat car house tree sky grass water road field
door window wall mountain sea beach street building flower hat shirt table
chair face
""".split()  # noqa: SIM905 (a list of words reads best as words)
"""The tiny text encoder's whole words (its vocabulary is letters besides)."""


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
        """Real weights from a local diffusers-layout directory, verified against its manifest.

        Every parameter must come from the files with the shape its ``config.json`` says:
        a missing, unexpected or wrongly shaped tensor raises ``WeightsError`` naming the
        component (diffusers and transformers would only warn and leave it random)."""
        verify_manifest(directory)
        common = {"local_files_only": True, "use_safetensors": True}

        def model(kind: Any, name: str, **kwargs: object) -> Any:
            where = f"{directory / name} ({kind.__name__})"
            if not (directory / name).is_dir():
                raise WeightsError(f"{where}: directory missing (diffusers layout expected)")
            return load_checked(
                where,
                lambda: kind.from_pretrained(
                    directory / name, output_loading_info=True, **common, **kwargs
                ),
            )

        def plain(kind: Any, name: str) -> Any:
            try:
                return kind.from_pretrained(directory / name, local_files_only=True)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise load_error(f"{directory / name} ({kind.__name__})", exc) from exc

        components = cls(
            unet=model(UNet2DConditionModel, "unet", torch_dtype=dtype),
            controlnet=model(ControlNetModel, "controlnet", torch_dtype=dtype),
            vae=model(AutoencoderKL, "vae", torch_dtype=dtype),
            text_encoder=model(CLIPTextModel, "text_encoder", dtype=dtype),
            tokenizer=plain(CLIPTokenizer, "tokenizer"),
            scheduler=plain(DDIMScheduler, "scheduler"),
        )
        components.check()
        return components

    def check(self) -> None:
        """The parts must fit each other (a ControlNet or text encoder for another base model
        loads without complaint and fails at the first step)."""
        unet, control, text = self.unet.config, self.controlnet.config, self.text_encoder.config
        problems = []
        if control.cross_attention_dim != unet.cross_attention_dim:
            problems.append(
                f"controlnet cross_attention_dim {control.cross_attention_dim} != unet's "
                f"{unet.cross_attention_dim}"
            )
        if tuple(control.block_out_channels) != tuple(unet.block_out_channels):
            problems.append("controlnet block_out_channels differ from the unet's")
        if text.hidden_size != unet.cross_attention_dim:
            problems.append(
                f"text_encoder hidden_size {text.hidden_size} != unet cross_attention_dim "
                f"{unet.cross_attention_dim}"
            )
        if self.vae.config.latent_channels != unet.in_channels:
            problems.append(
                f"vae latent_channels {self.vae.config.latent_channels} != unet in_channels "
                f"{unet.in_channels}"
            )
        if len(self.tokenizer) > text.vocab_size:
            problems.append(
                f"tokenizer has {len(self.tokenizer)} tokens, the text encoder {text.vocab_size}"
            )
        if problems:
            raise WeightsError("diffusion components do not fit together: " + "; ".join(problems))
