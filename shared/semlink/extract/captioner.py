"""Captions from an OpenAI-compatible chat endpoint, with SEDIC's three-stage prompt.

SEDIC asks a large multimodal model (GPT-4V in the paper) three things in turn:

1. the salient objects, at most J (J <= 3);
2. for each object, its details in at most l_d words;
3. the whole image in at most l_all words.

The word limits come from the rate controller's text budget (:func:`word_limits`). Models
do not always obey limits, so answers are cut to them here. Any server that speaks the
``/chat/completions`` API with image inputs works (OpenAI, vLLM, llama.cpp server, ...).
"""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

BYTES_PER_WORD = 1.8
"""What one caption word costs after the text stream's coding (~5.5 chars at ~2.5 bits/char)."""


def word_limits(text_bytes: int, objects: int) -> tuple[int, int]:
    """(l_all, l_d): words for the overall caption and for each object's details."""
    words = max(4, int(text_bytes / BYTES_PER_WORD))
    caption = max(4, words // 2) if objects else words
    detail = max(3, (words - caption) // max(1, objects))
    return caption, detail


@dataclass
class SceneDescription:
    caption: str
    objects: list[tuple[str, str]] = field(default_factory=list)
    """(object name, details), most salient first."""


def _cut(text: str, words: int) -> str:
    return " ".join(text.split()[:words])


class ChatCaptioner:
    """Three-stage SEDIC prompting against ``{base_url}/chat/completions``."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def _ask(self, image_url: str, prompt: str) -> str:
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": image_url}},
                    ],
                }
            ],
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"captioner at {self.url} failed: {exc}") from exc
        try:
            return str(answer["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as exc:
            raise RuntimeError(
                f"captioner at {self.url} sent no chat completion: {answer!r:.200}"
            ) from exc

    def describe(
        self,
        image: NDArray[np.uint8],
        *,
        max_objects: int = 3,
        detail_words: int = 12,
        caption_words: int = 25,
    ) -> SceneDescription:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        image_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        listing = self._ask(
            image_url,
            f"List the {max_objects} most salient objects in this image, most important first, "
            f"as a JSON array of short names. Answer with the JSON array only.",
        )
        names = self._parse_names(listing)[:max_objects]
        objects = [
            (
                name,
                _cut(
                    self._ask(
                        image_url,
                        f"Describe the {name} in this image in at most "
                        f"{detail_words} words: its colour, shape, texture and position.",
                    ),
                    detail_words,
                ),
            )
            for name in names
        ]
        caption = self._ask(
            image_url, f"Describe the whole image in at most {caption_words} words."
        )
        return SceneDescription(_cut(caption, caption_words), objects)

    @staticmethod
    def _parse_names(text: str) -> list[str]:
        match = re.search(r"\[.*\]", text, re.S)
        if match:
            try:
                names = json.loads(match.group())
                return [str(n).strip() for n in names if str(n).strip()]
            except json.JSONDecodeError:
                pass
        return [part.strip(" -*.\"'") for part in re.split(r"[,\n]", text) if part.strip(" -*.\"'")]


_NOT_OBJECTS = frozenset(
    """
    a an the of on in at to with and or by for from
    into onto over under near next front behind top bottom left right side middle
    background foreground is are was were be being it its this that there their
    his her they he she some two three four many several one other each
    very up down out off while as has have having sitting standing lying looking
    holding wearing walking playing made close view image picture photo shot
    """.split()  # noqa: SIM905 (a list of words reads best as words)
)


def candidate_objects(caption: str, limit: int) -> list[str]:
    """Object-name candidates from a caption: its content words, first mention first.

    A plain image-to-text model cannot list objects; its caption's content words are the
    candidates and the grounder keeps those it finds in the picture.
    """
    names: list[str] = []
    for word in re.findall(r"[a-z]+", caption.lower()):
        if len(word) > 2 and word not in _NOT_OBJECTS and word not in names:
            names.append(word)
    return names[:limit]


class TransformersCaptioner:
    """An image-to-text model from transformers (BLIP, GIT, BLIP-2 style; greedy decoding).

    It answers the three SEDIC stages as far as such a model can: the overall caption
    from the whole image, object candidates from the caption's content words (grounding
    decides which are real), and each object's details from a caption of its box crop.
    """

    def __init__(self, model: object, processor: object, max_tokens_per_word: float = 1.6) -> None:
        self.model = model
        self.processor = processor
        self.max_tokens_per_word = max_tokens_per_word

    @classmethod
    def from_pretrained(cls, source: str) -> TransformersCaptioner:
        """A local directory (sha256 manifest checked when present) or a hub id."""
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        from semlink.models.weights import load_transformers

        model, processor = load_transformers(
            f"captioner {source}",
            source,
            AutoModelForImageTextToText,
            AutoProcessor,
            build=lambda: AutoModelForImageTextToText.from_config(
                AutoConfig.from_pretrained(source)
            ),
        )
        return cls(model.eval(), processor)

    @classmethod
    def tiny(cls, seed: int = 0) -> TransformersCaptioner:
        """BLIP's classes at toy size with a word-level vocabulary (CPU tests; no hub)."""
        import torch
        from transformers import (
            BertTokenizer,
            BlipConfig,
            BlipForConditionalGeneration,
            BlipImageProcessor,
            BlipProcessor,
        )

        from semlink.extract.grounding import tiny_vocab

        vocab = tiny_vocab()
        torch.manual_seed(seed)
        config = BlipConfig(
            text_config={
                "vocab_size": len(vocab),
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "max_position_embeddings": 96,
                "bos_token_id": vocab["[CLS]"],
                "sep_token_id": vocab["[SEP]"],
                "pad_token_id": vocab["[PAD]"],
            },
            vision_config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 64,
                "patch_size": 16,
            },
            projection_dim=32,
        )
        processor = BlipProcessor(
            image_processor=BlipImageProcessor(size={"height": 64, "width": 64}),
            tokenizer=BertTokenizer(vocab=vocab),
        )
        return cls(BlipForConditionalGeneration(config).eval(), processor)

    def caption(self, image: NDArray[np.uint8], words: int) -> str:
        import torch

        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt")  # type: ignore[operator]
        with torch.no_grad():
            tokens = self.model.generate(  # type: ignore[attr-defined]
                **inputs,
                max_new_tokens=max(4, int(words * self.max_tokens_per_word)),
                do_sample=False,
            )
        text = self.processor.batch_decode(tokens, skip_special_tokens=True)[0]  # type: ignore[attr-defined]
        return _cut(" ".join(str(text).split()), words)

    def describe(
        self,
        image: NDArray[np.uint8],
        *,
        max_objects: int = 3,
        detail_words: int = 12,
        caption_words: int = 25,
    ) -> SceneDescription:
        caption = self.caption(image, caption_words)
        # Details need the object's box: the extraction pipeline asks for them after grounding.
        names = candidate_objects(caption, 2 * max_objects)
        return SceneDescription(caption, [(name, "") for name in names])

    def detail(self, crop: NDArray[np.uint8], name: str, words: int) -> str:
        text = self.caption(crop, words)
        return text if name in text.split() else _cut(f"{name} {text}", words)
