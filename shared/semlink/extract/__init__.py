"""Encoder-side semantic extraction: captioners (transformers BLIP/GIT, OpenAI-compatible
LMMs), Grounding DINO grounding and SAM masks, put together by ``pipeline.Extractor``."""

from semlink.extract.captioner import ChatCaptioner, SceneDescription, word_limits

__all__ = ["ChatCaptioner", "SceneDescription", "word_limits"]
