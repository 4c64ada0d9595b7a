"""Edge extraction for sedic: captioner -> Grounding DINO -> SAM, on tiny models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from semlink.budget import Budget
from semlink.codec import Codec, Codecs
from semlink.extract.captioner import ChatCaptioner, TransformersCaptioner, candidate_objects
from semlink.extract.grounding import GroundingDinoGrounder
from semlink.extract.pipeline import Extractor
from semlink.extract.segmenter import SamSegmenter, tiny_sam
from tests.test_captioner import FakeLMM


@pytest.fixture
def lmm() -> Iterator[str]:
    FakeLMM.prompts, FakeLMM.auth = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLMM)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()


def _threshold_between(
    grounder: GroundingDinoGrounder, image: np.ndarray, names: list[str]
) -> set[str]:
    """Put the threshold between the scores: names under it play the hallucinations."""
    scores = {g.name: g.score for g in grounder.score(image, names)}
    assert len(set(scores.values())) > 1, scores
    grounder.box_threshold = (max(scores.values()) + min(scores.values())) / 2
    grounder.min_box_fraction = 0.0
    return {name for name, score in scores.items() if score >= grounder.box_threshold}


def test_grounder_drops_names_it_cannot_ground(chelsea: np.ndarray) -> None:
    grounder = GroundingDinoGrounder.tiny()
    names = ["cat", "green parrot", "branch", "red car"]
    supported = _threshold_between(grounder, chelsea, names)
    kept = grounder.ground(chelsea, names)
    assert {g.name for g in kept} == supported and 0 < len(kept) < len(names)
    assert [g.name for g in kept] == [n for n in names if n in supported]  # order kept
    for g in kept:
        x0, y0, x1, y1 = g.box
        assert 0 <= x0 <= x1 <= chelsea.shape[1] and 0 <= y0 <= y1 <= chelsea.shape[0]
    # A box too small to hold a mask cell is no grounding either.
    grounder.min_box_fraction = 1.01
    assert grounder.ground(chelsea, names) == []


def test_extraction_keeps_grounded_objects_with_masks_in_the_packet(
    tiny: Codecs, lmm: str, chelsea: np.ndarray
) -> None:
    from semlink.streams import LayerKind

    grounder = GroundingDinoGrounder.tiny()
    listed = ["green parrot", "branch", "leaves"]  # what FakeLMM lists (J <= 3)
    supported = _threshold_between(grounder, chelsea, listed)
    extractor = Extractor(ChatCaptioner(lmm, "vision-model"), grounder, SamSegmenter(tiny_sam()))
    found = extractor.extract(chelsea, 2000)
    assert found.dropped == [n for n in listed if n not in supported]
    assert len(found.objects) == len(supported)
    for (text, _), name in zip(found.objects, [n for n in listed if n in supported], strict=True):
        assert name in text  # the LMM's details, or "name: details"
    assert all(mask is not None and mask.shape == chelsea.shape[:2] for _, mask in found.objects)
    assert len(found.caption.split()) <= 40

    sedic = Codec(tiny["sedic"].models.holding(extractor=extractor))
    result = sedic.encode(chelsea, Budget(max_bytes=2000))
    kinds = [layer.kind for layer in result.packet.layers]
    assert kinds[0] == LayerKind.REFERENCE and kinds[1] == LayerKind.CAPTION
    assert kinds.count(LayerKind.OBJECT) == len(found.objects) == len(supported)
    assert result.stage_seconds["extract_grounding"] > 0
    decoded = tiny.decode(result.data, steps=2)  # the extractor is no part of the fingerprint
    assert decoded.caption == found.caption
    for (text, _), (got, mask) in zip(found.objects, decoded.objects, strict=True):
        assert got == text and mask is not None
        assert mask.shape == (round(chelsea.shape[0] / 8), round(chelsea.shape[1] / 8))


def test_extracted_semantics_leave_the_reference_its_share(
    tiny: Codecs, chelsea: np.ndarray
) -> None:
    from semlink.codec import EXTRACTED_SEMANTIC_SHARE

    result = tiny["sedic"].encode(chelsea, Budget(max_bytes=500))
    sizes = dict(result.layer_bytes()[:1])
    semantic = sum(size for kind, size in result.layer_bytes() if kind != "reference")
    assert "reference" in sizes and semantic <= EXTRACTED_SEMANTIC_SHARE * 500
    assert len(result.data) <= 500


def test_transformers_captioner_obeys_word_limits_and_loads_from_a_directory(
    tmp_path: Path, chelsea: np.ndarray
) -> None:
    from semlink.models.weights import WeightsError, write_manifest

    captioner = TransformersCaptioner.tiny()
    for words in (3, 7, 12):
        assert 0 < len(captioner.caption(chelsea, words).split()) <= words
    scene = captioner.describe(chelsea, max_objects=2, caption_words=10)
    assert len(scene.objects) <= 4 and all(not detail for _, detail in scene.objects)
    assert captioner.detail(chelsea[:64, :64], "cat", 4).split()[0] == "cat"

    captioner.model.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    captioner.processor.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    write_manifest(tmp_path)
    loaded = TransformersCaptioner.from_pretrained(str(tmp_path))
    assert loaded.caption(chelsea, 8) == captioner.caption(chelsea, 8)
    weights = next(tmp_path.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-10] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        TransformersCaptioner.from_pretrained(str(tmp_path))


def test_candidate_objects_are_content_words() -> None:
    assert candidate_objects("a cat sitting on the wooden floor near a red car", 4) == [
        "cat",
        "wooden",
        "floor",
        "red",
    ]
    assert candidate_objects("the the a", 3) == []


def test_grounder_loads_from_a_directory(tmp_path: Path, chelsea: np.ndarray) -> None:
    from semlink.models.weights import write_manifest

    grounder = GroundingDinoGrounder.tiny(seed=3)
    grounder.model.save_pretrained(tmp_path)
    grounder.processor.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    write_manifest(tmp_path)
    loaded = GroundingDinoGrounder.from_pretrained(tmp_path)
    assert loaded.score(chelsea, ["cat", "floor"]) == grounder.score(chelsea, ["cat", "floor"])


def test_sedic_without_extraction_models_says_what_to_set(chelsea: np.ndarray) -> None:
    from semlink.config import settings
    from semlink.models.registry import tiny_decoder_models
    from semlink.models.weights import WeightsError
    from semlink.profiles import SEDIC
    from semlink.resolver import Models

    edge = settings().model_copy(update={"tiny_models": False, "captioner": None})
    # The decoder's models are given (their digest stamps the packet); extraction has none.
    models = Models.from_settings(edge, SEDIC).holding(diffusion=tiny_decoder_models(0))
    with pytest.raises(WeightsError, match="SEMLINK_CAPTIONER"):
        Codec(models).encode(chelsea, Budget(max_bytes=400))
