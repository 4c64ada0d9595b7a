"""Run lite and the standard-codec baselines over a folder of images at several rates.

Every method gets the same byte budget per image and rate: ``floor(bpp x W x H / 8)``.
Baselines (AVIF, HEVC, WebP, JPEG-XL, JPEG and VVC) send a whole standard file
(container or parameter sets included, as a real deployment of that codec would) and
each searches downscale factors, keeping its best PSNR; the "best baseline" per image is
the best codec for that image. lite is reported from the same packet: as it ships
(``lite``: learned restorer at the packet's default realism), along the realism control
(``lite_r0``: fidelity, ``lite_r0.25`` ... ``lite_r1``: the perceptual end) and upsampled
with Lanczos (``lite_lanczos``). Every method gets PSNR, MS-SSIM, HaarPSI, GMSD, LPIPS
(AlexNet) and DISTS; NIQE for lite, VVC and the best baseline.
Rates in results are always measured from the bytes actually produced.

``methods`` picks what runs (:func:`select_methods`; default: everything), ``limit`` the
first photos. Baseline searches (minutes per photo for VVC) are kept across runs in a cache
(:mod:`semlink.eval.cache`, by default ``~/.cache/semlink/eval``) keyed by the codec's
version, the photo's pixels and the budget: a cached run gives the rows a fresh one does.
Which methods there are and how names pick them: :mod:`semlink.eval.methods`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.budget import Budget
from semlink.codec import Codec, EncodeResult
from semlink.config import Settings
from semlink.eval.cache import Baseline, photo_hash
from semlink.eval.cache import baseline as baseline_search
from semlink.eval.methods import (
    BASELINES,
    LITE_DECODES,
    LITE_NAMES,
    METHODS,
    REALISM_CURVE,
    UnknownMethodError,
    realism_method,
    select_methods,
)
from semlink.eval.pictures import CROP_METHODS, crops, reconstruction, standard_baseline
from semlink.packet import Layer
from semlink.profiles import LITE
from semlink.quality import all_metrics
from semlink.resolver import Models
from semlink.streams.reference import VVC_IDS, ReferenceCodec, unpack_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class EvalConfig:
    images: Path
    out: Path
    rates: tuple[float, ...] = (0.02, 0.03, 0.05)
    workers: int = 2
    methods: tuple[str, ...] = METHODS
    """What runs (:func:`select_methods`)."""
    limit: int | None = None
    """Only the first ``limit`` photos (sorted by name)."""
    cache: Path | None = None
    """Where baseline searches are kept across runs (:func:`semlink.eval.cache.default_cache`
    is the command line's default); None: searched afresh, nothing kept."""


@dataclass
class Row:
    image: str
    target_bpp: float
    method: str
    budget: int
    """Bytes every method was allowed: floor(target_bpp x W x H / 8)."""
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float = float("nan")
    haarpsi: float = float("nan")
    gmsd: float = float("nan")
    niqe: float = float("nan")
    lpips: float = float("nan")
    """LPIPS v0.1, AlexNet (lower is better)."""
    dists: float = float("nan")
    detail: str = ""
    encode_s: float = float("nan")
    decode_s: float = float("nan")


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """The images in ``folder``, sorted by name; ``limit``: only the first ``limit``."""
    try:
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except NotADirectoryError as exc:
        raise FileNotFoundError(f"{folder} is not a folder of images") from exc
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no such folder: {folder}") from exc
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return images if limit is None else images[:limit]


def units(config: EvalConfig, photos: int) -> int:
    """The (photo x rate x method) units an evaluation of ``photos`` photos runs: what its
    progress counts (best_baseline is picked from the baselines' results, not a unit)."""
    return photos * len(config.rates) * len(config.methods)


def _reference_detail(reference: Layer | None, width: int, height: int) -> str:
    """Codec, scale and, for VVC, the bytes the decoder rebuilt instead of receiving."""
    if reference is None:
        return "none"
    name = ReferenceCodec(reference.codec).name.lower()
    if reference.codec not in VVC_IDS:
        return name
    k, stream = unpack_file(ReferenceCodec(reference.codec), reference.payload, width, height)
    return f"{name} scale {k}/256, {len(stream) - len(reference.payload)} B rebuilt"


Report = Callable[[str, int, bool | None], None]
"""Progress of an evaluation: ``(description, advance, cached)``; advance 0 when a unit
starts, 1 when it is done; cached, for a baseline's unit done, whether its search was read
from the cache (None otherwise)."""


def _silent(description: str, advance: int, cached: bool | None) -> None:
    pass


def lite_codec(settings: Settings) -> Codec:
    """lite's codec over the models ``settings`` name (one per process that evaluates)."""
    return Codec(Models(LITE, settings))


def _evaluate_image(
    path: Path, config: EvalConfig, codec: Codec, report: Report = _silent
) -> list[Row]:
    image = np.asarray(Image.open(path).convert("RGB"))
    recon_dir = config.out / "images"
    recon_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(recon_dir / f"{path.stem}-original.png")
    rows: list[Row] = []
    for rate in config.rates:
        pictures: dict[str, NDArray[np.uint8]] = {"original": image}
        rows += _lite_rows(path.stem, image, rate, config, codec, pictures, report)
        rows += _baseline_rows(path.stem, image, rate, config, pictures, report)
        row = [pictures[m] for m in CROP_METHODS if m in pictures]
        stem = recon_dir / f"{path.stem}-{rate}"
        Image.fromarray(crops(row)).save(f"{stem}-crops.png")
        Image.fromarray(crops(row, smooth=True)).save(f"{stem}-smooth.png")
    return rows


def _budget(image: NDArray[np.uint8], rate: float) -> int:
    """The bytes every method gets at ``rate``: floor(bpp x W x H / 8)."""
    height, width = image.shape[:2]
    return int(rate * width * height / 8)


def _lite_rows(
    stem: str,
    image: NDArray[np.uint8],
    rate: float,
    config: EvalConfig,
    codec: Codec,
    pictures: dict[str, NDArray[np.uint8]],
    report: Report,
) -> list[Row]:
    """lite as it ships (learned restorer when its weights are present), along its realism
    control, and the same packet upsampled with Lanczos (what the reference codec alone
    delivers): one packet, one row per decode; the pictures go into ``pictures``."""
    lite_decodes = [d for d in LITE_DECODES if d[0] in config.methods]
    if not lite_decodes:
        return []
    height, width = image.shape[:2]
    budget = _budget(image, rate)
    where = f"{stem} @ {rate} bpp"
    recon_dir = config.out / "images"
    report(f"{where}: {lite_decodes[0][0]}", 0, None)
    start = time.perf_counter()
    encoded = codec.encode(image, Budget(max_bytes=budget))
    encode_s = time.perf_counter() - start
    reference = encoded.packet.layers[0] if encoded.packet.layers else None
    detail = _reference_detail(reference, width, height)
    # Decodes that give the same picture (the default may be an end) run and are measured
    # once; Lanczos (restorer off) is keyed apart as -1.
    done: dict[float, tuple[NDArray[np.uint8], float, dict[str, float]]] = {}
    rows = []
    for method, restorer, realism in lite_decodes:
        report(f"{where}: {method}", 0, None)
        same = -1.0 if restorer is False else realism
        same = encoded.packet.realism / 100 if same is None else same
        if same not in done:
            done[same] = _decoded(codec, encoded, image, restorer, realism)
        picture, decode_s, metrics = done[same]
        pictures[method] = picture
        rows.append(
            Row(
                stem,
                rate,
                method,
                budget,
                len(encoded.data),
                encoded.bits_per_pixel,
                detail=detail,
                encode_s=encode_s,
                decode_s=decode_s,
                **metrics,
            )
        )
        Image.fromarray(picture).save(recon_dir / f"{stem}-{rate}-{method}.png")
        report(f"{where}: {method}", 1, None)
    return rows


def _decoded(
    codec: Codec,
    encoded: EncodeResult,
    image: NDArray[np.uint8],
    restorer: bool | None,
    realism: float | None,
) -> tuple[NDArray[np.uint8], float, dict[str, float]]:
    """One decode of lite's packet: the picture, its seconds and its metrics."""
    start = time.perf_counter()
    decoded = codec.decode(encoded.data, restorer=restorer, realism=realism).image
    return decoded, time.perf_counter() - start, all_metrics(image, decoded)


def _baseline_rows(
    stem: str,
    image: NDArray[np.uint8],
    rate: float,
    config: EvalConfig,
    pictures: dict[str, NDArray[np.uint8]],
    report: Report,
) -> list[Row]:
    """Every baseline's row at ``rate``, and the best baseline's (by PSNR) when any ran;
    VVC's picture goes into ``pictures``."""
    height, width = image.shape[:2]
    budget = _budget(image, rate)
    where = f"{stem} @ {rate} bpp"
    recon_dir = config.out / "images"
    photo = photo_hash(image)
    rows = []
    per_codec: list[tuple[ReferenceCodec, Baseline, NDArray[np.uint8], dict[str, float]]] = []
    for name in (b for b in BASELINES if b in config.methods):
        report(f"{where}: {name}", 0, None)
        codec = ReferenceCodec[name.upper()]
        result, cached = baseline_search(image, budget, codec, config.cache, photo)
        if result is not None:
            recon = reconstruction(image, codec, result)
            if codec is ReferenceCodec.VVC:
                Image.fromarray(recon).save(recon_dir / f"{stem}-{rate}-vvc.png")
                pictures["vvc"] = recon
            metrics = all_metrics(image, recon, with_niqe=codec is ReferenceCodec.VVC)
            per_codec.append((codec, result, recon, metrics))
            bpp = 8 * result.size / (width * height)
            detail = f"scale {result.k}/256 q{result.quality}"
            rows.append(Row(stem, rate, name, budget, result.size, bpp, detail=detail, **metrics))
        report(f"{where}: {name}{' (cached)' if cached else ''}", 1, cached)
    if per_codec:
        codec, result, recon, metrics = max(per_codec, key=lambda item: item[1].psnr)
        Image.fromarray(recon).save(recon_dir / f"{stem}-{rate}-best_baseline.png")
        if codec is not ReferenceCodec.VVC:  # VVC's row has NIQE already
            metrics = all_metrics(image, recon)
        bpp = 8 * result.size / (width * height)
        detail = f"{codec.name.lower()} scale {result.k}/256"
        rows.append(
            Row(stem, rate, "best_baseline", budget, result.size, bpp, detail=detail, **metrics)
        )
    return rows


_worker: tuple[Any, Codec] | None = None
"""In a worker process: the queue its progress goes to and its lite codec (set by
:func:`_start_worker`, the worker's start: its codec is built once)."""


def _start_worker(queue: Any, settings: Settings) -> None:
    global _worker
    _worker = (queue, lite_codec(settings))


def _evaluate_in_worker(path: Path, config: EvalConfig) -> list[Row]:
    assert _worker is not None, "a worker starts with _start_worker"
    queue, codec = _worker
    return _evaluate_image(path, config, codec, lambda *event: queue.put(event))


def run_eval(config: EvalConfig, settings: Settings, progress: Report | None = None) -> list[Row]:
    """Evaluate the images in ``config.images`` (the first ``config.limit``) with
    ``config.methods``, lite over the models ``settings`` name; returns all rows (also
    written by reports), photo by photo in sorted order. ``progress`` hears of each (photo
    x rate x method) unit, see :data:`Report` and :func:`units`."""
    paths = list_images(config.images, config.limit)
    config.out.mkdir(parents=True, exist_ok=True)
    report = progress or _silent
    if config.workers <= 1 or len(paths) == 1:
        codec = lite_codec(settings)
        return [row for path in paths for row in _evaluate_image(path, config, codec, report)]
    # Workers fork from a fresh server process that has imported this module (and torch)
    # once but run nothing: a fork of a process whose torch already ran (thread pools, their
    # locks) can hang in the child, and "spawn" imports torch again in every worker.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    queue = context.Queue()
    with ProcessPoolExecutor(
        max_workers=min(config.workers, len(paths)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(queue, settings),
    ) as pool:
        finished = 0
        futures = [pool.submit(_evaluate_in_worker, path, config) for path in paths]
        pending = set(futures)
        while pending:
            try:
                event = queue.get(timeout=0.2)
                report(*event)
                finished += event[1]
            except Empty:
                pass
            pending = {f for f in pending if not f.done()}
        rows = [row for future in futures for row in future.result()]
    total = units(config, len(paths))
    while finished < total:  # what the last units said before their photo's result came
        try:
            event = queue.get(timeout=1.0)
        except Empty:
            break
        report(*event)
        finished += event[1]
    return rows


def rows_as_dicts(rows: Sequence[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


__all__ = [
    "BASELINES",
    "IMAGE_SUFFIXES",
    "LITE_DECODES",
    "LITE_NAMES",
    "METHODS",
    "REALISM_CURVE",
    "EvalConfig",
    "Row",
    "UnknownMethodError",
    "crops",
    "list_images",
    "lite_codec",
    "realism_method",
    "rows_as_dicts",
    "run_eval",
    "select_methods",
    "standard_baseline",
    "units",
]
