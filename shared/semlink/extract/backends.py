"""The edge's extraction backends in the model catalogue (:mod:`semlink.models.catalog`):
captioners, Grounding DINO and SAM register themselves here when ``semlink.extract`` is
imported. Each loader imports its module on first use (torch, transformers, SAM)."""

from __future__ import annotations

from semlink.models.catalog import (
    Backend,
    ChatConfig,
    GroundingConfig,
    SamConfig,
    TransformersConfig,
    register,
)


def _captioner(config: TransformersConfig) -> object:
    from semlink.extract.captioner import TransformersCaptioner

    return TransformersCaptioner.from_pretrained(config.source)


def _captioner_tiny() -> object:
    from semlink.extract.captioner import TransformersCaptioner

    return TransformersCaptioner.tiny()


def _chat(config: ChatConfig) -> object:
    from semlink.extract.captioner import ChatCaptioner

    return ChatCaptioner(config.base_url, config.model, api_key=config.api_key)


def _grounder(config: GroundingConfig) -> object:
    from semlink.extract.grounding import GroundingDinoGrounder

    return GroundingDinoGrounder.from_pretrained(config.source, config.box_threshold)


def _grounder_tiny() -> object:
    from semlink.extract.grounding import GroundingDinoGrounder

    return GroundingDinoGrounder.tiny()


def _sam(config: SamConfig) -> object:
    from semlink.extract.segmenter import SamSegmenter

    return SamSegmenter.from_checkpoint(config.checkpoint, config.variant)


def _sam_tiny() -> object:
    from semlink.extract.segmenter import SamSegmenter, tiny_sam

    return SamSegmenter(tiny_sam())


EXTRACTION_BACKENDS = (
    register(
        Backend(
            "transformers-captioner",
            "captioner (BLIP/GIT)",
            TransformersConfig,
            _captioner,
            _captioner_tiny,
        )
    ),
    register(
        Backend("chat-captioner", "captioner (OpenAI-compatible LMM)", ChatConfig, _chat, None)
    ),
    register(Backend("grounding-dino", "grounding", GroundingConfig, _grounder, _grounder_tiny)),
    register(Backend("sam", "segmentation", SamConfig, _sam, _sam_tiny)),
)
"""The backends this package adds to the catalogue, in the order ``weights list`` shows them."""
