"""Encoder-side semantic extraction: captioners (transformers BLIP/GIT, OpenAI-compatible
LMMs), Grounding DINO grounding and SAM masks, put together by ``pipeline.Extractor``.
Importing the package registers its backends in the model catalogue (``backends``)."""

from semlink.extract import backends
from semlink.extract.captioner import ChatCaptioner, SceneDescription, word_limits

__all__ = ["ChatCaptioner", "SceneDescription", "backends", "word_limits"]
