"""The model catalogue: every backend by public name, its role, its pydantic config (the one
place each default lives), a loader for real weights and a ``tiny`` builder of the same
classes for tests (``semlink weights list``); and :class:`ExtractionConfig`, the edge's
extraction backends put together.

The models' own backends (diffusion decoder, learned codecs, TAEF2) are registered here;
packages above register theirs (:func:`register`; ``semlink.extract.backends``), so the
models never import the stages that use them.

Loaders take local directories (sha256 manifest checked) or hub ids where the library
supports them, load safetensors or ``torch.load(weights_only=True)`` state dicts, and
match keys strictly. Settings (:mod:`semlink.config`) only say where weights are; the
resolver (:mod:`semlink.resolver`) builds these configs from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SamVariant = Literal["vit_b", "vit_l", "vit_h"]
CHAT_MODEL = "gpt-4o"
"""Model name sent to an OpenAI-compatible chat endpoint."""
GROUNDING_DINO = "IDEA-Research/grounding-dino-tiny"
"""Hub id of the Grounding DINO checkpoint the edge grounds objects with."""
BOX_THRESHOLD = 0.35
"""Grounding score under which a name counts as not in the image (a hallucination)."""
SAM_VARIANT: SamVariant = "vit_b"
"""SAM image encoder of the official checkpoint."""
MAX_OBJECTS = 3
"""Objects the edge extracts at most (SEDIC's J <= 3)."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiffusionConfig(_Config):
    weights: Path
    """Diffusers-layout directory with manifest.json (``semlink weights fetch --profile sedic``)."""


class CodecDirectoryConfig(_Config):
    directory: Path
    """codecs.json + weights + manifest.json."""


class TransformersConfig(_Config):
    source: str
    """Local directory (manifest checked when present) or hub id."""


class ChatConfig(_Config):
    base_url: str
    model: str = CHAT_MODEL
    api_key: str | None = None


class GroundingConfig(TransformersConfig):
    source: str = GROUNDING_DINO
    box_threshold: float = BOX_THRESHOLD


class SamConfig(_Config):
    checkpoint: Path
    variant: SamVariant = SAM_VARIANT


class DirectoryConfig(_Config):
    directory: Path


class ExtractionConfig(_Config):
    """The edge's extraction backends (captioner -> grounding -> SAM); None: that backend's
    tiny build (tests, CPU demos)."""

    captioner: ChatConfig | TransformersConfig | None = None
    grounder: GroundingConfig | None = None
    segmenter: SamConfig | None = None
    max_objects: int = MAX_OBJECTS


@dataclass(frozen=True)
class Backend:
    name: str
    role: str
    config: type[_Config]
    load: Callable[[Any], object]
    tiny: Callable[[], object] | None
    """None: the backend is a remote service (tested against a local server instead)."""


def _diffusion(config: DiffusionConfig) -> object:
    from semlink.models.diffusion import DiffusionComponents

    return DiffusionComponents.from_pretrained(config.weights)


def _diffusion_tiny() -> object:
    from semlink.models.diffusion import DiffusionComponents

    return DiffusionComponents.tiny()


def _codecs(architecture: str) -> Callable[[CodecDirectoryConfig], object]:
    def load(config: CodecDirectoryConfig) -> object:
        from semlink.models.codecs import load_codecs

        return [c for c in load_codecs(config.directory) if c.config.architecture == architecture]

    return load


def _codecs_tiny(architecture: str) -> Callable[[], object]:
    def build() -> object:
        from semlink.models.codecs import tiny_codecs

        return [c for c in tiny_codecs() if c.config.architecture == architecture]

    return build


def _taef2(config: DirectoryConfig) -> object:
    from semlink.models.taef2 import TAEF2

    return TAEF2.load(config.directory)


def _taef2_tiny() -> object:
    from semlink.models.taef2 import TAEF2

    return TAEF2().eval()  # the architecture is already small (1.3 M parameters per side)


BACKENDS: dict[str, Backend] = {}
"""Every registered backend by public name: the models' own (below) and those other
packages register (``semlink.extract`` registers the edge's captioners, grounder and
segmenter when imported; :func:`semlink.resolver.catalogue` holds them all)."""


def register(backend: Backend) -> Backend:
    """Add ``backend`` to :data:`BACKENDS` (a package registers its own backends)."""
    BACKENDS[backend.name] = backend
    return backend


register(
    Backend("sd15-controlnet-tile", "sedic decoder", DiffusionConfig, _diffusion, _diffusion_tiny)
)
for _architecture in ("bmshj2018-hyperprior", "cheng2020-attn"):
    register(
        Backend(
            _architecture,
            "reference codec",
            CodecDirectoryConfig,
            _codecs(_architecture),
            _codecs_tiny(_architecture),
        )
    )
register(Backend("taef2", "latent autoencoder", DirectoryConfig, _taef2, _taef2_tiny))


def load(name: str, **config: Any) -> object:
    """Build backend ``name`` from real weights; the config is validated first."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None
    return backend.load(backend.config.model_validate(config))
