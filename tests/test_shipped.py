"""The project-trained weights shipped in the package: manifest, loading, fallback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from semlink.codec import Codec
from semlink.config import Settings, settings
from semlink.imaging import resize
from semlink.models import taef2, weights
from semlink.profiles import LITE
from semlink.resolver import Models
from semlink.restore import default_realism, pixel

DATA = resources.files("semlink").joinpath("data")
GOLDEN_PACKET = Path(__file__).parent / "expected" / "lite-chelsea-600.slk"


def lite_models(**changes: object) -> Models:
    """lite's models from the settings with ``changes`` (fresh: nothing loaded yet)."""
    return Models.from_settings(settings().model_copy(update=changes), LITE)


def test_shipped_restorer_matches_its_manifest() -> None:
    manifest = json.loads(DATA.joinpath("pixel_restorer.json").read_text())
    raw = DATA.joinpath("pixel_restorer.safetensors").read_bytes()
    assert manifest["files"]["pixel_restorer.safetensors"] == hashlib.sha256(raw).hexdigest()
    assert manifest["steps"] > 0 and manifest["wall_seconds"] > 0
    assert manifest["hardware"]["cpu_count"] and "torch" in manifest["hardware"]
    assert "BSDS500" in manifest["recipe"]["data"] and "Kodak" not in manifest["recipe"]["data"]
    assert 0 <= manifest["recipe"]["realism"] <= 1
    assert default_realism() == manifest["recipe"]["realism"]
    results = manifest["results"]["bsds500_val_20_at_0.03bpp"]
    assert {"lanczos", "realism 0.0", "realism 1.0"} <= set(results)
    shipped = sum(len(DATA.joinpath(n).read_bytes()) for n in manifest["files"])
    assert shipped <= 5 * 10**6  # the bound: <= 5 MB fp16


def test_the_shipped_realism_end_is_the_perceptual_end() -> None:
    """On the held-out photos its manifest records, realism 1 scores better than realism 0
    and than VVC on both perceptual metrics (LPIPS-AlexNet and DISTS, neither trained on),
    and the default realism follows the stated rule."""
    from semlink.train.perceptual_restorer import choose_realism

    manifest = json.loads(DATA.joinpath("pixel_restorer.json").read_text())
    (results,) = manifest["results"].values()
    for metric in ("lpips", "dists"):
        assert results["realism 1.0"][metric] < results["realism 0.0"][metric], metric
        assert results["realism 1.0"][metric] < results["vvc"][metric], metric
    assert manifest["recipe"]["realism"] == choose_realism(results)


def test_shipped_fidelity_restorer_matches_its_manifest_and_beats_lanczos() -> None:
    """The realism-0 network: checked like the realism network, both within the 5 MB bound
    together, and on its held-out photos above the Lanczos picture in PSNR and MS-SSIM."""
    manifest = json.loads(DATA.joinpath(f"{pixel.FIDELITY}.json").read_text())
    raw = DATA.joinpath(f"{pixel.FIDELITY}.safetensors").read_bytes()
    assert manifest["files"][f"{pixel.FIDELITY}.safetensors"] == hashlib.sha256(raw).hexdigest()
    assert manifest["recipe"]["fidelity_only"] and manifest["recipe"]["realism"] == 0
    assert "BSDS500" in manifest["recipe"]["data"] and "Kodak" not in manifest["recipe"]["data"]
    results = manifest["results"]["bsds500_val_20_at_0.03bpp"]
    assert results["realism 0.0"]["psnr"] > results["lanczos"]["psnr"]
    assert results["realism 0.0"]["ms_ssim"] > results["lanczos"]["ms_ssim"]
    both = [pixel.SHIPPED, pixel.FIDELITY]
    assert sum(len(DATA.joinpath(f"{n}.safetensors").read_bytes()) for n in both) <= 5 * 10**6
    restorer = lite_models().restorer
    assert restorer is not None and restorer.fidelity is not None


def test_a_tampered_packaged_fidelity_restorer_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "semlink" / "data"
    data.mkdir(parents=True)
    for name in (pixel.SHIPPED, pixel.FIDELITY):
        (data / f"{name}.json").write_text(DATA.joinpath(f"{name}.json").read_text())
        (data / f"{name}.safetensors").write_bytes(
            DATA.joinpath(f"{name}.safetensors").read_bytes()
        )
    (data / f"{pixel.FIDELITY}.safetensors").write_bytes(b"tampered")
    with pytest.raises(weights.WeightsError, match="fidelity_restorer"):
        pixel.load_shipped(data)


def test_packaged_taef2_matches_its_manifest_and_names_its_source() -> None:
    """TAEF2 ships in the package (fp16, both halves), hashed and with its MIT notice."""
    import torch

    manifest = json.loads(DATA.joinpath("taef2.json").read_text())
    raw = DATA.joinpath("taef2.safetensors").read_bytes()
    assert manifest["files"]["taef2.safetensors"] == hashlib.sha256(raw).hexdigest()
    assert manifest["source"]["commit"].startswith("5cccb12d") and "MIT" in manifest["license"]
    notice = DATA.joinpath("NOTICE").read_text()
    assert "madebyollin/taesd" in notice and "MIT License" in notice
    model = taef2.packaged_taef2()
    assert model is not None
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_a_tampered_packaged_taef2_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "semlink" / "data"
    data.mkdir(parents=True)
    (data / "taef2.json").write_text(DATA.joinpath("taef2.json").read_text())
    (data / "taef2.safetensors").write_bytes(b"tampered")
    monkeypatch.setattr(taef2.resources, "files", lambda _: tmp_path / "semlink")
    with pytest.raises(weights.WeightsError, match="manifest"):
        taef2.packaged_taef2()


