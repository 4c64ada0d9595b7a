"""Edge-side semantic extraction for the ``sedic`` profile: captioner -> grounding -> SAM.

1. The captioner answers SEDIC's three stages (objects J <= 3, details <= l_d words,
   caption <= l_all words) with word limits from the packet's text budget.
2. Grounding DINO boxes every object name; names it cannot ground are dropped as
   hallucinations (and reported in :attr:`Extraction.dropped`).
3. SAM turns each box into a mask, which the mask stream codes at H/8 x W/8.

Which backends run is an :class:`~semlink.models.catalog.ExtractionConfig` (tiny random
ones for tests and demos, or real ones on a device that has them); the resolver builds it
from settings (``semlink.resolver.Models.extractor``). The decoder never needs these
models, so they are not part of the packet's fingerprint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from semlink.extract.captioner import SceneDescription, word_limits
from semlink.extract.grounding import GroundingDinoGrounder
from semlink.extract.segmenter import SamSegmenter
from semlink.models.catalog import MAX_OBJECTS, ChatConfig, ExtractionConfig

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
        max_objects: int = MAX_OBJECTS,
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
        if isinstance(config.captioner, ChatConfig):
            chat = config.captioner
            captioner = ChatCaptioner(chat.base_url, chat.model, api_key=chat.api_key)
        elif config.captioner is not None:
            captioner = TransformersCaptioner.from_pretrained(config.captioner.source)
        else:
            captioner = TransformersCaptioner.tiny()
        grounder = (
            GroundingDinoGrounder.tiny()
            if config.grounder is None
            else GroundingDinoGrounder.from_pretrained(
                config.grounder.source, config.grounder.box_threshold
            )
        )
        segmenter = (
            SamSegmenter(tiny_sam())
            if config.segmenter is None
            else SamSegmenter.from_checkpoint(config.segmenter.checkpoint, config.segmenter.variant)
        )
        return cls(captioner, grounder, segmenter, config.max_objects)

    def extract(self, image: NDArray[np.uint8], packet_bytes: int) -> Extraction:
        """Caption and grounded, segmented objects for a packet of ``packet_bytes`` (the
        whole packet's budget: the text gets a share of it)."""
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        text_bytes = int(packet_bytes * TEXT_SHARE) - self.max_objects * MASK_BYTES
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
