"""The sedic profile at its real size (issue 15): real architectures at their published sizes,
random values, the publishers' on-disk layouts, through semlink's own loaders.

The weights are written once by :mod:`semlink.models.synth` into ``$SEMLINK_SYNTH_DIR``
(default ``~/.cache/semlink/synth``, about 7.4 GB; rewritten only when the recipe changes,
~2 minutes on 2 cores). Then ``semlink encode --profile sedic`` and ``semlink decode`` run
end to end on a 256x256 BSDS500 photo on the CPU (DynDiff capped at 2 steps: a real-size
step costs seconds here), and the checks are about shapes, layers, bytes, where ORAG's
guidance may change the latent, and the loaders' refusals: never about pixels, which random
weights make meaningless. About 5 minutes on 2 idle cores (17 on 2 cores shared with a
training job), most of it SAM, Grounding DINO and the diffusion steps; the first run adds the
weights (~2 minutes).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semlink.models.synth import SynthPaths, cached, default_cache
from semlink.models.weights import (
    MANIFEST,
    KeyMismatchError,
    TamperedWeightsError,
    WeightsError,
    sha256_of,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BSDS = REPO.parent / "shared" / "data" / "train" / "bsds500" / "images" / "test" / "100007.jpg"
SEMLINK = Path(sys.executable).with_name("semlink")

PUBLISHED_PARAMETERS = {
    "sedic/unet": 859_520_964,  # SD 1.5 UNet2DConditionModel
    "sedic/controlnet": 361_279_120,  # control_v11f1e_sd15_tile
    "sedic/vae": 83_653_863,  # SD 1.5 AutoencoderKL
    "sedic/text_encoder": 123_060_480,  # CLIP ViT-L/14 text tower
    "grounding-dino-tiny": 172_250_626,
    "blip-image-captioning-base": 223_971_644,  # text decoder's output tied to its embedding
}


@pytest.fixture(scope="module")
def synth() -> SynthPaths:
    return cached(default_cache())


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256x256 centre crop of a BSDS500 test photo (scikit-image's astronaut without it)."""
    if BSDS.exists():
        image = Image.open(BSDS).convert("RGB")
    else:
        import skimage.data

        image = Image.fromarray(skimage.data.astronaut()).resize((384, 384))
    left, top = (image.width - 256) // 2, (image.height - 256) // 2
    path = tmp_path_factory.mktemp("photo") / "photo256.png"
    image.crop((left, top, left + 256, top + 256)).save(path)
    return path


def environment(synth: SynthPaths) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMLINK_")}
    env.update(synth.environment())
    env["SEMLINK_SEDIC_MAX_STEPS"] = "2"
    return env


def header_parameters(directory: Path) -> int:
    """Parameters stored in a directory's safetensors files, read from their headers."""
    from safetensors import safe_open

    total = 0
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    return total


@pytest.fixture
def scratch(synth: SynthPaths) -> Iterator[Path]:
    """A directory beside the weights (same filesystem: hard links work), removed after."""
    path = Path(tempfile.mkdtemp(prefix="test-", dir=synth.root.parent))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def linked_copy(source: Path, dest: Path) -> Path:
    """``source`` as hard links (no copy of gigabytes); replace a file before changing it."""
    shutil.copytree(source, dest, copy_function=os.link)
    return dest


def rewrite(path: Path, text: str) -> None:
    path.unlink()  # a hard link: never change the cached original
    path.write_text(text)


