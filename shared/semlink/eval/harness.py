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
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.codec import decode, encode
from semlink.eval.cache import Baseline, photo_hash
from semlink.eval.cache import baseline as baseline_search
from semlink.imaging import resize
from semlink.packet import Layer
from semlink.quality import all_metrics
from semlink.quality.artifacts import busiest_block, smoothest_block
from semlink.streams.reference import (
    STANDARD,
    VVC_IDS,
    ReferenceCodec,
    decode_file,
    small_size,
    unpack_file,
)


def realism_method(realism: float) -> str:
    """The method name of lite decoded at ``realism``: lite_r0, lite_r0.25, ..., lite_r1."""
    return f"lite_r{realism:g}"


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

REALISM_CURVE = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Realisms every lite packet is also decoded at: the realism curve (PSNR against LPIPS
and DISTS along the control, ``realism.png``)."""

LITE_DECODES: tuple[tuple[str, bool | None, float | None], ...] = (
    ("lite", None, None),
    *((realism_method(r), None, r) for r in REALISM_CURVE),
    ("lite_lanczos", False, None),
)
"""(method, restorer, realism): the decodes of each lite packet the evaluation reports."""


LITE_NAMES = tuple(method for method, _, _ in LITE_DECODES)
"""lite's methods: lite, lite_r0, lite_r0.25, lite_r0.5, lite_r0.75, lite_r1, lite_lanczos."""

BASELINES = tuple(c.name.lower() for c in STANDARD)
"""The standard codecs: avif, hevc, webp, jpegxl, jpeg, vvc."""

METHODS = (*LITE_NAMES, *BASELINES)
"""Every method an evaluation can run, in the order its rows come. ``best_baseline`` is
not one: it is picked per photo and rate among the baselines that ran."""


class UnknownMethodError(ValueError):
    """A method or baseline name that is not one of :data:`METHODS`."""


def _names(given: str | Iterable[str]) -> list[str]:
    items = given.split(",") if isinstance(given, str) else given
    names = []
    for item in items:
        name = item.strip().lower()
        if name.startswith("lite_r"):  # lite_r1.0 is lite_r1
            with contextlib.suppress(ValueError):
                name = realism_method(float(name[len("lite_r") :]))
        if name:
            names.append(name)
    return names


def select_methods(
    methods: str | Iterable[str] | None = None, baselines: str | Iterable[str] | None = None
) -> tuple[str, ...]:
    """The methods an evaluation runs, in :data:`METHODS` order.

    ``methods`` (names, or one comma-separated string) picks exactly those; ``baselines``
    names standard codecs. Neither: everything. ``baselines`` alone: every lite method
    and those codecs. Both: the union (``baselines`` adds codecs to ``methods``).
    :class:`UnknownMethodError` names what is wrong and lists the valid names."""
    chosen: set[str] = set()
    if baselines is not None:
        wanted = _names(baselines)
        unknown = [b for b in wanted if b not in BASELINES]
        if unknown:
            raise UnknownMethodError(
                f"unknown baseline {', '.join(unknown)}: choose from {', '.join(BASELINES)}"
            )
        chosen.update(wanted)
        if methods is None:
            chosen.update(LITE_NAMES)
    if methods is not None:
        wanted = _names(methods)
        unknown = [m for m in wanted if m not in METHODS]
        if unknown:
            why = (
                " (it is picked among the baselines that run)" if "best_baseline" in unknown else ""
            )
            raise UnknownMethodError(
                f"unknown method {', '.join(unknown)}{why}: choose from {', '.join(METHODS)}"
            )
        chosen.update(wanted)
    if methods is None and baselines is None:
        chosen.update(METHODS)
    if not chosen:
        raise UnknownMethodError(f"no method given: choose from {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in chosen)


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


CROP_METHODS = ("original", "vvc", "lite_r0", "lite_r1")
"""The gallery's 2x crops of a textured and of a smooth area, left to right."""


def crops(
    pictures: Sequence[NDArray[np.uint8]], size: int = 96, smooth: bool = False
) -> NDArray[np.uint8]:
    """The ``size`` x ``size`` area of the first picture (the original) with the most
    texture (or, ``smooth``, the least), cut from every picture, enlarged 2x (nearest: no
    resampling hides a pattern), side by side."""
    size = min(size, pictures[0].shape[0] - 1, pictures[0].shape[1] - 1)  # tiny pictures
    top, left = (smoothest_block if smooth else busiest_block)(pictures[0], size)
    tiles = [
        np.repeat(np.repeat(p[top : top + size, left : left + size], 2, 0), 2, 1) for p in pictures
    ]
    gap = np.full((2 * size, 4, 3), 255, np.uint8)
    return np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)


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


def standard_baseline(
    image: NDArray[np.uint8], budget: int, codec: ReferenceCodec, cache: Path
) -> NDArray[np.uint8] | None:
    """The full-size picture a standard ``codec`` sender gets within ``budget`` bytes (its
    whole file, downscale search, as in the evaluation's baselines); searches cached in
    ``cache`` (:mod:`semlink.eval.cache`). None when nothing fits."""
    result, _ = baseline_search(image, budget, codec, cache)
    return None if result is None else _reconstruction(image, codec, result)


