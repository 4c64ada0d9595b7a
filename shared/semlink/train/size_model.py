"""Fit lite's VVC size model (:mod:`semlink.streams.reference.sizemodel`).

Real encodes in lite's configuration of BSDS500 train + test photos (never Kodak, never
val: the rate control is judged there), three per photo: a budget of 0.015-0.08 bpp, the
efficient scale nearest 0.75-1.5x the scale that budget suggests, a QP of 44-47. Each
sample keeps the payload size and the model's regressors; the coefficients are least
squares over log size. Samples are kept in the run directory (``samples-vvc3.json`` for
VVC configuration version 3), so a second run only refits. ~3.5 min on 2 cores.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semlink.imaging import resize
from semlink.streams.reference.base import small_size
from semlink.streams.reference.ratecontrol import efficient_scales, first_scale
from semlink.streams.reference.sizemodel import features
from semlink.streams.reference.vvc import VVC, payload_size
from semlink.train.common import bsds_photos
from semlink.train.restorer_data import OVERHEAD

SAMPLES = f"samples-vvc{VVC.config.version}.json"
"""Named by configuration: another configuration's sizes never feed this one's fit."""
BPPS = (0.015, 0.02, 0.03, 0.05, 0.08)
QPS = (44, 45, 46, 47)
PER_PHOTO = 3
FOLDS = 5


def _jobs(photos: list[Path], seed: int) -> list[tuple[Path, list[tuple[float, int, float]]]]:
    """Per photo, :data:`PER_PHOTO` (bpp, QP, scale factor) drawn from ``seed``."""
    rng = random.Random(seed)
    jobs = []
    for photo in photos:
        draws = []
        for _ in range(PER_PHOTO):
            bpp = rng.choice(BPPS)
            qp = rng.choice(QPS)
            draws.append((bpp, qp, rng.uniform(0.75, 1.5)))
        jobs.append((photo, draws))
    return jobs


def _samples(job: tuple[Path, list[tuple[float, int, float]]]) -> list[dict[str, Any]]:
    photo, draws = job
    image = np.asarray(Image.open(photo).convert("RGB"))
    height, width = image.shape[:2]
    out = []
    for bpp, qp, factor in draws:
        budget = int(bpp * width * height / 8) - OVERHEAD
        guess = first_scale(width, height, budget, factor)
        k = min(efficient_scales(width, height), key=lambda e: abs(e - guess))
        small = resize(image, *small_size(width, height, k))
        size = payload_size(VVC.encode_qp(small, qp))
        out.append(
            {"photo": photo.stem, "k": k, "qp": qp, "size": size, "x": features(small, qp).tolist()}
        )
    return out


def collect(
    bsds: Path,
    out: Path,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """The samples in ``out`` (encoded and saved there on the first run)."""
    path = out / SAMPLES
    if path.exists():
        samples: list[dict[str, Any]] = json.loads(path.read_text())
        return samples
    jobs = _jobs(bsds_photos(bsds, ("train", "test"))[:limit], seed)
    samples = []
    with ThreadPoolExecutor(max_workers=2) as pool:  # vvenc runs as one process per core
        for photo_samples in pool.map(_samples, jobs):
            samples += photo_samples
            if progress is not None:
                progress("encodes", len(samples), PER_PHOTO * len(jobs))
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(samples))
    return samples


def fit(samples: list[dict[str, Any]]) -> tuple[tuple[float, ...], float]:
    """Least-squares coefficients over all samples, and the cross-validated error (sd of
    log size over :data:`FOLDS` folds split by photo)."""
    x = np.array([s["x"] for s in samples])
    y = np.log([s["size"] for s in samples])
    photos = sorted({s["photo"] for s in samples})
    fold_of = {p: i % FOLDS for i, p in enumerate(photos)}
    folds = np.array([fold_of[s["photo"]] for s in samples])
    residuals = np.zeros(len(y))
    for k in range(FOLDS):
        train = folds != k
        beta = np.linalg.lstsq(x[train], y[train], rcond=None)[0]
        residuals[~train] = y[~train] - x[~train] @ beta
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    return tuple(round(float(b), 4) for b in beta), float(residuals.std())