def test_real_size_weights_in_publishers_layouts(synth: SynthPaths) -> None:
    sedic = synth.sedic
    for name in ("unet", "controlnet", "vae"):
        assert (sedic / name / "config.json").is_file()
        assert (sedic / name / "diffusion_pytorch_model.safetensors").is_file()
    assert (sedic / "text_encoder" / "model.safetensors").is_file()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        assert (sedic / "tokenizer" / name).is_file()
    scheduler = json.loads((sedic / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "PNDMScheduler" and scheduler["beta_end"] == 0.012
    vae = json.loads((sedic / "vae" / "config.json").read_text())
    assert vae["scaling_factor"] == 0.18215 and vae["block_out_channels"] == [128, 256, 512, 512]
    for directory, expected in PUBLISHED_PARAMETERS.items():
        assert header_parameters(synth.root / directory) == expected, directory
    for directory in (synth.grounding, synth.blip):
        for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
            assert (directory / name).is_file(), directory / name
    vocab = (synth.grounding / "vocab.txt").read_text().splitlines()
    assert len(vocab) == 30522 and vocab[101:103] == ["[CLS]", "[SEP]"]
    assert vocab[1012] == "." and vocab[1029] == "?"  # Grounding DINO's hard-coded ids
    sam = torch.load(synth.sam_checkpoint, map_location="cpu", weights_only=True)
    assert sam["image_encoder.pos_embed"].shape == (1, 64, 64, 768)  # ViT-B at 1024 / 16
    assert len([k for k in sam if k.endswith(".attn.qkv.weight")]) == 12
    listing = json.loads((synth.codecs / "codecs.json").read_text())
    assert {e["architecture"] for e in listing} == {"bmshj2018-hyperprior", "cheng2020-attn"}
    for directory in (
        sedic,
        synth.sam_checkpoint.parent,
        synth.grounding,
        synth.blip,
        synth.codecs,
    ):
        table = json.loads((directory / MANIFEST).read_text())["files"]
        on_disk = {
            str(p.relative_to(directory))
            for p in directory.rglob("*")
            if p.is_file() and p.name != MANIFEST
        }
        assert set(table) == on_disk, directory


def test_real_size_cli_encode_decode_256(synth: SynthPaths, photo: Path, tmp_path: Path) -> None:
    """`semlink encode --profile sedic` extracts (BLIP -> Grounding DINO -> SAM), codes every
    stream within the budget; `semlink decode` runs ControlNet + ORAG + fusion + DynDiff."""
    from semlink.packet import parse
    from semlink.streams import LayerKind

    env = environment(synth)
    packet = tmp_path / "photo.slk"
    run = subprocess.run(
        [str(SEMLINK), "encode", str(photo), "-o", str(packet), "--profile", "sedic"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    data = packet.read_bytes()
    budget = int(0.03 * 256 * 256 / 8)
    assert len(data) <= budget
    parsed = parse(data)
    assert (parsed.width, parsed.height) == (256, 256)
    kinds = [LayerKind(layer.kind) for layer in parsed.layers]
    assert kinds[0] == LayerKind.REFERENCE
    assert LayerKind.CAPTION in kinds and LayerKind.OBJECT in kinds, kinds
    layer_bytes = parsed.layer_bytes()
    assert all(n > len(layer.payload) for n, layer in zip(layer_bytes, parsed.layers, strict=True))
    assert sum(layer_bytes) < len(data)  # the rest is the header
    printed = re.findall(r"(\w+) (\d+) B", run.stdout)
    assert [(k, int(n)) for k, n in printed] == [
        (kind.name.lower(), n) for kind, n in zip(kinds, layer_bytes, strict=True)
    ]

    info = subprocess.run(
        [str(SEMLINK), "info", str(packet)], env=env, capture_output=True, text=True, check=True
    )
    assert f"{len(data)} bytes, 256x256, profile sedic" in info.stdout

    out = tmp_path / "decoded.png"
    run = subprocess.run(
        [str(SEMLINK), "decode", str(packet), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "layers used: reference, caption, object" in run.stdout
    assert "diffusion steps: 2" in run.stdout  # DynDiff's choice within SEMLINK_SEDIC_MAX_STEPS
    decoded = np.asarray(Image.open(out))
    assert decoded.shape == (256, 256, 3) and decoded.dtype == np.uint8


def test_real_size_loaders_refuse_broken_manifests(synth: SynthPaths, scratch: Path) -> None:
    from semlink.extract.segmenter import SamSegmenter
    from semlink.models.diffusion import DiffusionComponents

    sedic = linked_copy(synth.sedic, scratch / "sedic")
    manifest = sedic / MANIFEST
    original = manifest.read_text()

    rewrite(manifest, '{"files": {"unet/config.json": ')
    with pytest.raises(WeightsError, match="is not valid JSON"):
        DiffusionComponents.from_pretrained(sedic)
    rewrite(manifest, '{"files": {"unet/config.json": "abc"}}')
    with pytest.raises(WeightsError, match="not a sha256 hex digest"):
        DiffusionComponents.from_pretrained(sedic)
    rewrite(manifest, '{"files": {"../../etc/passwd": "' + "0" * 64 + '"}}')
    with pytest.raises(WeightsError, match="points outside"):
        DiffusionComponents.from_pretrained(sedic)
    manifest.unlink()
    with pytest.raises(WeightsError, match=r"manifest.json not found"):
        DiffusionComponents.from_pretrained(sedic)

    manifest.write_text(original)
    config = sedic / "scheduler" / "scheduler_config.json"
    rewrite(config, config.read_text().replace("0.012", "0.02"))
    with pytest.raises(TamperedWeightsError, match=r"scheduler_config.json has sha256 \w+"):
        DiffusionComponents.from_pretrained(sedic)

    sam = linked_copy(synth.sam_checkpoint.parent, scratch / "sam")
    table = json.loads((sam / MANIFEST).read_text())
    table["files"][synth.sam_checkpoint.name] = "0" * 64
    rewrite(sam / MANIFEST, json.dumps(table))
    with pytest.raises(TamperedWeightsError, match="the manifest says 0000"):
        SamSegmenter.from_checkpoint(sam / synth.sam_checkpoint.name)


def test_real_size_loaders_refuse_wrong_shapes(synth: SynthPaths, scratch: Path) -> None:
    from semlink.extract.captioner import TransformersCaptioner
    from semlink.extract.segmenter import SamSegmenter
    from semlink.models.diffusion import DiffusionComponents

    # An SAM ViT-B checkpoint whose position embedding is another variant's size.
    state = torch.load(synth.sam_checkpoint, map_location="cpu", weights_only=True)
    state["image_encoder.pos_embed"] = torch.zeros(1, 32, 32, 768)
    wrong = scratch / "sam_wrong.pth"
    torch.save(state, wrong)
    del state
    with pytest.raises(KeyMismatchError, match=r"image_encoder.pos_embed: file \(1, 32, 32, 768\)"):
        SamSegmenter.from_checkpoint(wrong)

    # BLIP whose config.json says 224-pixel images: the position table no longer fits.
    blip = linked_copy(synth.blip, scratch / "blip")
    config = json.loads((blip / "config.json").read_text())
    config["vision_config"]["image_size"] = 224
    rewrite(blip / "config.json", json.dumps(config))
    table = json.loads((blip / MANIFEST).read_text())
    table["files"]["config.json"] = sha256_of(blip / "config.json")
    rewrite(blip / MANIFEST, json.dumps(table))
    with pytest.raises(WeightsError, match=r"position_embedding: file \(1, 577, 768\)"):
        TransformersCaptioner.from_pretrained(str(blip))

    # A UNet config for SD 2's text encoder (1024-wide cross-attention) over SD 1.5 weights.
    sedic = linked_copy(synth.sedic, scratch / "sedic")
    config = json.loads((sedic / "unet" / "config.json").read_text())
    config["cross_attention_dim"] = 1024
    rewrite(sedic / "unet" / "config.json", json.dumps(config))
    table = json.loads((sedic / MANIFEST).read_text())
    table["files"]["unet/config.json"] = sha256_of(sedic / "unet" / "config.json")
    rewrite(sedic / MANIFEST, json.dumps(table))
    with pytest.raises(WeightsError, match=r"unet \(UNet2DConditionModel\).*size mismatch"):
        DiffusionComponents.from_pretrained(sedic)


def test_real_size_guidance_changes_the_latent_only_inside_the_object(
    synth: SynthPaths, photo: Path
) -> None:
    """SD 1.5 + tile ControlNet through the real loader: ORAG hooks the cross-attention of
    the contracting path and middle block; guidance runs on the first half of an object's
    steps (t > T'), and after latent fusion the object's pass differs from the global pass
    inside its mask only, there because of guidance."""
    from semlink.config import Settings
    from semlink.models.registry import decoder_models
    from semlink.restore.orag import ObjectPrompt, ORAGPipeline

    models = decoder_models(Settings(sedic_weights=synth.sedic, sedic_max_steps=2))
    c = models.components
    assert list(c.unet.config.block_out_channels) == [320, 640, 1280, 1280]
    assert c.vae.config.scaling_factor == 0.18215
    pipe = ORAGPipeline(c)
    hooked = [n for n, p in c.unet.attn_processors.items() if p.capture]
    assert len(hooked) == 7 and all(".attn2." in n for n in hooked)  # 3 down levels x 2 + mid
    assert {n.split(".")[0] for n in hooked} == {"down_blocks", "mid_block"}

    # 128x128 (the 256x256 decode is the CLI test's): the same layers at a quarter of the cost.
    size, steps, seed = 128, 2, 3
    reference = np.asarray(Image.open(photo).convert("RGB").resize((size, size)))
    mask = np.zeros((size, size), bool)
    mask[:, : size // 2] = True
    guided_steps = []
    real_guide = pipe.guide

    def counting_guide(*args, **kwargs):  # type: ignore[no-untyped-def]
        guided_steps.append(int(args[1]))
        return real_guide(*args, **kwargs)

    pipe.guide = counting_guide  # type: ignore[method-assign]
    out = pipe(
        reference,
        "a photo of a field",
        [ObjectPrompt("a red boat", mask)],
        steps=steps,
        seed=seed,
        keep_trajectories=True,
    )
    assert out.image.shape == (size, size, 3)
    timesteps = [int(t) for t in c.scheduler.timesteps]
    assert guided_steps == timesteps[: steps // 2]  # only while t > T'
    inside = out.masks[0].bool()
    assert inside.shape == (size // 8, size // 8) and 0 < inside.float().mean() < 1
    global_pass, object_pass = out.trajectories
    for fused, reference_latent in zip(object_pass, global_pass, strict=True):
        assert torch.equal(fused[..., ~inside], reference_latent[..., ~inside])
        assert not torch.equal(fused[..., inside], reference_latent[..., inside])

    # The same first object step without guidance: equal outside the mask, and inside it
    # guidance made the difference.
    generator = torch.Generator().manual_seed(seed)
    z_T = torch.randn((1, 4, size // 8, size // 8), generator=generator)
    z_T = z_T * c.scheduler.init_noise_sigma
    c.scheduler.set_timesteps(steps)
    t0 = c.scheduler.timesteps[0]
    text, _ = pipe.encode_prompt("a red boat")
    control = torch.from_numpy(reference.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        noise = pipe.predict_noise(z_T, t0, text, control)
    plain = c.scheduler.step(noise, t0, z_T).prev_sample
    m = out.masks[0]
    unguided = m * plain + (1 - m) * global_pass[0]
    assert torch.equal(unguided[..., ~inside], object_pass[0][..., ~inside])
    assert (unguided[..., inside] - object_pass[0][..., inside]).abs().max() > 1e-4
