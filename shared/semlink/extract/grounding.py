"""Open-vocabulary grounding with transformers' Grounding DINO: a box per object name.

A captioner may name objects that are not in the picture. Every name is grounded: the
text is ``"name one . name two . "``; Grounding DINO scores each of its queries against
every text token. A name's score for a query is the mean sigmoid over its tokens; its
box is the best query's. Names whose best score stays under ``box_threshold`` (the
catalogue's ``BOX_THRESHOLD``, the value Grounding DINO's authors use) are hallucinations
and are dropped, as are boxes too small to hold a mask cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from semlink.extract.segmenter import Box
from semlink.models.catalog import BOX_THRESHOLD


@dataclass(frozen=True)
class Grounded:
    name: str
    box: Box
    score: float


def tiny_vocab(size: int = 5000) -> dict[str, int]:
    """A BERT-style vocabulary from the text stream's word table (no hub)."""
    from semlink.streams.text import english_model

    vocab = {token: i for i, token in enumerate(("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))}
    for token in (".", ",", "'", *english_model().words[:size]):
        vocab.setdefault(token, len(vocab))
    return vocab


class GroundingDinoGrounder:
    def __init__(
        self,
        model: torch.nn.Module,
        processor: object,
        box_threshold: float = BOX_THRESHOLD,
        min_box_fraction: float = 0.002,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.box_threshold = box_threshold
        self.min_box_fraction = min_box_fraction

    @classmethod
    def from_pretrained(
        cls, source: str | Path, box_threshold: float = BOX_THRESHOLD
    ) -> GroundingDinoGrounder:
        """A local directory (sha256 manifest checked when present) or a hub id."""
        from transformers import (
            AutoProcessor,
            GroundingDinoConfig,
            GroundingDinoForObjectDetection,
        )

        from semlink.models.weights import load_transformers

        model, processor = load_transformers(
            f"grounder {source}",
            source,
            GroundingDinoForObjectDetection,
            AutoProcessor,
            build=lambda: GroundingDinoForObjectDetection(
                GroundingDinoConfig.from_pretrained(str(source))
            ),
        )
        return cls(model, processor, box_threshold)

    @classmethod
    def tiny(cls, seed: int = 0, box_threshold: float = BOX_THRESHOLD) -> GroundingDinoGrounder:
        """Grounding DINO's classes at toy size (Swin + BERT backbones; CPU tests)."""
        from transformers import (
            BertTokenizer,
            GroundingDinoConfig,
            GroundingDinoForObjectDetection,
            GroundingDinoImageProcessor,
            GroundingDinoProcessor,
        )

        vocab = tiny_vocab()
        torch.manual_seed(seed)
        config = GroundingDinoConfig(
            backbone_config={
                "model_type": "swin",
                "embed_dim": 8,
                "depths": [1, 1, 1, 1],
                "num_heads": [1, 1, 1, 1],
                "window_size": 4,
                "image_size": 64,
                "out_features": ["stage2", "stage3", "stage4"],
                "out_indices": [2, 3, 4],
            },
            text_config={
                "model_type": "bert",
                "vocab_size": len(vocab),
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "max_position_embeddings": 64,
            },
            d_model=32,  # GroupNorm(32, d_model)
            encoder_layers=1,
            decoder_layers=2,  # the refinement loop needs two
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            num_queries=16,
            num_feature_levels=3,
            encoder_n_points=2,
            decoder_n_points=2,
            max_text_len=48,
            use_timm_backbone=False,
            use_pretrained_backbone=False,
        )
        processor = GroundingDinoProcessor(
            image_processor=GroundingDinoImageProcessor(
                size={"shortest_edge": 64, "longest_edge": 96}
            ),
            tokenizer=BertTokenizer(vocab=vocab),
        )
        return cls(GroundingDinoForObjectDetection(config), processor, box_threshold)

    @torch.no_grad()
    def score(self, image: NDArray[np.uint8], names: list[str]) -> list[Grounded]:
        """Best box and score for every name (no threshold applied), in the given order."""
        if not names:
            return []
        text = "".join(f"{name.lower().strip(' .')} . " for name in names)
        spans, start = [], 0
        for name in names:
            cleaned = name.lower().strip(" .")
            spans.append((start, start + len(cleaned)))
            start += len(cleaned) + 3
        inputs = self.processor(  # type: ignore[operator]
            images=Image.fromarray(image), text=text, return_tensors="pt"
        )
        offsets = self.processor.tokenizer(  # type: ignore[attr-defined]
            text, return_offsets_mapping=True
        )["offset_mapping"]
        outputs = self.model(**inputs)
        probabilities = outputs.logits[0].sigmoid()  # queries x text positions
        boxes = outputs.pred_boxes[0]  # queries x (cx, cy, w, h), relative
        height, width = image.shape[:2]
        found = []
        for name, (first, last) in zip(names, spans, strict=True):
            tokens = [t for t, (a, b) in enumerate(offsets) if b > a and a < last and b > first]
            tokens = [t for t in tokens if t < probabilities.shape[1]]
            if not tokens:
                found.append(Grounded(name, (0.0, 0.0, 0.0, 0.0), 0.0))
                continue
            per_query = probabilities[:, tokens].mean(dim=1)
            best = int(per_query.argmax())
            cx, cy, w, h = boxes[best].tolist()
            box = (
                max(0.0, (cx - w / 2) * width),
                max(0.0, (cy - h / 2) * height),
                min(float(width), (cx + w / 2) * width),
                min(float(height), (cy + h / 2) * height),
            )
            found.append(Grounded(name, box, float(per_query[best])))
        return found

    def ground(self, image: NDArray[np.uint8], names: list[str]) -> list[Grounded]:
        """Names the image supports, with their boxes; hallucinated ones are left out."""
        height, width = image.shape[:2]
        kept = []
        for grounded in self.score(image, names):
            x0, y0, x1, y1 = grounded.box
            area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            if (
                grounded.score >= self.box_threshold
                and area >= self.min_box_fraction * width * height
            ):
                kept.append(grounded)
        return kept
