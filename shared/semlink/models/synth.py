"""Real-size weights with random values, in the layouts their publishers use
(``semlink weights synth``).

No pretrained weights can be downloaded on the development machines, yet the ``sedic``
profile must be run at the size a ground station runs it: through semlink's own loaders,
from the directory layouts users download. This module writes, from the published
configurations kept in the package (``semlink/data/published/*.json``, sources in
``SOURCES.json`` there), randomly initialised weights at the published sizes:

* ``sedic/``: Stable Diffusion 1.5 in diffusers layout (``unet/ vae/ text_encoder/
  tokenizer/ scheduler/``) plus the tile ControlNet (``controlnet/``), safetensors, with
  ``manifest.json``: what ``semlink weights fetch --profile sedic`` writes;
* ``sam/sam_vit_b_01ec64.pth``: SAM ViT-B as the official checkpoint (a plain state dict);
* ``grounding-dino-tiny/`` and ``blip-image-captioning-base/``: transformers'
  ``from_pretrained`` layout (config, ``model.safetensors``, processor and tokenizer files);
* ``codecs/``: compressai's scale hyperprior and cheng2020-attn as zoo-style state dicts
  with ``codecs.json``.

Each directory gets the sha256 ``manifest.json`` semlink's loaders check. The pixels such
weights draw mean nothing; shapes, memory, load paths and time per step are the real ones.

Tokenizers cannot be downloaded either: :mod:`semlink.models.synth_tokenizers` builds them
in the publishers' file formats.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from semlink.models.synth_tokenizers import (
    published_path,
    write_bert_tokenizer,
    write_clip_tokenizer,
)
from semlink.models.weights import write_manifest

SYNTH_VERSION = 1
"""Bump when what this module writes changes (the cache key of generated directories)."""
DONE = "SYNTH.json"
"""Written last into the destination: what was built, from which recipe."""

SEDIC_DIR = "sedic"
SAM_DIR = "sam"
SAM_FILE = "sam_vit_b_01ec64.pth"
GROUNDING_DIR = "grounding-dino-tiny"
BLIP_DIR = "blip-image-captioning-base"
CODECS_DIR = "codecs"
COMPONENTS = ("sedic", "sam", "grounding", "blip", "codecs")


def published(name: str) -> Any:
    """A published configuration kept in the package (``data/published/NAME``)."""
    text = resources.files("semlink").joinpath("data/published", name).read_text()
    return json.loads(text)


def recipe_digest(seed: int = 0) -> str:
    """sha256 over everything that decides the files: configurations, word table, seed,
    this module's version and the library versions that write the formats."""
    import diffusers
    import transformers

    digest = hashlib.sha256(f"synth v{SYNTH_VERSION} seed={seed}".encode())
    digest.update(f"torch={torch.__version__} diffusers={diffusers.__version__}".encode())
    digest.update(f"transformers={transformers.__version__}".encode())
    folder = resources.files("semlink").joinpath("data/published")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        digest.update(entry.name.encode() + entry.read_bytes())
    digest.update(resources.files("semlink").joinpath("data/english_words.txt.gz").read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class SynthPaths:
    """Where each component lies below a synthesized root, and the settings that use them."""

    root: Path

    @property
    def sedic(self) -> Path:
        return self.root / SEDIC_DIR

    @property
    def sam_checkpoint(self) -> Path:
        return self.root / SAM_DIR / SAM_FILE

    @property
    def grounding(self) -> Path:
        return self.root / GROUNDING_DIR

    @property
    def blip(self) -> Path:
        return self.root / BLIP_DIR

    @property
    def codecs(self) -> Path:
        return self.root / CODECS_DIR

    def environment(self) -> dict[str, str]:
        """The ``SEMLINK_*`` variables that point semlink at these weights."""
        return {
            "SEMLINK_SEDIC_WEIGHTS": str(self.sedic),
            "SEMLINK_REFERENCE_MODELS": str(self.codecs),
            "SEMLINK_CAPTIONER": f"transformers:{self.blip}",
            "SEMLINK_GROUNDER": str(self.grounding),
            "SEMLINK_SAM_CHECKPOINT": str(self.sam_checkpoint),
            "SEMLINK_SAM_VARIANT": "vit_b",
        }


# -- components ----------------------------------------------------------------------------
def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def _diffusers_component(cls: Any, config_name: str, directory: Path, seed: int) -> None:
    """Build ``cls`` from a published config, save its safetensors, keep the config verbatim."""
    _seeded(seed)
    config = published(config_name)
    model = cls.from_config(config)
    model.save_pretrained(directory, safe_serialization=True)
    shutil.copyfile(published_path(config_name), directory / "config.json")
    del model


def write_sedic(directory: Path, seed: int = 0) -> None:
    """SD 1.5 (UNet, VAE, CLIP text encoder, tokenizer, scheduler) + tile ControlNet."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    directory.mkdir(parents=True, exist_ok=True)
    _diffusers_component(UNet2DConditionModel, "sd15-unet.json", directory / "unet", seed)
    _diffusers_component(
        ControlNetModel, "controlnet-tile.json", directory / "controlnet", seed + 1
    )
    _diffusers_component(AutoencoderKL, "sd15-vae.json", directory / "vae", seed + 2)
    _seeded(seed + 3)
    text = CLIPTextModel(CLIPTextConfig.from_dict(published("sd15-text_encoder.json")))
    text.save_pretrained(directory / "text_encoder", safe_serialization=True)
    shutil.copyfile(
        published_path("sd15-text_encoder.json"), directory / "text_encoder" / "config.json"
    )
    del text
    write_clip_tokenizer(directory / "tokenizer")
    (directory / "scheduler").mkdir(exist_ok=True)
    shutil.copyfile(
        published_path("sd15-scheduler_config.json"),
        directory / "scheduler" / "scheduler_config.json",
    )


def write_sam(directory: Path, seed: int = 0) -> None:
    """SAM ViT-B as its official checkpoint: a plain state dict in a .pth file."""
    from segment_anything import sam_model_registry

    spec = published("sam-vit_b.json")
    directory.mkdir(parents=True, exist_ok=True)
    _seeded(seed)
    sam = sam_model_registry[spec["variant"]](checkpoint=None)
    torch.save(sam.state_dict(), directory / spec["file"])
    del sam


def _transformers_component(
    directory: Path,
    seed: int,
    name: str,
    classes: tuple[Any, Any, Any, Any],
    extra_special: tuple[str, ...] = (),
) -> None:
    """A transformers model in ``from_pretrained``'s layout: ``classes`` (config, model,
    image processor, processor) built from the published ``{name}.json`` and
    ``{name}-preprocessor.json``, the weights as safetensors, a BERT tokenizer."""
    config_class, model_class, image_processor_class, processor_class = classes
    directory.mkdir(parents=True, exist_ok=True)
    _seeded(seed)
    model = model_class(config_class.from_dict(published(f"{name}.json")))
    model.save_pretrained(directory, safe_serialization=True)
    del model
    tokenizer = write_bert_tokenizer(directory, extra_special=extra_special)
    processor = processor_class(
        image_processor=image_processor_class(**published(f"{name}-preprocessor.json")),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(directory)


def write_grounding(directory: Path, seed: int = 0) -> None:
    """Grounding DINO (Swin-T + BERT-base) in transformers' layout."""
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    classes = (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )
    _transformers_component(directory, seed, "grounding-dino-tiny", classes)


