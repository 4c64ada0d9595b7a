"""Edge-side semantic extraction for the ``sedic`` profile: captioner -> grounding -> SAM.

1. The captioner answers SEDIC's three stages (objects J <= 3, details <= l_d words,
   caption <= l_all words) with word limits from the packet's text budget.
2. Grounding DINO boxes every object name; names it cannot ground are dropped as
   hallucinations (and reported in :attr:`Extraction.dropped`).
3. SAM turns each box into a mask, which the mask stream codes at H/8 x W/8.

Which models run is a setting (:func:`extraction_config`): tiny random ones for tests and
demos, or real ones on a device that has them. The decoder never needs these models, so
they are not part of the packet's fingerprint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from semlink.extract.captioner import SceneDescription, word_limits
from semlink.extract.grounding import GroundingDinoGrounder
from semlink.extract.segmenter import SamSegmenter

TEXT_SHARE = 0.35
"""Share of the packet budget the caption and object details may use (SEDIC spends about a
third of its bits on text at 0.03 bpp; the reference gets the rest)."""


MASK_BYTES = 48
"""What one object mask costs at H/8 x W/8, about (the mask stream's test prints 59 B for a
64 x 64 grid); it comes out of the text share."""
MAX_CAPTION_WORDS = 40
MAX_DETAIL_WORDS = 15
"""Longer texts stop helping the diffusion decoder (CLIP reads 77 tokens)."""


class Captioner(Protocol):
    def describe(
        self,
        image: NDArray[np.uint8],
        *,
        max_objects: int = 3,
        detail_words: int = 12,
        caption_words: int = 25,
    ) -> SceneDescription: ...


class ExtractionConfig(BaseModel):
    """Which extraction backends run on the edge (public names in ``Literal`` fields)."""

    model_config = ConfigDict(extra="forbid")

    captioner: Literal["transformers", "chat", "tiny"] = "tiny"
    captioner_source: str = ""
    """transformers: local directory or hub id; chat: base URL of an OpenAI-compatible API."""
    chat_model: str = "gpt-4o"
    chat_api_key: str | None = None
    grounder: Literal["grounding-dino", "tiny"] = "tiny"
    grounder_source: str = ""
    box_threshold: float = 0.35
    segmenter: Literal["sam", "tiny"] = "tiny"
    sam_checkpoint: Path | None = None
    sam_variant: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    max_objects: int = 3


@dataclass
class Extraction:
    caption: str
    objects: list[tuple[str, NDArray[np.bool_] | None]] = field(default_factory=list)
    """(description, full-resolution mask) per grounded object, most salient first."""
    dropped: list[str] = field(default_factory=list)
    """Object names the grounder could not find in the image (hallucinations)."""
    seconds: dict[str, float] = field(default_factory=dict)


class Extractor:
    def __init__(
        self,
        captioner: Captioner,
        grounder: GroundingDinoGrounder,
        segmenter: SamSegmenter,
        max_objects: int = 3,
    ) -> None:
        self.captioner = captioner
        self.grounder = grounder
        self.segmenter = segmenter
        self.max_objects = max_objects

    @classmethod
    def from_config(cls, config: ExtractionConfig) -> Extractor:
        from semlink.extract.captioner import ChatCaptioner, TransformersCaptioner
        from semlink.extract.segmenter import tiny_sam

        captioner: Captioner
        if config.captioner == "chat":
            captioner = ChatCaptioner(
                config.captioner_source, config.chat_model, api_key=config.chat_api_key
            )
        elif config.captioner == "transformers":
            captioner = TransformersCaptioner.from_pretrained(config.captioner_source)
        else:
            captioner = TransformersCaptioner.tiny()
        grounder = (
            GroundingDinoGrounder.from_pretrained(config.grounder_source, config.box_threshold)
            if config.grounder == "grounding-dino"
            else GroundingDinoGrounder.tiny(box_threshold=config.box_threshold)
        )
        if config.segmenter == "sam":
            if config.sam_checkpoint is None:
                raise ValueError("segmenter 'sam' needs sam_checkpoint (SEMLINK_SAM_CHECKPOINT)")
            segmenter = SamSegmenter.from_checkpoint(config.sam_checkpoint, config.sam_variant)
        else:
            segmenter = SamSegmenter(tiny_sam())
        return cls(captioner, grounder, segmenter, config.max_objects)

    def extract(self, image: NDArray[np.uint8], budget_bytes: int) -> Extraction:
        """Caption and grounded, segmented objects for a packet of ``budget_bytes``."""
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        text_bytes = int(budget_bytes * TEXT_SHARE) - self.max_objects * MASK_BYTES
        caption_words, detail_words = word_limits(text_bytes, self.max_objects)
        caption_words = min(caption_words, MAX_CAPTION_WORDS)
        detail_words = min(detail_words, MAX_DETAIL_WORDS)
        scene = self.captioner.describe(
            image,
            max_objects=self.max_objects,
            detail_words=detail_words,
            caption_words=caption_words,
        )
        seconds["caption"] = time.perf_counter() - start

        start = time.perf_counter()
        names = [name for name, _ in scene.objects]
        grounded = self.grounder.ground(image, names)
        kept = {g.name for g in grounded}
        dropped = [name for name in names if name not in kept]
        grounded = grounded[: self.max_objects]
        seconds["grounding"] = time.perf_counter() - start

        start = time.perf_counter()
        masks = self.segmenter.masks(image, [g.box for g in grounded])
        seconds["segmentation"] = time.perf_counter() - start

        details = dict(scene.objects)
        objects: list[tuple[str, NDArray[np.bool_] | None]] = []
        for g, mask in zip(grounded, masks, strict=True):
            text = details.get(g.name, "")
            if not text and hasattr(self.captioner, "detail"):
                x0, y0, x1, y1 = (round(v) for v in g.box)
                crop = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
                text = self.captioner.detail(crop, g.name, detail_words)
            if g.name.lower() not in text.lower():
                text = f"{g.name}: {text}" if text else g.name
            objects.append((text, mask))
        return Extraction(scene.caption, objects, dropped, seconds)


@cache
def _extractor(config_json: str) -> Extractor:
    return Extractor.from_config(ExtractionConfig.model_validate_json(config_json))


def extraction_config() -> ExtractionConfig | None:
    """The configured backends, or None when the edge has none (and is not in tiny mode)."""
    from semlink.config import settings

    s = settings()
    if s.tiny_models:
        return ExtractionConfig()
    if not s.captioner:
        return None
    backend, _, source = s.captioner.partition(":")
    if backend not in ("transformers", "chat"):
        raise ValueError(
            f"SEMLINK_CAPTIONER={s.captioner!r}: use transformers:<dir or hub id> or "
            "chat:<base URL of an OpenAI-compatible API>"
        )
    return ExtractionConfig(
        captioner=backend,
        captioner_source=source,
        chat_model=s.chat_model,
        chat_api_key=s.chat_api_key,
        grounder="grounding-dino",
        grounder_source=s.grounder or "IDEA-Research/grounding-dino-tiny",
        segmenter="sam",
        sam_checkpoint=s.sam_checkpoint,
        sam_variant=s.sam_variant,
    )


def default_extractor() -> Extractor | None:
    config = extraction_config()
    return None if config is None else _extractor(config.model_dump_json())
