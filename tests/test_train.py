"""Training recipes: a step lowers the loss, runs resume, TAEF2 loads strictly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from semlink.config import settings
from semlink.models.taef2 import TAEF2
from semlink.restore.latent import LatentRestorer
from semlink.train.restorer import RestorerRecipe, train, training_step
from tests.conftest import kodak_image

WEIGHTS = settings().weights_dir
BSDS = WEIGHTS.parent / "data" / "train" / "bsds500"
needs_taef2 = pytest.mark.skipif(
    not (WEIGHTS / "taef2" / "taef2_decoder.pth").exists(),
    reason=f"TAEF2 weights not in {WEIGHTS}/taef2 (set SEMLINK_WEIGHTS_DIR)",
)


@pytest.fixture(scope="module")
def taef2() -> TAEF2:
    return TAEF2.load(WEIGHTS / "taef2")


@needs_taef2
def test_taef2_loads_strictly_and_round_trips(taef2: TAEF2) -> None:
    from semlink.quality.metrics import psnr

    image = kodak_image("kodim23")[:256, :384]
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        z = taef2.encode(x)
        out = taef2.decode(z)
    assert z.shape == (1, 32, 32, 48)
    pixels = (out[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert psnr(image, pixels) > 30.0  # measured 33.4 dB on the whole image


def test_the_restorer_starts_at_its_base_latent_and_a_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = LatentRestorer(width=16, blocks=1)
    quarter, base, latent = (
        torch.rand(2, 3, 16, 16),
        torch.randn(2, 32, 8, 8),
        torch.randn(2, 32, 8, 8),
    )
    assert torch.equal(model(quarter, base), base)  # untrained: exactly the Lanczos latent
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [training_step(model, optimizer, quarter, base, latent) for _ in range(30)]
    assert losses[1] < losses[0] and losses[-1] < 0.85 * losses[0]


@needs_taef2
def test_a_pixel_step_through_taef2_lowers_the_loss(taef2: TAEF2) -> None:
    torch.manual_seed(0)
    for p in taef2.parameters():
        p.requires_grad_(False)
    model = LatentRestorer(width=16, blocks=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    image = kodak_image("kodim05")[:64, :64]
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
    quarter = torch.nn.functional.avg_pool2d(x, 4)
    with torch.no_grad():
        latent = taef2.encode(x)
        base = taef2.encode(torch.nn.functional.interpolate(quarter, scale_factor=4.0))
    losses = [training_step(model, optimizer, quarter, base, latent, taef2=taef2) for _ in range(8)]
    assert losses[-1] < losses[0]


@needs_taef2
@pytest.mark.skipif(not BSDS.exists(), reason=f"BSDS500 not at {BSDS}")
def test_training_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    recipe = RestorerRecipe(width=8, blocks=1, batch=2, crop=8, pixel_every=0)
    first = train(BSDS, WEIGHTS / "taef2", tmp_path, steps=50, recipe=recipe, limit=2)
    assert first.step == 50 and (tmp_path / "checkpoint.pt").exists()
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    resumed = train(BSDS, WEIGHTS / "taef2", tmp_path, steps=100, recipe=recipe, limit=2)
    assert resumed.step == 100 and [s for s, _ in resumed.losses] == [50, 100]
    assert np.isfinite([v for _, v in resumed.losses]).all()


def test_a_latent_codec_step_lowers_the_rate_distortion_loss() -> None:
    from semlink.train.latent_codec import latent_hyperprior, rd_loss
    from semlink.train.latent_codec import training_step as codec_step
    from semlink.train.ref_codec import optimizers

    torch.manual_seed(0)
    model = latent_hyperprior(n=16, m=16)
    optimizer, aux_optimizer = optimizers(model, 1e-3)
    latent = torch.randn(2, 32, 16, 16) * 0.9
    with torch.no_grad():
        before, bpp, mse = rd_loss(model, latent, 4.0)
    assert bpp > 0 and mse > 0
    for _ in range(20):
        codec_step(model, optimizer, aux_optimizer, latent, 4.0)
    with torch.no_grad():
        after, _, _ = rd_loss(model, latent, 4.0)
    assert float(after) < float(before)
    # The recipe's distortion: pixels through a (here random) TAEF2 decoder.
    taef2 = TAEF2().eval()
    for p in taef2.parameters():
        p.requires_grad_(False)
    small = latent[:1, :, :8, :8]
    with torch.no_grad():
        before, _, _ = rd_loss(model, small, 0.01, taef2)
    for _ in range(10):
        codec_step(model, optimizer, aux_optimizer, small, 0.01, taef2)
    with torch.no_grad():
        after, _, _ = rd_loss(model, small, 0.01, taef2)
    assert float(after) < float(before)


def test_a_reference_codec_step_lowers_the_rate_distortion_loss() -> None:
    import random

    from semlink.models.codecs import build
    from semlink.train.ref_codec import (
        RefCodecRecipe,
        optimizers,
        random_batch,
        rd_loss,
    )
    from semlink.train.ref_codec import training_step as codec_step

    torch.manual_seed(0)
    recipe = RefCodecRecipe(n=8, m=12, batch=2)
    photos = [kodak_image("kodim23")[:200, :300]]
    x = random_batch(photos, recipe, random.Random(0))
    assert x.shape == (2, 3, 64, 64) and float(x.min()) >= 0 and float(x.max()) <= 1
    model = build(recipe.config)
    optimizer, aux_optimizer = optimizers(model, 1e-3)
    with torch.no_grad():
        before, bpp, psnr = rd_loss(model, x, recipe.lam)
    assert bpp > 0 and np.isfinite(psnr)
    for _ in range(20):
        codec_step(model, optimizer, aux_optimizer, lambda: rd_loss(model, x, recipe.lam))
    with torch.no_grad():
        after, _, _ = rd_loss(model, x, recipe.lam)
    assert float(after) < float(before)


def test_segment_edges_mark_region_boundaries() -> None:
    from semlink.restore.latent import segment_edges

    labels = np.zeros((16, 16), np.int64)
    labels[:, 8:] = 1
    edges = segment_edges(labels, 4, 4)  # 4x4 grid: the boundary falls between cols 1 and 2
    assert edges.shape == (4, 4)
    assert edges[:, 1].all() and edges.sum() == 4


def test_edge_input_starts_neutral_and_old_weights_carry_over(tmp_path: Path) -> None:
    from semlink.train.common import init_from

    torch.manual_seed(0)
    old = LatentRestorer(width=16, blocks=1, edges=False)
    torch.nn.init.normal_(old.tail.weight, std=0.01)
    torch.save({"model": old.state_dict(), "step": 7}, tmp_path / "old.pt")
    new = LatentRestorer(width=16, blocks=1, edges=True)
    assert init_from(new, tmp_path / "old.pt") == 7
    quarter, base = torch.rand(1, 3, 16, 16), torch.randn(1, 32, 8, 8)
    edges = torch.zeros(1, 1, 8, 8)
    with torch.no_grad():  # equal up to float summation order (45 input channels vs 44)
        expected = old(quarter, base)
        assert torch.allclose(new(quarter, base, edges), expected, atol=1e-5)
        assert torch.allclose(new(quarter, base), expected, atol=1e-5)  # no segmap: zeros
    assert not new.head.weight[:, -1].any()  # the edge channel starts silent


def test_the_discriminator_learns_and_the_adversarial_step_runs() -> None:
    from semlink.train.common import Adversary, discriminator
    from semlink.train.restorer import discriminator_step, hinge_loss

    torch.manual_seed(0)
    net = discriminator(width=8)
    adversary = Adversary(net, torch.optim.Adam(net.parameters(), lr=2e-3), 0.05)
    real = torch.rand(2, 3, 32, 32)
    fake = torch.nn.functional.avg_pool2d(real, 5, 1, 2)  # blurred: what the GAN must tell apart
    with torch.no_grad():
        before = float(hinge_loss(adversary, real, fake))
    for _ in range(30):
        discriminator_step(adversary, real, fake)
    with torch.no_grad():
        after = float(hinge_loss(adversary, real, fake))
    assert after < before


@pytest.mark.parametrize(
    ("width", "blocks", "fine", "adapt"),
    [(8, 4, 0, "deepen"), (12, 2, 0, "widen"), (12, 3, 0, "grow"), (8, 2, 6, "refine")],
)
def test_a_grown_restorer_computes_what_the_smaller_one_did(
    tmp_path: Path, width: int, blocks: int, fine: int, adapt: str
) -> None:
    """``--blocks`` / ``--width`` / ``--fine-width`` with ``--init`` from a smaller
    network: the new blocks start as the identity, the new channels and the H/2 stage
    silent, and all learn at once."""
    from semlink.restore.network import PixelRestorer
    from semlink.train import growth
    from semlink.train.common import init_from

    torch.manual_seed(0)
    old = PixelRestorer(width=8, blocks=2, edges=True, scale_input=True)
    for p in (old.tail.weight, old.film[2].weight, old.film[2].bias):
        torch.nn.init.normal_(p, std=0.05)  # (all start at zero: nothing to preserve)
    torch.save({"model": old.state_dict(), "step": 3}, tmp_path / "old.pt")
    new = PixelRestorer(width, blocks, edges=True, scale_input=True, fine_width=fine, fine_blocks=2)
    assert init_from(new, tmp_path / "old.pt", getattr(growth, adapt)) == 3
    picture, edges = torch.rand(2, 3, 16, 24), torch.rand(2, 1, 4, 6)
    scale = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        restored = new(picture, scale, edges)
        assert torch.allclose(restored, old(picture, scale, edges), atol=1e-6)
        assert (restored - picture).abs().max() > 1e-3  # the old network did something
    new(picture, scale, edges).square().mean().backward()
    if blocks > 2:  # a new block's second convolution starts at zero and gets a gradient
        conv2 = new.body[blocks - 1].conv2.weight
        assert not conv2.any() and new.body[blocks - 1].conv1.weight.any()
        assert conv2.grad is not None and conv2.grad.any()
    if width > 8:  # the old channels' reads of the new ones start at zero, get a gradient
        conv2 = new.body[0].conv2.weight
        assert not conv2[:8, 8:].any()
        assert conv2.grad is not None and conv2.grad[:8, 8:].any()
    if fine:  # the H/2 stage's last convolution starts at zero and gets a gradient
        tail = new.fine_tail.weight
        assert not tail.any() and tail.grad is not None and tail.grad.any()


def test_a_restorer_grown_a_noise_input_computes_what_it_did_and_learns_to_listen(
    tmp_path: Path,
) -> None:
    """``--noise 1`` with ``--init`` from a network without it: both stages' first
    convolutions read nothing of the noise at first, whatever the noise, and their noise
    columns get a gradient at once."""
    from semlink.restore.network import PixelRestorer
    from semlink.train.common import init_from
    from semlink.train.growth import grow

    torch.manual_seed(0)
    old = PixelRestorer(8, 2, edges=True, scale_input=True, fine_width=4, fine_blocks=1)
    for p in (old.tail.weight, old.fine_tail.weight, old.film[2].weight):
        torch.nn.init.normal_(p, std=0.05)
    torch.save({"model": old.state_dict(), "step": 0}, tmp_path / "old.pt")
    new = PixelRestorer(8, 2, edges=True, scale_input=True, fine_width=4, fine_blocks=1, noise=1)
    init_from(new, tmp_path / "old.pt", grow)
    picture, scale = torch.rand(2, 3, 16, 24), torch.tensor([0.3, 0.9])
    with torch.no_grad():
        before = old(picture, scale)
        assert torch.allclose(new(picture, scale), before, atol=1e-6)
        assert torch.allclose(
            new(picture, scale, None, torch.randn(2, 1, 16, 24)), before, atol=1e-6
        )
        assert torch.equal(old(picture, scale, None, torch.randn(2, 1, 16, 24)), before)
    new(picture, scale).square().mean().backward()
    # (picture + edges | features) channels, then the noise space-to-depth by 4 and by 2
    for head, picture_channels, noise in ((new.head, 3 * 16 + 1, 16), (new.fine_head, 12 + 2, 4)):
        assert head.weight.shape[1] == picture_channels + noise
        assert not head.weight[:, picture_channels:].any()
        assert head.weight.grad is not None and head.weight.grad[:, picture_channels:].any()


def test_a_fine_tune_can_start_from_shipped_fp16_weights(tmp_path: Path) -> None:
    """``--init shared/semlink/data/fidelity_restorer.safetensors``: the package's fp16
    weights (as ``ship`` writes them) become the new run's float32 start, at step 0."""
    from safetensors.torch import save_file

    from semlink.restore.network import PixelRestorer
    from semlink.train.common import init_from

    torch.manual_seed(0)
    old = PixelRestorer(width=8, blocks=2, edges=True)
    torch.nn.init.normal_(old.tail.weight, std=0.05)
    half = {k: v.half().contiguous() for k, v in old.state_dict().items()}
    save_file(half, tmp_path / "shipped.safetensors")
    new = PixelRestorer(width=8, blocks=2, edges=True, scale_input=True)
    assert init_from(new, tmp_path / "shipped.safetensors") == 0
    for name, value in new.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, half[name].float())
    assert new.tail.weight.any()


