"""Pretrained-weight checks for a GPU deployment; skipped where the weights are absent.

Run on a machine that has them (see README, "GPU deployment with real weights"):

    SEMLINK_SEDIC_WEIGHTS=weights/sedic SEMLINK_REFERENCE_MODELS=weights/codecs \\
    SEMLINK_CAPTIONER=transformers:Salesforce/blip-image-captioning-large \\
    SEMLINK_GROUNDER=weights/grounding-dino-tiny SEMLINK_SAM_CHECKPOINT=weights/sam_vit_b.pth \\
    pytest -m real_weights
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import kodak_image

pytestmark = pytest.mark.real_weights


def _needs(*names: str) -> pytest.MarkDecorator:
    missing = [n for n in names if not os.environ.get(n)]
    return pytest.mark.skipif(
        bool(missing), reason=f"pretrained weights not configured: set {', '.join(missing)}"
    )


@_needs("SEMLINK_REFERENCE_MODELS")
def test_learned_reference_codecs_reach_useful_quality_within_budget() -> None:
    from semlink.config import Settings
    from semlink.profiles import SEDIC
    from semlink.resolver import Models
    from semlink.streams.reference import search, search_learned

    image = kodak_image("kodim23")
    budget = int(0.03 * image.shape[0] * image.shape[1] / 8) - 60
    learned = search_learned(image, budget, Models(SEDIC, Settings()).reference_codecs)
    classical = search(image, budget)
    assert learned is not None and classical is not None and learned.size <= budget
    assert learned.psnr >= classical.psnr - 1.0, (learned.psnr, classical.psnr)


@_needs("SEMLINK_CAPTIONER", "SEMLINK_GROUNDER", "SEMLINK_SAM_CHECKPOINT")
def test_real_extraction_grounds_and_segments_kodim23() -> None:
    from semlink.config import Settings
    from semlink.profiles import SEDIC
    from semlink.resolver import Models

    extractor = Models(SEDIC, Settings()).extractor
    assert extractor is not None
    image = kodak_image("kodim23")  # two parrots
    found = extractor.extract(image, 1474)
    assert len(found.caption.split()) >= 3
    assert found.objects, f"nothing grounded; dropped {found.dropped}"
    for _, mask in found.objects:
        assert mask is not None and 0.01 < mask.mean() < 0.9


@_needs("SEMLINK_SEDIC_WEIGHTS")
def test_sedic_decode_restores_texture_without_losing_fidelity() -> None:
    from semlink.budget import Budget
    from semlink.codec import Codecs, ObjectHint
    from semlink.quality.metrics import psnr
    from semlink.quality.niqe import niqe

    image = kodak_image("kodim23")
    codecs, budget = Codecs.from_settings(), Budget(target_bpp=0.03)
    parrot = [ObjectHint("a parrot")]
    lite = codecs.decode(codecs["lite"].encode(image, budget).data).image
    packet = codecs["sedic"].encode(
        image, budget, caption="two colourful parrots on a branch", objects=parrot
    )
    sedic = codecs.decode(packet.data, steps=20).image
    assert psnr(sedic, image) >= psnr(lite, image) - 3.0
    assert niqe(sedic) < niqe(lite)
