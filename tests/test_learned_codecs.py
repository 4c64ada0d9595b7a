"""Learned reference codecs (compressai) on tiny random models, and their ONNX edge path."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from semlink.codec import Codecs
from semlink.models.codecs import LearnedCodec, load_codecs, tiny_codecs
from semlink.models.weights import KeyMismatchError, WeightsError, write_manifest
from semlink.packet import EntropyMismatchError, PacketFormatError
from semlink.streams.reference import (
    LEARNED,
    ReferenceCodec,
    decode_reference,
    search_learned,
    small_size,
)


@pytest.fixture(scope="module")
def codecs() -> list[LearnedCodec]:
    return tiny_codecs(0)


@pytest.fixture(scope="module")
def small(chelsea: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chelsea[::3, ::3])  # 151 x 100: not a multiple of 64


def test_both_architectures_round_trip_within_budget(
    codecs: list[LearnedCodec], small: np.ndarray
) -> None:
    height, width = small.shape[:2]
    for codec_id in (ReferenceCodec.HYPERPRIOR, ReferenceCodec.CHENG2020_ATTN):
        chosen = [c for c in codecs if c.config.architecture == LEARNED[codec_id]]
        best = search_learned(small, 400, chosen)
        assert best is not None and best.codec == codec_id and best.size <= 400
        print(
            f"{LEARNED[codec_id]} (tiny): {best.size} B at scale {best.k}/256, {best.psnr:.2f} dB"
        )
        decoded = decode_reference(int(codec_id), best.data, width, height, codecs)
        assert decoded.shape[:2] == small_size(width, height, best.k)[::-1]
        # The encoder's reconstruction is exactly what the decoder rebuilds.
        from semlink.imaging import resize

        assert np.array_equal(resize(decoded, width, height), best.reconstruction)


_CHILD = """
import hashlib, sys, numpy as np, skimage.data
from semlink.models.codecs import tiny_codecs
from semlink.streams.reference import decode_reference, pack_learned
image = np.ascontiguousarray(skimage.data.chelsea()[::3, ::3])
h, w = image.shape[:2]
for codec_id, codec in zip((5, 6), tiny_codecs(0)):
    if sys.argv[1] == "encode":
        print(pack_learned(128, 0, *codec.compress(image)).hex())
    else:
        payload = bytes.fromhex(sys.argv[2 + codec_id - 5])
        small = decode_reference(codec_id, payload, w * 2, h * 2, tiny_codecs(0))
        print(hashlib.sha256(small.tobytes()).hexdigest())
