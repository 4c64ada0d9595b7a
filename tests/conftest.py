from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = Path(os.environ.get("SEMLINK_KODAK", REPO.parent / "shared" / "data" / "kodak"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return skimage.data.chelsea()


def kodak_image(name: str) -> np.ndarray:
    path = KODAK / f"{name}.png"
    if not path.exists():
        pytest.skip(f"Kodak image {path} not present (set SEMLINK_KODAK)")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Generative profiles and learned codecs use tiny random models for this test."""
    from semlink.config import settings

    monkeypatch.setenv("SEMLINK_TINY_MODELS", "1")
    settings.cache_clear()
    yield
    settings.cache_clear()
