"""The diffusion decoder on tiny random models: properties of the algorithm, not pixels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from semlink.budget import Budget
from semlink.codec import Codecs
from semlink.models import (
    KeyMismatchError,
    TamperedWeightsError,
    load_state_dict,
    load_strict,
    verify_manifest,
    write_manifest,
)
from semlink.models.diffusion import DiffusionComponents
from semlink.restore.dyndiff import choose_steps
from semlink.restore.orag import ObjectPrompt, ORAGPipeline


@pytest.fixture(scope="module")
def pipeline() -> ORAGPipeline:
    return ORAGPipeline(DiffusionComponents.tiny(seed=0))


def _reference() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((64, 96, 3)) * 255).astype(np.uint8)


def _mask() -> np.ndarray:
    mask = np.zeros((64, 96), bool)
    mask[16:48, 16:56] = True
    return mask


def test_pipeline_runs_end_to_end(pipeline: ORAGPipeline) -> None:
    out = pipeline(
        _reference(),
        "a red house near the sea",
        [ObjectPrompt("a green parrot", _mask())],
        steps=3,
        seed=1,
    )
    assert out.image.shape == (64, 96, 3) and out.image.dtype == np.uint8
    again = pipeline(
        _reference(),
        "a red house near the sea",
        [ObjectPrompt("a green parrot", _mask())],
        steps=3,
        seed=1,
    )
    assert np.array_equal(out.image, again.image)  # the packet's seed fixes the result


def test_dual_path_adds_object_tokens_to_the_unet_not_to_controlnet(
    pipeline: ORAGPipeline,
) -> None:
    caption, parrot = "a red house near the sea", "a green parrot"
    text, _ = pipeline.encode_prompt(caption)
    object_text, tokens = pipeline.encode_prompt(parrot)
    dual = pipeline.semantic_tokens(caption, [parrot])
    assert dual.shape[1] == text.shape[1] + len(tokens) and len(tokens) > 0
    assert torch.equal(dual[:, : text.shape[1]], text)
    assert torch.equal(dual[:, text.shape[1] :], object_text[:, tokens])

    seen: dict[str, list[int]] = {"unet": [], "controlnet": []}
    hooks = [
        getattr(pipeline.c, name).register_forward_pre_hook(
            lambda _m, _a, kw, name=name: seen[name].append(kw["encoder_hidden_states"].shape[1]),
            with_kwargs=True,
        )
        for name in seen
    ]
    try:
        plain = pipeline(_reference(), caption, [], steps=2, seed=3)
        for dual_path in (True, False):
            seen["unet"].clear(), seen["controlnet"].clear()
            out = pipeline(
                _reference(),
                caption,
                [ObjectPrompt(parrot, None)],
                steps=2,
                seed=3,
                dual_path=dual_path,
                keep_trajectories=True,
            )
            global_pass = seen["unet"][:2]
            assert global_pass == [dual.shape[1] if dual_path else text.shape[1]] * 2
            assert set(seen["controlnet"]) == {text.shape[1]}
            if dual_path:
                with_tokens = out.trajectories[0][-1]
            else:
                without_tokens = out.trajectories[0][-1]
    finally:
        for hook in hooks:
            hook.remove()
    assert not torch.equal(with_tokens, without_tokens)  # the object tokens steer the pass
    # No objects: the dual path is the plain path.
    assert np.array_equal(
        plain.image, pipeline(_reference(), caption, [], steps=2, seed=3, dual_path=False).image
    )


def test_guidance_strictly_lowers_the_energy_it_minimizes(pipeline: ORAGPipeline) -> None:
    out = pipeline(
        _reference(),
        "a cat",
        [ObjectPrompt("a green parrot on the grass", _mask())],
        steps=4,
        seed=2,
        measure_energy=True,
    )
    steps = out.energies[0]
    assert len(steps) == 2  # guided while t > T' (half of 4 steps)
    for before, after in steps:
        assert after < before


def test_guidance_with_frozen_weights_is_the_same_update(pipeline: ORAGPipeline) -> None:
    """The pipeline freezes the UNet's weights (guidance needs the latent's gradient only);
    the update is bit for bit the one with trainable weights, and no weight gets a .grad."""
    unet = pipeline.c.unet
    assert not any(p.requires_grad for p in unet.parameters())
    text, tokens = pipeline.encode_prompt("a green parrot")
    mask = pipeline._latent_mask(_mask(), (8, 12))
    z = torch.randn((1, 4, 8, 12), generator=torch.Generator().manual_seed(4))
    t = torch.tensor(700)
    frozen, e_frozen = pipeline.guide(z, t, text, mask, tokens, eta=20.0)
    unet.requires_grad_(True)
    try:
        trainable, e_trainable = pipeline.guide(z, t, text, mask, tokens, eta=20.0)
    finally:
        unet.requires_grad_(False)
    assert e_frozen == e_trainable and torch.equal(frozen, trainable)
    assert not torch.equal(frozen, z)
    assert all(p.grad is None for p in unet.parameters())


def test_fusion_leaves_latents_outside_the_mask_equal_to_the_previous_stage(
    pipeline: ORAGPipeline,
) -> None:
    objects = [ObjectPrompt("a red boat", _mask()), ObjectPrompt("the sky", ~_mask())]
    out = pipeline(
        _reference(), "a boat on the sea", objects, steps=3, seed=3, keep_trajectories=True
    )
    assert len(out.trajectories) == 3
    for stage in (1, 2):
        outside = out.masks[stage - 1] == 0
        for previous, current in zip(
            out.trajectories[stage - 1], out.trajectories[stage], strict=True
        ):
            assert torch.equal(previous[..., outside], current[..., outside])
            assert not torch.equal(previous[..., ~outside], current[..., ~outside])


def test_cancellation_check_runs_between_steps(pipeline: ORAGPipeline) -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise TimeoutError("deadline")

    with pytest.raises(TimeoutError):
        pipeline(_reference(), "a dog", [ObjectPrompt("a dog", _mask())], steps=4, check=check)
    assert len(calls) == 3


def test_dyndiff_gives_more_steps_to_a_harder_input() -> None:
    flat = np.full((64, 64, 3), 120, np.uint8)
    texture = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    assert choose_steps(texture, 0.03) > choose_steps(flat, 0.03)
    assert choose_steps(flat, 0.01) > choose_steps(flat, 0.1)
    for image in (flat, texture):
        assert 10 <= choose_steps(image, 0.02) <= 50


def test_loaders_reject_tampered_files_and_renamed_keys(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    write_manifest(tmp_path)
    verify_manifest(tmp_path)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    load_strict(fresh, load_state_dict(tmp_path / "model.safetensors"))
    assert torch.equal(fresh[0].weight, model[0].weight)
    renamed = {
        k.replace("0.", "first."): v for k, v in load_state_dict(tmp_path / "model.pt").items()
    }
    with pytest.raises(KeyMismatchError, match=r"first\.weight"):
        load_strict(fresh, renamed)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(TamperedWeightsError, match=r"model\.safetensors"):
        verify_manifest(tmp_path)


def _object_mask(image: np.ndarray) -> np.ndarray:
    mask = np.zeros(image.shape[:2], bool)
    mask[40:200, 120:330] = True
    return mask


def test_sedic_packet_decodes_through_orag(tiny: Codecs, chelsea: np.ndarray) -> None:
    from semlink.codec import ObjectHint
    from semlink.streams import LayerKind

    result = tiny["sedic"].encode(
        chelsea,
        Budget(target_bpp=0.03),
        caption="a cat on the floor",
        objects=[ObjectHint("the cat's face", _object_mask(chelsea))],
    )
    kinds = [layer.kind for layer in result.packet.layers]
    assert kinds == [LayerKind.REFERENCE, LayerKind.CAPTION, LayerKind.OBJECT]
    assert result.packet.seed != 0 and result.bits_per_pixel <= 0.03
    decoded = tiny.decode(result.data, steps=3)
    assert decoded.steps == 3 and "diffusion" in decoded.stage_seconds
    assert decoded.image.shape == chelsea.shape
    assert decoded.objects[0][1] is not None and decoded.objects[0][1].shape == (38, 56)


def test_decoder_with_other_weights_refuses_the_packet(tiny: Codecs, chelsea: np.ndarray) -> None:
    from semlink.codec import Codec
    from semlink.models.registry import tiny_decoder_models
    from semlink.packet import FingerprintMismatchError

    data = tiny["sedic"].encode(chelsea, Budget(max_bytes=400)).data
    other = Codec(tiny["sedic"].models.holding(diffusion=tiny_decoder_models(1)))
    with pytest.raises(FingerprintMismatchError, match="holds model set"):
        other.decode(data, steps=2)


def test_sedic_without_weights_says_how_to_get_them(chelsea: np.ndarray) -> None:
    from semlink.codec import Codecs
    from semlink.config import settings
    from semlink.models.weights import WeightsError

    bare = settings().model_copy(update={"tiny_models": False, "sedic_weights": None})
    with pytest.raises(WeightsError, match="SEMLINK_SEDIC_WEIGHTS"):
        Codecs.from_settings(bare)["sedic"].encode(chelsea, Budget(max_bytes=400))


def test_cli_encode_extracts_and_decode_runs_orag_with_tiny_models(
    tmp_path: Path, chelsea: np.ndarray
) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from semlink.cli import app

    source, packet, out = tmp_path / "cat.png", tmp_path / "cat.slk", tmp_path / "out.png"
    Image.fromarray(chelsea).save(source)
    runner = CliRunner()
    result = runner.invoke(
        app, ["encode", str(source), "-o", str(packet), "--profile", "sedic", "--tiny"]
    )
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(packet)])
    assert "profile sedic" in info.output
    # No hints given: the encoder captioned, grounded and segmented the image itself.
    for kind in ("reference", "caption", "object"):
        assert kind in info.output, info.output
    result = runner.invoke(app, ["decode", str(packet), "-o", str(out), "--tiny", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out)).shape == chelsea.shape
    assert "SEMLINK_TINY_MODELS" not in os.environ  # --tiny passes models in, sets nothing


def test_weights_fetch_from_mirror_verify_and_load_real_layout(tmp_path: Path) -> None:
    """The real-weight path end to end: diffusers layout, manifest, verify, from_pretrained."""
    from typer.testing import CliRunner

    from semlink.cli import app

    tiny = DiffusionComponents.tiny(seed=4)
    mirror = tmp_path / "mirror"
    for name in ("unet", "controlnet", "vae", "text_encoder"):
        getattr(tiny, name).save_pretrained(mirror / name, safe_serialization=True)
    tiny.tokenizer.save_pretrained(mirror / "tokenizer")
    tiny.scheduler.save_pretrained(mirror / "scheduler")
    (mirror / "unet" / "stray.pkl").write_bytes(b"never copied")
    dest = tmp_path / "weights"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["weights", "fetch", "--profile", "sedic", "--mirror", str(mirror), "--dest", str(dest)],
    )
    assert result.exit_code == 0, result.output
    assert not (dest / "unet" / "stray.pkl").exists()
    assert runner.invoke(app, ["weights", "verify", str(dest)]).exit_code == 0
    loaded = DiffusionComponents.from_pretrained(dest)
    for key, value in tiny.unet.state_dict().items():
        assert torch.equal(loaded.unet.state_dict()[key], value)
    weights = dest / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    result = runner.invoke(app, ["weights", "verify", str(dest)])
    assert result.exit_code == 2 and "sha256" in result.output


def test_edge_encoder_needs_only_the_weight_manifest(tmp_path: Path, chelsea: np.ndarray) -> None:
    from semlink.codec import Codec
    from semlink.config import settings
    from semlink.profiles import SEDIC
    from semlink.resolver import Models

    (tmp_path / "manifest.json").write_text('{"files": {"unet/x.safetensors": "00"}}')
    edge = settings().model_copy(update={"tiny_models": False, "sedic_weights": tmp_path})
    # no weights on this machine (and a caption hint: no extraction models either)
    models = Models.from_settings(edge, SEDIC)
    result = Codec(models).encode(chelsea, Budget(max_bytes=400), caption="a cat")
    assert result.packet.model_fingerprint == Models.from_settings(edge, SEDIC).fingerprint
    (tmp_path / "manifest.json").write_text('{"files": {"unet/x.safetensors": "01"}}')
    other = Models.from_settings(edge, SEDIC).fingerprint
    assert other != result.packet.model_fingerprint  # other weights, other set


def test_decoder_service_runs_sedic_with_requested_steps_and_seed(
    tiny: Codecs, chelsea: np.ndarray
) -> None:
    from semlink.serving.client import channel, image_of, wait_until_serving
    from semlink.v1 import decoder_pb2, decoder_pb2_grpc
    from services.decoder import server as decoder_server
    from tests.servers import ServiceThread, config

    packet = tiny["sedic"].encode(chelsea, Budget(max_bytes=500), caption="a cat").data
    decoder = decoder_server.DecoderService(tiny)
    svc = ServiceThread("decoder", config(), decoder.add_servicers, decoder.load).start()
    try:
        ch = channel(svc.address)
        wait_until_serving(ch)
        stub = decoder_pb2_grpc.DecoderServiceStub(ch)

        def call(seed: int) -> np.ndarray:
            options = decoder_pb2.DecodeOptions(steps=2, seed=seed)
            response = stub.Decode(
                decoder_pb2.DecodeRequest(packet=packet, options=options), timeout=120
            )
            assert "diffusion" in response.stats.stage_seconds
            return image_of(response)

        first = call(7)
        assert np.array_equal(first, tiny.decode(packet, steps=2, seed=7).image)
        assert not np.array_equal(first, call(8))
    finally:
        svc.stop()


def test_sam_segmenter_masks_travel_in_the_mask_stream(tmp_path: Path, chelsea: np.ndarray) -> None:
    from semlink.extract.segmenter import SamSegmenter, tiny_sam
    from semlink.streams.masks import decode_mask, encode_mask
    from semlink.streams.objects import mask_grid as _mask_grid

    segmenter = SamSegmenter(tiny_sam())
    masks = segmenter.masks(chelsea, [(100, 40, 330, 200), (0, 0, 60, 60)])
    assert [m.shape for m in masks] == [chelsea.shape[:2]] * 2 and all(
        m.dtype == bool for m in masks
    )
    grid = _mask_grid(masks[0], chelsea.shape[1], chelsea.shape[0], 8)
    assert grid.shape == (38, 56)
    assert np.array_equal(decode_mask(encode_mask(grid)), grid)
    # Real-weight path: a plain state dict, strict keys, no pickles.
    torch.save(tiny_sam().state_dict(), tmp_path / "sam.pth")
    loaded = SamSegmenter.from_checkpoint(tmp_path / "sam.pth", variant="tiny")
    assert np.array_equal(loaded.masks(chelsea, [(100, 40, 330, 200)])[0], masks[0])
    renamed = {k.replace("image_encoder", "encoder"): v for k, v in tiny_sam().state_dict().items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(KeyMismatchError, match="missing"):
        SamSegmenter.from_checkpoint(tmp_path / "renamed.pth", variant="tiny")
