"""``semlink eval`` in minutes: --limit, --methods, baseline searches cached across runs, and
progress over (photo x rate x method) units. Tiny real photos at one rate, JPEG as the
baseline (its search runs in-process in a fraction of a second)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data
from PIL import Image
from typer.testing import CliRunner

from semlink.cli import app
from semlink.config import Settings
from semlink.eval import cache as eval_cache
from semlink.eval.harness import (
    BASELINES,
    METHODS,
    EvalConfig,
    UnknownMethodError,
    run_eval,
    select_methods,
    units,
)
from semlink.streams.reference import ReferenceCodec

runner = CliRunner()
TIMINGS = ["encode_s", "decode_s"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small real photos; sorted, a and b come first."""
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.chelsea()[::2, ::2][:96, :128]).save(folder / "a.png")
    Image.fromarray(skimage.data.astronaut()[::4, ::4][:96, :112]).save(folder / "b.png")
    Image.fromarray(skimage.data.coffee()[::4, ::4][:96, :128]).save(folder / "c.png")
    return folder


def test_select_methods() -> None:
    assert select_methods() == METHODS
    assert select_methods("vvc, LITE") == ("lite", "vvc")
    assert select_methods(["lite_r1.0", "lite_r0"]) == ("lite_r0", "lite_r1")
    lite = tuple(m for m in METHODS if m.startswith("lite"))
    assert select_methods(baselines="vvc") == (*lite, "vvc")  # what --baselines always meant
    assert select_methods("lite", baselines="jpeg,vvc") == ("lite", "jpeg", "vvc")
    with pytest.raises(UnknownMethodError, match="unknown method lite_r2, h266: choose from"):
        select_methods("lite,lite_r2,h266")
    with pytest.raises(UnknownMethodError, match="picked among the baselines"):
        select_methods("best_baseline")
    with pytest.raises(UnknownMethodError, match="unknown baseline lite"):
        select_methods(baselines="lite")