"""


def test_bitstreams_are_bit_exact_across_processes(
    codecs: list[LearnedCodec], small: np.ndarray
) -> None:
    def child(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True
        )
        return done.stdout.split()

    from semlink.streams.reference import pack_learned

    here = [pack_learned(128, 0, *codec.compress(small)).hex() for codec in codecs]
    there = child("encode")
    assert there == here
    hashes = child("decode", *there)
    h, w = small.shape[:2]
    for codec_id, payload, digest in zip((5, 6), there, hashes, strict=True):
        image = decode_reference(codec_id, bytes.fromhex(payload), 2 * w, 2 * h, codecs)
        assert hashlib.sha256(image.tobytes()).hexdigest() == digest


def test_hostile_learned_payloads_are_refused(codecs: list[LearnedCodec]) -> None:
    with pytest.raises(PacketFormatError, match="shorter"):
        decode_reference(int(ReferenceCodec.HYPERPRIOR), b"\x80", 64, 64, codecs)
    check = bytes(4)  # the entropy-parameter check follows scale and model index
    with pytest.raises(PacketFormatError, match="model #7"):
        decode_reference(
            int(ReferenceCodec.HYPERPRIOR), b"\x80\x07" + check + b"\0", 64, 64, codecs
        )
    with pytest.raises(PacketFormatError, match="holds 0"):
        decode_reference(int(ReferenceCodec.CHENG2020_ATTN), b"\x80\0" + check + b"\0", 64, 64, ())
    with pytest.raises(PacketFormatError, match="cut short"):
        decode_reference(
            int(ReferenceCodec.HYPERPRIOR), b"\x80\0" + check + b"\x7f\x01", 64, 64, codecs
        )
    # Random strings decode to some picture of the right size or a clear error, never a crash
    # (random checks, and checks of the tables and indexes a junk string would decode with).
    rng = np.random.default_rng(0)
    refused = 0
    for i in range(20):
        junk = bytes([128, 0]) + rng.bytes(4) + bytes([3]) + rng.bytes(40)
        try:
            image = decode_reference(int(ReferenceCodec.HYPERPRIOR), junk, 64, 64, codecs)
        except EntropyMismatchError as exc:
            refused += 1
            if i % 2:
                continue
            fixed = junk[:2] + exc.decoder_check.to_bytes(4, "big") + junk[6:]
            try:
                image = decode_reference(int(ReferenceCodec.HYPERPRIOR), fixed, 64, 64, codecs)
            except PacketFormatError:
                continue
        except PacketFormatError:
            continue
        assert image.shape == (32, 32, 3)
    assert refused > 0


def test_loader_verifies_manifest_and_keys(tmp_path: Path, small: np.ndarray) -> None:
    source = tiny_codecs(0)
    listing = []
    for codec in source:
        name = f"{codec.name}.pth"
        torch.save(codec.model.state_dict(), tmp_path / name)
        listing.append({**codec.config.model_dump(), "file": name})
    (tmp_path / "codecs.json").write_text(json.dumps(listing))
    write_manifest(tmp_path)
    loaded = load_codecs(tmp_path)
    for a, b in zip(source, loaded, strict=True):
        assert a.compress(small) == b.compress(small)

    data = bytearray((tmp_path / listing[0]["file"]).read_bytes())
    data[-20] ^= 1
    (tmp_path / listing[0]["file"]).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_codecs(tmp_path)

    renamed = {k.replace("g_a", "analysis"): v for k, v in source[0].model.state_dict().items()}
    torch.save(renamed, tmp_path / listing[0]["file"])
    write_manifest(tmp_path)
    with pytest.raises(KeyMismatchError, match="analysis"):
        load_codecs(tmp_path)


def test_onnx_analysis_matches_pytorch_and_packets_are_identical(
    tmp_path: Path, small: np.ndarray
) -> None:
    from semlink.models.learned_codec import Analysis, _to_input
    from semlink.models.onnx_edge import export_analysis, onnx_runner, use_onnx

    for torch_codec, onnx_codec in zip(tiny_codecs(0), tiny_codecs(0), strict=True):
        path = export_analysis(torch_codec, tmp_path / f"{torch_codec.name}.onnx")
        x = _to_input(small)
        y, z = onnx_runner(path, ["CPUExecutionProvider"])(x)
        with torch.no_grad():
            y_ref, z_ref = Analysis(torch_codec.model)(torch.from_numpy(x))
        assert y.shape == tuple(y_ref.shape) and z.shape == tuple(z_ref.shape)
        np.testing.assert_allclose(y, y_ref.numpy(), atol=1e-4)
        print(
            f"{torch_codec.name}: ONNX vs PyTorch max |dy| {np.abs(y - y_ref.numpy()).max():.2e}, "
            f"max |dz| {np.abs(z - z_ref.numpy()).max():.2e}"
        )
        np.testing.assert_allclose(z, z_ref.numpy(), atol=1e-4)
        use_onnx(onnx_codec, path, ["CPUExecutionProvider"])
        for image in (small, np.ascontiguousarray(small[:70, :130])):
            assert onnx_codec.compress(image) == torch_codec.compress(image)


def test_sedic_packets_with_onnx_edge_are_identical(
    tiny: Codecs, tmp_path: Path, small: np.ndarray
) -> None:
    """The encoder with SEMLINK_EDGE_ONNX writes the same packet as the PyTorch encoder."""
    from typer.testing import CliRunner

    from semlink.budget import Budget
    from semlink.cli import app
    from semlink.codec import Codec
    from semlink.profiles import SEDIC
    from semlink.resolver import Models

    result = CliRunner().invoke(app, ["weights", "export-onnx", str(tmp_path), "--tiny"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == [
        "bmshj2018-hyperprior-q1.onnx",
        "cheng2020-attn-q1.onnx",
    ]
    plain = tiny["sedic"].encode(small, Budget(max_bytes=300)).data
    edge = Models(SEDIC, tiny.settings.model_copy(update={"edge_onnx": tmp_path}))
    assert all(c.analysis_runner is not None for c in edge.reference_codecs)
    assert Codec(edge).encode(small, Budget(max_bytes=300)).data == plain


def test_every_backend_has_a_config_a_loader_and_a_tiny_build(tmp_path: Path) -> None:
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from semlink.cli import app
    from semlink.models.catalog import load
    from semlink.resolver import catalogue

    backends = catalogue()
    assert {"sam", "grounding-dino", "transformers-captioner", "taef2"} <= set(backends)
    for backend in backends.values():
        if backend.tiny is not None and backend.name != "sd15-controlnet-tile":
            assert backend.tiny() is not None, backend.name
        with pytest.raises(ValidationError):
            backend.config.model_validate({"unexpected": 1})
    with pytest.raises(WeightsError):
        load("cheng2020-attn", directory=tmp_path)  # no codecs.json: says what to write
    with pytest.raises(KeyError, match="known"):
        load("dall-e")
    listing = CliRunner().invoke(app, ["weights", "list"])
    assert listing.exit_code == 0
    for name in backends:
        assert name in listing.output


def _tiny_latent_codec(seed: int = 0) -> LearnedCodec:
    """A TAEF2-latent codec at toy width over a randomly initialised TAEF2."""
    from semlink.models.codecs import LearnedCodecConfig, _ready, build
    from semlink.models.taef2 import TAEF2
    from semlink.models.weights import state_digest

    torch.manual_seed(seed)
    config = LearnedCodecConfig(architecture="taef2-latent-hyperprior", quality=1, N=8, M=8)
    model, taef2 = build(config), TAEF2().eval()
    return _ready(config, model, state_digest(model, taef2), taef2)


def test_taef2_latent_path_round_trips_and_its_id_travels(small: np.ndarray) -> None:
    from semlink.imaging import resize
    from semlink.streams.reference import encode_reference

    codec = _tiny_latent_codec()
    height, width = small.shape[:2]
    best = search_learned(small, 300, [codec])
    assert best is not None and best.codec == ReferenceCodec.TAEF2_LATENT and best.size <= 300
    decoded = decode_reference(int(best.codec), best.data, width, height, [codec])
    assert np.array_equal(resize(decoded, width, height), best.reconstruction)
    # Per-image choice: rate control returns whichever path predicts the higher PSNR,
    # and the layer's codec id says which one it was.
    from semlink.streams.reference.ratecontrol import fit_vvc

    standard = fit_vvc(small, 300)
    codec_id, _, recon = encode_reference(small, 300, [codec])
    assert standard is not None
    winner = max((standard, best), key=lambda c: c.psnr)
    assert codec_id == int(winner.codec) and np.array_equal(recon, winner.reconstruction)


def test_per_image_choice_picks_the_best_predicted_path(
    codecs: list[LearnedCodec], chelsea: np.ndarray
) -> None:
    """Across images and budgets, the chosen path is never worse than any candidate's."""
    from semlink.quality.metrics import psnr
    from semlink.streams.reference import encode_reference
    from semlink.streams.reference.ratecontrol import fit_vvc

    chosen = set()
    for image in (np.ascontiguousarray(chelsea[::3, ::3]), np.full((96, 128, 3), 90, np.uint8)):
        for budget in (120, 400):
            codec_id, _, recon = encode_reference(image, budget, codecs)
            candidates = [fit_vvc(image, budget), search_learned(image, budget, codecs)]
            best = max(c.psnr for c in candidates if c is not None)
            assert psnr(image, recon) >= best - 1e-6
            chosen.add(codec_id)
    assert chosen  # which path wins depends on the image and the budget


def test_a_latent_packet_without_taef2_is_a_failed_precondition(small: np.ndarray) -> None:
    codec = _tiny_latent_codec()
    height, width = small.shape[:2]
    best = search_learned(small, 300, [codec])
    assert best is not None
    with pytest.raises(WeightsError, match="TAEF2"):
        decode_reference(int(ReferenceCodec.TAEF2_LATENT), best.data, width, height, [])


def test_latent_codec_refuses_other_taef2_weights(tmp_path: Path) -> None:
    from semlink.models.codecs import LearnedCodecConfig, _taef2_for

    for part in ("encoder", "decoder"):
        (tmp_path / f"taef2_{part}.pth").write_bytes(b"other weights")
    config = LearnedCodecConfig(
        architecture="taef2-latent-hyperprior", quality=1, file="x", taef2_sha256="a:b"
    )
    with pytest.raises(WeightsError, match="other TAEF2 weights"):
        _taef2_for(config, tmp_path)