def _reconstruction(
    image: NDArray[np.uint8], codec: ReferenceCodec, result: Baseline
) -> NDArray[np.uint8]:
    """One baseline's full-size picture, decoded from its file."""
    height, width = image.shape[:2]
    return resize(
        decode_file(codec, result.data, small_size(width, height, result.k)), width, height
    )


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


def _evaluate_image(path: Path, config: EvalConfig, report: Report = _silent) -> list[Row]:
    image = np.asarray(Image.open(path).convert("RGB"))
    height, width = image.shape[:2]
    photo = photo_hash(image)
    recon_dir = config.out / "images"
    recon_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(recon_dir / f"{path.stem}-original.png")
    rows: list[Row] = []
    lite_decodes = [d for d in LITE_DECODES if d[0] in config.methods]
    baselines = [b for b in BASELINES if b in config.methods]
    for rate in config.rates:
        budget = int(rate * width * height / 8)
        where = f"{path.stem} @ {rate} bpp"
        # lite as it ships (learned restorer when its weights are present), along its
        # realism control, and the same packet upsampled with Lanczos: what the reference
        # codec alone delivers.
        pictures: dict[str, NDArray[np.uint8]] = {"original": image}
        if lite_decodes:
            report(f"{where}: {lite_decodes[0][0]}", 0, None)
            start = time.perf_counter()
            encoded = encode(image, "lite", max_bytes=budget)
            encode_s = time.perf_counter() - start
            reference = encoded.packet.layers[0] if encoded.packet.layers else None
            detail = _reference_detail(reference, width, height)
        # Decodes that give the same picture (the default may be an end) run and are
        # measured once; Lanczos (restorer off) is keyed apart as -1.
        done: dict[float, tuple[NDArray[np.uint8], float, dict[str, float]]] = {}
        for method, restorer, realism in lite_decodes:
            report(f"{where}: {method}", 0, None)
            same = -1.0 if restorer is False else realism
            same = encoded.packet.realism / 100 if same is None else same
            if same not in done:
                start = time.perf_counter()
                decoded = decode(encoded.data, restorer=restorer, realism=realism).image
                done[same] = (decoded, time.perf_counter() - start, all_metrics(image, decoded))
            picture, decode_s, metrics = done[same]
            pictures[method] = picture
            rows.append(
                Row(
                    path.stem,
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
            Image.fromarray(picture).save(recon_dir / f"{path.stem}-{rate}-{method}.png")
            report(f"{where}: {method}", 1, None)
        per_codec: list[tuple[ReferenceCodec, Baseline, NDArray[np.uint8], dict[str, float]]] = []
        for name in baselines:
            report(f"{where}: {name}", 0, None)
            codec = ReferenceCodec[name.upper()]
            result, cached = baseline_search(image, budget, codec, config.cache, photo)
            if result is not None:
                recon = _reconstruction(image, codec, result)
                if codec is ReferenceCodec.VVC:
                    Image.fromarray(recon).save(recon_dir / f"{path.stem}-{rate}-vvc.png")
                    pictures["vvc"] = recon
                metrics = all_metrics(image, recon, with_niqe=codec is ReferenceCodec.VVC)
                per_codec.append((codec, result, recon, metrics))
                rows.append(
                    Row(
                        path.stem,
                        rate,
                        name,
                        budget,
                        result.size,
                        8 * result.size / (width * height),
                        detail=f"scale {result.k}/256 q{result.quality}",
                        **metrics,
                    )
                )
            report(f"{where}: {name}{' (cached)' if cached else ''}", 1, cached)
        row = [pictures[m] for m in CROP_METHODS if m in pictures]
        Image.fromarray(crops(row)).save(recon_dir / f"{path.stem}-{rate}-crops.png")
        Image.fromarray(crops(row, smooth=True)).save(recon_dir / f"{path.stem}-{rate}-smooth.png")
        if per_codec:
            codec, result, recon, metrics = max(per_codec, key=lambda item: item[1].psnr)
            Image.fromarray(recon).save(recon_dir / f"{path.stem}-{rate}-best_baseline.png")
            if codec is not ReferenceCodec.VVC:  # VVC's row has NIQE already
                metrics = all_metrics(image, recon)
            rows.append(
                Row(
                    path.stem,
                    rate,
                    "best_baseline",
                    budget,
                    result.size,
                    8 * result.size / (width * height),
                    detail=f"{codec.name.lower()} scale {result.k}/256",
                    **metrics,
                )
            )
    return rows


_worker_queue: Any = None
"""In a worker process: the queue its progress goes to (set by :func:`_start_worker`)."""


def _start_worker(queue: Any) -> None:
    global _worker_queue
    _worker_queue = queue


def _evaluate_in_worker(path: Path, config: EvalConfig) -> list[Row]:
    return _evaluate_image(path, config, lambda *event: _worker_queue.put(event))


def run_eval(config: EvalConfig, progress: Report | None = None) -> list[Row]:
    """Evaluate the images in ``config.images`` (the first ``config.limit``) with
    ``config.methods``; returns all rows (also written by reports), photo by photo in
    sorted order. ``progress`` hears of each (photo x rate x method) unit, see
    :data:`Report` and :func:`units`."""
    paths = list_images(config.images, config.limit)
    config.out.mkdir(parents=True, exist_ok=True)
    report = progress or _silent
    if config.workers <= 1 or len(paths) == 1:
        return [row for path in paths for row in _evaluate_image(path, config, report)]
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
        initargs=(queue,),
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