def test_a_restorer_with_a_fine_stage_grows_wider_and_deeper(tmp_path: Path) -> None:
    """``--width``/``--blocks`` on a network that has an H/2 stage (recipe p's): the fine
    stage reads the new features' context channels not at all at first."""
    from semlink.restore.network import PixelRestorer
    from semlink.train.common import init_from
    from semlink.train.growth import grow

    torch.manual_seed(0)
    old = PixelRestorer(8, 2, edges=True, scale_input=True, fine_width=4, fine_blocks=2)
    for p in (old.tail.weight, old.fine_tail.weight, old.film[2].weight, old.fine_film[2].bias):
        torch.nn.init.normal_(p, std=0.05)
    torch.save({"model": old.state_dict(), "step": 0}, tmp_path / "old.pt")
    new = PixelRestorer(12, 3, edges=True, scale_input=True, fine_width=4, fine_blocks=2)
    init_from(new, tmp_path / "old.pt", grow)
    picture, edges, scale = (
        torch.rand(2, 3, 16, 24),
        torch.rand(2, 1, 4, 6),
        torch.tensor([0.3, 0.9]),
    )
    with torch.no_grad():
        assert torch.allclose(new(picture, scale, edges), old(picture, scale, edges), atol=1e-6)
    wider = PixelRestorer(12, 2, edges=True, scale_input=True, fine_width=8, fine_blocks=2)
    with pytest.raises(ValueError, match="fine stage"):
        init_from(wider, tmp_path / "old.pt", grow)
