"""Encoder-side semantic extraction: captioners and LMMs (grounding and SAM to come)."""

from semlink.extract.captioner import ChatCaptioner, SceneDescription, word_limits

__all__ = ["ChatCaptioner", "SceneDescription", "word_limits"]