def write_blip(directory: Path, seed: int = 0) -> None:
    """BLIP image captioning (ViT-B/16 at 384 + BERT-base decoder) in transformers' layout."""
    from transformers import (
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    classes = (BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor)
    _transformers_component(
        directory, seed, "blip-captioning-base", classes, extra_special=("[DEC]", "[ENC]")
    )


def write_codecs(directory: Path, seed: int = 0) -> None:
    """compressai codecs as zoo-style state dicts, listed in ``codecs.json``."""
    from semlink.models.codecs import CODECS_FILE, LearnedCodecConfig, build

    directory.mkdir(parents=True, exist_ok=True)
    listing = published("compressai-codecs.json")
    for i, entry in enumerate(listing):
        config = LearnedCodecConfig.model_validate(entry)
        _seeded(seed + i)
        model = build(config)
        model.update(force=True)  # zoo files hold the entropy coders' CDF tables
        torch.save(model.state_dict(), directory / config.file)
    (directory / CODECS_FILE).write_text(json.dumps(listing, indent=2) + "\n")


WRITERS: dict[str, tuple[str, Callable[[Path, int], None]]] = {
    "sedic": (SEDIC_DIR, write_sedic),
    "sam": (SAM_DIR, write_sam),
    "grounding": (GROUNDING_DIR, write_grounding),
    "blip": (BLIP_DIR, write_blip),
    "codecs": (CODECS_DIR, write_codecs),
}


def synthesize(
    root: Path,
    seed: int = 0,
    components: tuple[str, ...] = COMPONENTS,
    log: Callable[[str], None] = print,
) -> SynthPaths:
    """Write every component below ``root`` (each directory replaced whole, its manifest
    last), then ``root/SYNTH.json``. Returns where they lie."""
    unknown = [c for c in components if c not in WRITERS]
    if unknown:
        raise ValueError(f"unknown components {unknown}; known: {', '.join(WRITERS)}")
    root.mkdir(parents=True, exist_ok=True)
    recipe = recipe_digest(seed)
    built: dict[str, dict[str, Any]] = {}
    if (root / DONE).exists():  # components written before from the same recipe stay valid
        record = json.loads((root / DONE).read_text())
        if record.get("recipe") == recipe:
            built = {k: v for k, v in record["built"].items() if k not in components}
        (root / DONE).unlink()
    for name in components:
        subdir, write = WRITERS[name]
        directory = root / subdir
        if directory.exists():
            shutil.rmtree(directory)
        start = time.perf_counter()
        write(directory, seed)
        files = write_manifest(directory)
        size = sum((directory / f).stat().st_size for f in files)
        seconds = time.perf_counter() - start
        built[name] = {"directory": subdir, "files": len(files), "bytes": size, "seconds": seconds}
        log(f"{name}: {directory} ({len(files)} files, {size / 2**20:.0f} MiB, {seconds:.0f} s)")
    record = {"recipe": recipe, "seed": seed, "version": SYNTH_VERSION, "built": built}
    (root / DONE).write_text(json.dumps(record, indent=2) + "\n")
    return SynthPaths(root)


def cached(root: Path, seed: int = 0, log: Callable[[str], None] = print) -> SynthPaths:
    """The synthesized weights below ``root``, written first if missing, incomplete or from
    another recipe (configurations, seed or library versions changed)."""
    done = root / DONE
    if done.exists():
        record = json.loads(done.read_text())
        if record.get("recipe") == recipe_digest(seed) and set(record["built"]) >= set(COMPONENTS):
            return SynthPaths(root)
    return synthesize(root, seed, log=log)


def default_cache() -> Path:
    """``$SEMLINK_SYNTH_DIR``, else ``~/.cache/semlink/synth``."""
    import os

    env = os.environ.get("SEMLINK_SYNTH_DIR")
    return Path(env) if env else Path.home() / ".cache" / "semlink" / "synth"