def test_an_unknown_method_fails_at_once_listing_the_valid_names(
    photos: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["eval", str(photos), "--methods", "lite,x265", "-o", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "unknown method x265" in result.output
    for name in METHODS:
        assert name in result.output
    assert "Traceback" not in result.output and not (tmp_path / "results.csv").exists()


def test_limit_and_methods_restrict_the_rows_and_the_progress(photos: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        photos,
        tmp_path / "report",
        rates=(0.4,),
        workers=2,
        methods=select_methods("jpeg,webp"),
        limit=2,
        cache=tmp_path / "cache",
    )
    events: list[tuple[str, int, bool | None]] = []
    rows = run_eval(config, Settings(), lambda *event: events.append(event))
    assert {r.image for r in rows} == {"a", "b"}
    assert {r.method for r in rows} == {"jpeg", "webp", "best_baseline"}
    # Units are photo x rate x method, each started and finished (from the worker processes).
    assert units(config, 2) == 4 == sum(advance for _, advance, _ in events)
    done = sorted(text for text, advance, _ in events if advance)
    assert done == [
        "a @ 0.4 bpp: jpeg",
        "a @ 0.4 bpp: webp",
        "b @ 0.4 bpp: jpeg",
        "b @ 0.4 bpp: webp",
    ]
    assert all(cached is False for _, advance, cached in events if advance)


def test_a_second_run_reads_the_cache_and_gives_the_same_rows(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "cache"
    args = ["eval", str(photos), "--limit", "2", "--methods", "lite,jpeg", "--bpp", "0.4"]
    args += ["--workers", "1", "--cache", str(store)]
    first = runner.invoke(app, [*args, "-o", str(tmp_path / "first")])
    assert first.exit_code == 0, first.output
    assert "0 read from the cache, 2 run" in first.output
    entries = sorted(store.rglob("*.json"))
    assert len(entries) == 2 and all(p.with_suffix(".bin").exists() for p in entries)

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached search ran again")

    monkeypatch.setattr(eval_cache, "search", no_search)
    second = runner.invoke(app, [*args, "-o", str(tmp_path / "second")])
    assert second.exit_code == 0, second.output
    assert "2 read from the cache, 0 run" in second.output
    assert sorted(store.rglob("*.json")) == entries
    fresh = pd.read_csv(tmp_path / "first/results.csv").drop(columns=TIMINGS)
    cached = pd.read_csv(tmp_path / "second/results.csv").drop(columns=TIMINGS)
    assert set(fresh["method"]) == {"lite", "jpeg", "best_baseline"}
    assert set(fresh["image"]) == {"a", "b"}
    pd.testing.assert_frame_equal(fresh, cached)


def test_no_cache_searches_afresh_and_keeps_nothing(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMLINK_EVAL_CACHE", str(tmp_path / "default"))
    args = ["eval", str(photos), "--limit", "1", "--methods", "jpeg", "--bpp", "0.4"]
    result = runner.invoke(app, [*args, "--workers", "1", "-o", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "default").rglob("*.json"))) == 1  # the default cache
    result = runner.invoke(app, [*args, "--no-cache", "-o", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "read from the cache" not in result.output
    assert len(list((tmp_path / "default").rglob("*.json"))) == 1
    a, b = (pd.read_csv(tmp_path / d / "results.csv") for d in "ab")
    pd.testing.assert_frame_equal(a, b)


def test_the_key_holds_the_codec_version_the_photo_and_the_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    image = skimage.data.chelsea()[:64, :64]
    photo = eval_cache.photo_hash(image)
    key = eval_cache.entry_key(ReferenceCodec.VVC, photo, 500)
    assert (
        key["codec_version"]["imageio_ffmpeg"]
        == eval_cache.codec_version(ReferenceCodec.VVC)["imageio_ffmpeg"]
    )
    assert key["codec_version"]["config"]["preset"] == "medium"
    paths = {eval_cache.entry_path(tmp_path, key)}
    paths.add(eval_cache.entry_path(tmp_path, eval_cache.entry_key(ReferenceCodec.VVC, photo, 501)))
    other = eval_cache.photo_hash(np.ascontiguousarray(image[:, ::-1]))
    paths.add(eval_cache.entry_path(tmp_path, eval_cache.entry_key(ReferenceCodec.VVC, other, 500)))
    eval_cache.codec_version.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr("semlink.streams.reference.vvc.ffmpeg_version", lambda: "9.9.9")
        newer = eval_cache.entry_key(ReferenceCodec.VVC, photo, 500)
        eval_cache.codec_version.cache_clear()
    assert newer["codec_version"]["imageio_ffmpeg"] == "9.9.9"
    paths.add(eval_cache.entry_path(tmp_path, newer))
    assert len(paths) == 4
    libraries = {"imageio_ffmpeg", "pillow", "pillow_heif", "libheif", "imagecodecs", "libjxl"}
    for name in BASELINES:  # every codec names the library builds it ran with
        version = eval_cache.codec_version(ReferenceCodec[name.upper()])
        assert libraries & set(version), (name, version)
        assert all(v not in (None, "", "missing") for v in version.values()), (name, version)


def test_an_entry_for_another_key_is_not_used(tmp_path: Path) -> None:
    image = skimage.data.chelsea()[::4, ::4]
    budget = int(0.5 * image.shape[0] * image.shape[1] / 8)
    found, cached = eval_cache.baseline(image, budget, ReferenceCodec.JPEG, tmp_path)
    assert found is not None and not cached
    again, cached = eval_cache.baseline(image, budget, ReferenceCodec.JPEG, tmp_path)
    assert cached and again == found
    (entry,) = tmp_path.rglob("*.json")
    stored = json.loads(entry.read_text())
    stored["key"]["codec_version"]["pillow"] = "0.0"  # as if written by another build
    entry.write_text(json.dumps(stored))
    third, cached = eval_cache.baseline(image, budget, ReferenceCodec.JPEG, tmp_path)
    assert not cached and third == found
