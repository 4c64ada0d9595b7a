"""Quality metrics behave as metrics: identity is best, damage is worse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from semlink.quality import MissingWeightsError, all_metrics, niqe


def test_identity_and_damage(astronaut: np.ndarray) -> None:
    blurred = np.asarray(Image.fromarray(astronaut).filter(ImageFilter.GaussianBlur(3)))
    same = all_metrics(astronaut, astronaut)
    worse = all_metrics(astronaut, blurred)
    assert same["ms_ssim"] == pytest.approx(1.0)
    assert worse["psnr"] < 35 and worse["ms_ssim"] < 0.99
    assert worse["haarpsi"] < same["haarpsi"] and worse["gmsd"] > same["gmsd"]
    if np.isnan(same["niqe"]):
        pytest.skip("NIQE parameters not in SEMLINK_WEIGHTS_DIR/niqe: the NIQE check needs them")
    assert worse["niqe"] > same["niqe"]  # blur makes the picture less natural


def test_niqe_needs_its_parameters(astronaut: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="SEMLINK_WEIGHTS_DIR"):
        niqe(astronaut, tmp_path / "missing.npz")


def test_bytes_to_match_interpolates_lites_curve() -> None:
    import pandas as pd

    from semlink.eval.report import bytes_to_match

    summary = pd.DataFrame(
        [
            ("best_baseline", 0.02, 0.020, 0.70),
            ("best_baseline", 0.03, 0.030, 0.80),
            ("best_baseline", 0.05, 0.050, 0.95),
            ("lite", 0.02, 0.020, 0.75),
            ("lite", 0.03, 0.030, 0.85),
            ("lite", 0.05, 0.050, 0.90),
        ],
        columns=["method", "target_bpp", "bpp", "ms_ssim"],
    )
    lines = bytes_to_match(summary)
    assert "already at its lowest rate" in lines[0]
    assert "0.0250 bpp (16.7% fewer bytes)" in lines[1]  # 0.80 lies halfway from 0.75 to 0.85
    assert "does not reach it" in lines[2]
