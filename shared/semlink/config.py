"""Settings read from the environment (prefix ``SEMLINK_``) with pydantic-settings.

Settings say where models are, never which defaults a backend has: unset fields leave the
model catalogue's (:mod:`semlink.models.catalog`) defaults in force. The resolver
(:mod:`semlink.resolver`) turns one ``Settings`` into the models a profile holds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_DECODE_PIXELS = 4096 * 4096
"""Default of ``SEMLINK_MAX_DECODE_PIXELS``: a 16.7-megapixel picture per decode."""


def _default_weights_dir() -> Path:
    # A checkout keeps third-party data beside the repository, in ../shared/weights.
    return Path(__file__).resolve().parents[3] / "shared" / "weights"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEMLINK_")

    weights_dir: Path = Field(
        default_factory=_default_weights_dir,
        description="Directory of third-party weight and parameter files (niqe/, taef2/, ...).",
    )
    sedic_weights: Path | None = Field(
        None,
        description="Diffusers-layout directory of the sedic decoder's weights (with manifest).",
    )
    reference_models: Path | None = Field(
        None,
        description="Directory of learned reference codecs (codecs.json, weights, manifest).",
    )
    edge_onnx: Path | None = Field(
        None,
        description="Directory of ONNX analysis transforms (`semlink weights export-onnx`): "
        "the encoder runs learned codecs' networks in onnxruntime.",
    )
    captioner: str | None = Field(
        None,
        description="sedic edge captioner: transformers:<dir or hub id> (BLIP/GIT) or "
        "chat:<base URL of an OpenAI-compatible API>.",
    )
    chat_model: str | None = Field(
        None, description="Model name sent to the chat endpoint (unset: the catalogue's)."
    )
    chat_api_key: str | None = Field(None, description="Bearer token for the chat endpoint.")
    grounder: str | None = Field(
        None,
        description="Grounding DINO directory or hub id, transformers layout (unset: the "
        "catalogue's).",
    )
    sam_checkpoint: Path | None = Field(None, description="Official SAM checkpoint (.pth).")
    sam_variant: str | None = Field(
        None, description="SAM variant of the checkpoint (unset: the catalogue's)."
    )
    lite_restorer: bool = Field(
        True,
        description="lite decodes with the shipped learned restorer (a quarter-resolution CNN, "
        "a few hundred ms per 768x512 image on 2 CPU cores); false: Lanczos (milliseconds).",
    )
    sedic_max_steps: int | None = Field(
        None,
        gt=1,
        description="Most diffusion steps DynDiff may choose for a sedic decode (unset: its "
        "range, 10 to 50). Its range shrinks to [max(2, N/5), N]: a CPU decoder of the real "
        "models (seconds per step) or a test keeps DynDiff's choice but bounds its cost.",
    )
    tiny_models: bool = Field(False, description="Use tiny random models (tests and CPU demos).")
    max_decode_pixels: int = Field(
        DEFAULT_MAX_DECODE_PIXELS,
        gt=0,
        description="Largest picture (width x height) a packet header may claim for decode to "
        "rebuild it; larger claims are refused (INVALID_ARGUMENT) before anything is allocated. "
        "The picture alone is 3 bytes per pixel (48 MiB at the default 4096x4096) and decoding "
        "holds several such buffers at once.",
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
