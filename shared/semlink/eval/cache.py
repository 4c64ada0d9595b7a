"""The standard-codec baselines' search results, kept on disk across evaluation runs.

A baseline's scale x quality search is what an evaluation spends its time on (VVC: ~130 s
per photo and rate on 2 cores); its result depends only on the photo, the byte budget, the
codec build and settings, and the search's parameters. An entry keeps what the search
found (bytes, scale, quality, the PSNR it ranked by) and the codec's file itself, so a
cached row is computed exactly as a fresh one is: the file is decoded and measured again.

Entries are keyed by:

- the photo's pixels (SHA-256 of its size and RGB bytes: the same picture in another file
  format or with other metadata hits the same entry) and the budget in bytes;
- the codec's version: for VVC imageio-ffmpeg's version (it fixes the ffmpeg, vvenc and
  decoder builds) and the vvenc configuration; for AVIF and HEVC pillow-heif's and
  libheif's versions, for WebP and JPEG Pillow's and its libwebp/libjpeg versions, for
  JPEG-XL imagecodecs' and libjxl's; the codec's quality range and lowest rate;
- the search's parameters (scales, fill fraction, largest small-picture rate, whole files);
- :data:`CACHE_VERSION`, bumped when the search or a codec's settings written in code (AVIF
  speed, WebP method, JPEG-XL effort, the RGB <-> Y'CbCr conversion, resampling) change.

Layout: ``<cache>/<codec>/<photo hash>-<budget>-<key hash>.json`` (the full key and the
result, ``null`` when nothing fits) beside ``.bin`` (the codec's file). Both are written
to a temporary name and renamed, the ``.json`` last: an interrupted run leaves no entry
that reads as complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semlink.streams.reference import (
    MAX_SMALL_BPP,
    SCALES,
    VVC_IDS,
    ReferenceCodec,
    search,
)
from semlink.streams.reference.registry import CODECS

CACHE_VERSION = "5"
"""Bump when the baselines' search or a codec's settings written in code change."""

FILL = 0.97
"""The search's fill fraction (:func:`semlink.streams.reference.search`'s default)."""

VVC_SCALES = (128, 85, 64)
"""VVC's baseline downscale search: 1/2, 1/3, 1/4 (as in the issue that asked for it), then
the fill step refines the winner's scale and quality. Each scale costs several vvenc runs
at its medium preset."""


def default_cache() -> Path:
    """``$SEMLINK_EVAL_CACHE``, else ``~/.cache/semlink/eval``."""
    env = os.environ.get("SEMLINK_EVAL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "semlink" / "eval"


def scales_of(codec: ReferenceCodec) -> tuple[int, ...]:
    """The downscale factors (x 1/256) the baseline search tries for ``codec``."""
    return VVC_SCALES if codec is ReferenceCodec.VVC else SCALES


@cache
def codec_version(codec: ReferenceCodec) -> dict[str, Any]:
    """What fixes ``codec``'s output: its library builds and its settings."""
    spec: Any = CODECS[codec]
    if codec in VVC_IDS:
        from semlink.streams.reference.vvc import ffmpeg_version

        return {"imageio_ffmpeg": ffmpeg_version(), "config": asdict(spec.config)}
    import PIL
    from PIL import features

    version: dict[str, Any] = {"qualities": list(spec.qualities), "min_bpp": spec.min_bpp}
    if codec in (ReferenceCodec.AVIF, ReferenceCodec.HEVC):
        import pillow_heif

        version |= {
            "pillow_heif": pillow_heif.__version__,
            "libheif": pillow_heif.libheif_version(),
        }
    elif codec is ReferenceCodec.JPEGXL:
        import imagecodecs

        version |= {"imagecodecs": imagecodecs.__version__, "libjxl": imagecodecs.jpegxl_version()}
    else:
        library = "webp" if codec is ReferenceCodec.WEBP else "jpg"
        version |= {"pillow": PIL.__version__, library: features.version(library)}
    return version


def photo_hash(image: NDArray[np.uint8]) -> str:
    """SHA-256 of the picture's size and RGB bytes (not of its file)."""
    digest = hashlib.sha256(f"{image.shape}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def entry_key(codec: ReferenceCodec, photo: str, budget: int) -> dict[str, Any]:
    """Everything a baseline search result depends on."""
    return {
        "cache_version": CACHE_VERSION,
        "codec": codec.name.lower(),
        "codec_version": codec_version(codec),
        "search": {
            "scales": list(scales_of(codec)),
            "fill": FILL,
            "max_small_bpp": MAX_SMALL_BPP,
            "whole_files": True,
        },
        "photo": photo,
        "budget": budget,
    }


@dataclass(frozen=True)
class Baseline:
    """What a baseline search found: its file and how it got there."""

    size: int
    """Bytes of the file: what the baseline sends."""
    psnr: float
    """PSNR of the full-size reconstruction: what the search (and best_baseline) ranks by."""
    k: int
    """Downscale factor, x 1/256."""
    quality: int
    data: bytes
    """The codec's standard file."""


def entry_path(cache_dir: Path, key: dict[str, Any]) -> Path:
    """The ``.json`` of an entry (its ``.bin`` lies beside it)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return cache_dir / key["codec"] / f"{key['photo'][:16]}-{key['budget']}-{digest[:12]}.json"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def load(cache_dir: Path, key: dict[str, Any]) -> tuple[bool, Baseline | None]:
    """(found, result) for ``key``; a damaged or foreign entry counts as not found."""
    path = entry_path(cache_dir, key)
    try:
        stored = json.loads(path.read_text())
        if stored["key"] != key:
            return False, None
        result = stored["result"]
        if result is None:
            return True, None
        data = path.with_suffix(".bin").read_bytes()
        if len(data) != result["size"]:
            return False, None
        return True, Baseline(result["size"], result["psnr"], result["k"], result["quality"], data)
    except (OSError, ValueError, KeyError, TypeError):
        return False, None


def store(cache_dir: Path, key: dict[str, Any], result: Baseline | None) -> None:
    """Write an entry (the ``.bin`` first, then the ``.json`` that makes it complete)."""
    path = entry_path(cache_dir, key)
    stored: dict[str, Any] = {"key": key, "result": None}
    if result is not None:
        _write(path.with_suffix(".bin"), result.data)
        fields = asdict(result)
        del fields["data"]
        stored["result"] = fields
    _write(path, json.dumps(stored, indent=1, sort_keys=True).encode())


def baseline(
    image: NDArray[np.uint8],
    budget: int,
    codec: ReferenceCodec,
    cache_dir: Path | None,
    photo: str | None = None,
) -> tuple[Baseline | None, bool]:
    """(what ``codec``'s search finds for ``image`` within ``budget`` bytes as whole files,
    whether it came from ``cache_dir``); None when nothing fits. ``cache_dir`` None: no
    cache. ``photo``: :func:`photo_hash` of ``image``, when the caller has it."""
    key = entry_key(codec, photo or photo_hash(image), budget)
    if cache_dir is not None:
        found, result = load(cache_dir, key)
        if found:
            return result, True
    candidate = search(
        image, budget, codecs=(codec,), packed=False, scales=scales_of(codec), fill=FILL
    )
    result = None
    if candidate is not None:
        result = Baseline(
            candidate.size, candidate.psnr, candidate.k, candidate.quality, candidate.data
        )
    if cache_dir is not None:
        store(cache_dir, key, result)
    return result, False