def test_with_an_empty_weights_dir_lite_decodes_with_the_restorer(tmp_path: Path) -> None:
    """A fresh clone without ../shared: SEMLINK_WEIGHTS_DIR is an empty directory, and the
    restorer still runs (its weights are the package's), not the Lanczos picture."""
    empty = Settings(weights_dir=tmp_path)
    assert not any(tmp_path.iterdir())
    models = Models(LITE, empty)
    assert models.taef2 is None  # nothing in the weights directory
    assert models.restorer is not None
    data = GOLDEN_PACKET.read_bytes()
    restored = Codec(models).decode(data).image
    lanczos = Models(LITE, empty.model_copy(update={"lite_restorer": False}))
    plain = Codec(lanczos).decode(data).image
    assert restored.shape == plain.shape
    assert not np.array_equal(restored, plain)


def test_shipped_restorer_loads_and_restores(chelsea: np.ndarray) -> None:
    restorer = lite_models().restorer
    assert restorer is not None
    small = np.ascontiguousarray(chelsea[::4, ::4])
    network, realism, fidelity = restorer
    out = pixel.restore(small, 451, 300, network, realism, None, fidelity)
    assert out.shape == (300, 451, 3) and out.dtype == np.uint8
    assert not np.array_equal(out, resize(small, 451, 300))


def test_without_the_packaged_restorer_lite_falls_back_to_lanczos_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    weights._said.clear()
    monkeypatch.setattr(pixel, "SHIPPED", "not-in-the-package")
    with caplog.at_level(logging.WARNING, logger="semlink"):
        assert lite_models().restorer is None
        assert lite_models().restorer is None  # looked up twice, said once
    said = [r.message for r in caplog.records if "restorer" in r.message]
    assert len(said) == 1 and "Lanczos" in said[0]


def test_a_tampered_packaged_restorer_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "semlink" / "data"
    data.mkdir(parents=True)
    (data / "pixel_restorer.json").write_text(DATA.joinpath("pixel_restorer.json").read_text())
    (data / "pixel_restorer.safetensors").write_bytes(b"tampered")
    with pytest.raises(weights.WeightsError, match="manifest"):
        pixel.load_shipped(data)


def test_the_restorer_can_be_switched_off() -> None:
    assert lite_models(lite_restorer=False).restorer is None


def test_shipped_codecs_compete_in_lite_and_enter_its_fingerprint(
    tmp_path: Path, chelsea: np.ndarray
) -> None:
    """A shipped codec directory (as `semlink train ref-codec --ship` writes it) is loaded
    through its manifest, changes lite's fingerprint, and its packets round-trip."""
    import torch
    from safetensors.torch import save_file

    from semlink.budget import Budget
    from semlink.models import codecs
    from semlink.models.weights import WeightsError, write_manifest

    before = lite_models().fingerprint
    torch.manual_seed(0)
    config = codecs.LearnedCodecConfig(
        architecture="bmshj2018-hyperprior", quality=1, N=8, M=12, file="ref_codec.safetensors"
    )
    model = codecs.build(config)
    model.update(force=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / config.file)
    (tmp_path / codecs.CODECS_FILE).write_text(json.dumps([config.model_dump()]))
    write_manifest(tmp_path)
    shipped = settings().model_copy(update={"lite_restorer": False})
    models = Models(LITE, shipped, shipped_dirs=(tmp_path,))
    assert [c.name for c in models.reference_codecs] == ["bmshj2018-hyperprior-q1"]
    assert models.fingerprint != before
    image = np.ascontiguousarray(chelsea[::2, ::2])
    codec = Codec(models)
    result = codec.encode(image, Budget(target_bpp=0.05))
    assert result.packet.model_fingerprint == models.fingerprint
    assert codec.decode(result.data).image.shape == image.shape
    (tmp_path / config.file).write_bytes(b"tampered")
    with pytest.raises(WeightsError):
        _ = Models(LITE, shipped, shipped_dirs=(tmp_path,)).reference_codecs


def test_the_restorer_reads_the_segmentation_map(lite: Codec, chelsea: np.ndarray) -> None:
    """A packet's segmentation layer reaches the shipped restorer (trained with BSDS500's
    human segmentations): dropping the layer changes the picture, not its size."""
    from semlink.budget import Budget
    from semlink.packet import serialize
    from semlink.streams import LayerKind

    restorer = lite.models.restorer
    assert restorer is not None and restorer.network.edge_channels == 1
    image = np.ascontiguousarray(chelsea[::2, ::2])
    labels = np.zeros((image.shape[0] // 8, image.shape[1] // 8), np.int64)
    labels[:, labels.shape[1] // 2 :] = 1
    labels[labels.shape[0] // 2 :, :] += 2
    packet = lite.encode(image, Budget(target_bpp=0.05), segmap=labels).packet
    with_map = lite.decode(packet)
    assert "segmap" in with_map.layers_used
    layers = tuple(layer for layer in packet.layers if layer.kind != LayerKind.SEGMAP)
    without = lite.decode(serialize(dataclasses.replace(packet, layers=layers)))
    assert with_map.image.shape == without.image.shape == image.shape
    assert not np.array_equal(with_map.image, without.image)
