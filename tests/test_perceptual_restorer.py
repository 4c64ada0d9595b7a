"""Recipe p, lite's realism end (semlink.train.perceptual_restorer): tiny random networks,
properties of the recipe (training sees what the decoder delivers, the discriminator is
conditional, steps lower the loss, runs resume), the default-realism rule."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from semlink.imaging import resize
from semlink.models.taef2 import TAEF2
from semlink.quality.perceptual import LPIPS
from semlink.quality.perceptual_weights import MANIFEST, weights_dir
from semlink.restore import network, pixel
from semlink.train.perceptual_restorer import (
    EncoderTaps,
    PerceptualRecipe,
    _judge,
    _texture_taps,
    below,
    choose_realism,
    conditional_discriminator,
    decoded,
    texture_distance,
    train,
    training_step,
)
from semlink.train.restorer_data import make_batch

from .test_restorer import Records

TINY = PerceptualRecipe(width=8, blocks=1, fine_width=4, fine_blocks=1, batch=2, crop=64)


def _noisy(recipe: PerceptualRecipe = TINY, seed: int = 0) -> network.PixelRestorer:
    """A tiny network whose output is not Lanczos (its silent last layers drawn at random)."""
    torch.manual_seed(seed)
    net = recipe.network()
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.02)
        net.fine_tail.weight.normal_(0, 0.02)
    return net.eval()


def _cache() -> dict[str, list[torch.Tensor]]:
    photo = np.ascontiguousarray(skimage.data.astronaut()[::4, ::4][:128, :128])
    small = resize(photo, 32, 32)
    coarse = resize(small, 128, 128)
    return {
        "originals": [torch.from_numpy(photo.copy())],
        "lanczos": [torch.from_numpy(coarse.copy())],
        "edges": [torch.zeros(32, 32, dtype=torch.uint8)],
        "scale": [torch.tensor(0.25)],
        "bpp": [torch.tensor(0.03)],
    }


def test_training_sees_the_picture_the_decoder_delivers() -> None:
    """``decoded`` (what the loss sees) is ``restore`` at realism 1 to within rounding:
    degrid, the flat-area gate and the side share as FiLM input, all as the decoder does."""
    photo = np.ascontiguousarray(skimage.data.chelsea()[:240, :320])
    small = resize(photo, 80, 60)
    net = _noisy()
    delivered = pixel.restore(small, 320, 240, net, 1.0)
    lanczos = torch.from_numpy(resize(small, 320, 240).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        trained = decoded(net, lanczos, torch.tensor([0.25]), None)
    trained_u8 = (trained.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(trained_u8 - delivered.astype(np.float64)).max() <= 1
    assert not np.array_equal(delivered, resize(small, 320, 240))  # the network did act


def test_a_noisy_network_decodes_with_fixed_noise_and_trains_with_fresh_noise() -> None:
    """The decoder's noise is a hash of the position (the same picture from the same packet
    on every machine, unit variance, no period); ``decoded`` with it is ``restore``; a
    training step draws new noise each time."""
    noise = network.hash_noise(2, 1, 256, 384)
    assert torch.equal(noise[0], noise[1]) and torch.equal(
        noise, network.hash_noise(2, 1, 256, 384)
    )
    assert abs(float(noise.mean())) < 0.02 and abs(float(noise.std()) - 1) < 0.02
    plane = noise[0, 0]
    for shift in (1, 2, 4, 8, 16, 97):  # no correlation with itself moved by any period
        moved = torch.roll(plane, shift, dims=1)
        assert abs(float((plane * moved).mean())) < 0.03, shift
    assert abs(float((plane * torch.roll(plane, 1, dims=0)).mean())) < 0.03
    recipe = PerceptualRecipe(**{**TINY.__dict__, "noise": 1, "bf16": False, "l1": 0.0})
    net = _noisy(recipe)
    with torch.no_grad():
        net.head.weight[:, -16:].normal_(0, 0.5)  # it listens to its noise
    photo = np.ascontiguousarray(skimage.data.chelsea()[:240, :320])
    small = resize(photo, 80, 60)
    delivered = pixel.restore(small, 320, 240, net, 1.0)
    lanczos = torch.from_numpy(resize(small, 320, 240).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        trained = decoded(net, lanczos, torch.tensor([0.25]), None)
        other = decoded(net, lanczos, torch.tensor([0.25]), None, torch.randn(1, 1, 240, 320))
    trained_u8 = (trained.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(trained_u8 - delivered.astype(np.float64)).max() <= 1
    assert (trained - other).abs().max() > 1e-3  # the noise matters to this network
    seen: list[torch.Tensor] = []
    forward = net.forward
    net.forward = lambda *a: seen.append(a[3].clone()) or forward(*a)  # type: ignore[method-assign]
    batch = make_batch(_cache(), 2, 64, random.Random(0), 0.0, 0.0, scales=True)
    lpips = LPIPS.build("alex")
    for _ in range(2):
        training_step(net, torch.optim.SGD(net.parameters(), lr=0.0), batch, recipe, lpips, None)
    assert len(seen) == 2 and seen[0].shape == (2, 1, 64, 64)
    assert not torch.equal(seen[0], seen[1])


def test_a_scale_aware_realism_network_gets_the_side_share_not_the_realism() -> None:
    small = np.ascontiguousarray(skimage.data.chelsea()[:60:, :80])
    texture = Records(width=8, blocks=1, scale_input=True)
    pixel.restore(small, 320, 240, texture, 0.6)
    assert texture.seen == pytest.approx([0.25])


def test_the_discriminator_learns_whether_a_picture_fits_its_reference() -> None:
    """Real: a picture beside its own reference; fake: the same picture beside another
    photo's. Only a discriminator that sees the reference can tell them apart."""
    torch.manual_seed(0)
    photo = torch.from_numpy(skimage.data.astronaut()[::8, ::8][:64, :64].copy())
    other = torch.from_numpy(skimage.data.coffee()[::4, ::4][:64, :64].copy())
    picture = photo.permute(2, 0, 1)[None].float() / 255
    own = F.interpolate(F.avg_pool2d(picture, 4), scale_factor=4.0, mode="bilinear")
    wrong = F.interpolate(
        F.avg_pool2d(other.permute(2, 0, 1)[None].float() / 255, 4), scale_factor=4.0
    )
    disc = conditional_discriminator(8)
    optimizer = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        real = F.relu(1 - _judge(disc, picture, own)).mean()
        fake = F.relu(1 + _judge(disc, picture, wrong)).mean()
        (real + fake).backward()
        optimizer.step()
        losses.append(float((real + fake).detach()))
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        assert float(_judge(disc, picture, own).mean()) > float(_judge(disc, picture, wrong).mean())


def test_perceptual_steps_lower_lpips_and_the_adversary_joins() -> None:
    torch.manual_seed(0)
    lpips = LPIPS.build("alex")
    for lin in lpips.lins:
        torch.nn.init.uniform_(lin.weight, 0, 0.1)
    net = TINY.network()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    batch = make_batch(_cache(), 2, 64, random.Random(0), 0.0, 0.0, scales=True)
    recipe = PerceptualRecipe(**{**TINY.__dict__, "bf16": False, "l1": 0.0})
    terms = [training_step(net, optimizer, batch, recipe, lpips, None) for _ in range(40)]
    assert terms[-1]["lpips"] < 0.7 * terms[0]["lpips"], [t["lpips"] for t in terms]
    disc = conditional_discriminator(8)
    before = [p.detach().clone() for p in disc.parameters()]
    disc_opt = torch.optim.Adam(disc.parameters(), lr=2e-4)
    joined = training_step(net, optimizer, batch, recipe, lpips, (disc, disc_opt))
    assert {"l1", "lpips", "gen", "disc", "loss"} <= set(joined)
    assert joined["loss"] == pytest.approx(joined["lpips"] + recipe.adv * joined["gen"], rel=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(before, disc.parameters(), strict=True))


def test_the_texture_term_asks_for_energy_not_for_its_place() -> None:
    """Blurring a texture away costs more than moving it: the statistics of a window do
    not say where in it each feature sits (what LPIPS and L1, which do, cannot reward)."""
    torch.manual_seed(0)
    y = torch.rand(2, 3, 64, 64)
    taps = [y, F.avg_pool2d(y, 2)]
    blurred = F.avg_pool2d(y, 5, 1, 2, count_include_pad=False)
    moved = torch.roll(y, (3, 3), dims=(2, 3))
    same = texture_distance(taps, taps, 64)
    assert same.shape == (2,) and float(same.abs().max()) == 0.0
    by_blur = texture_distance([blurred, F.avg_pool2d(blurred, 2)], taps, 64)
    by_move = texture_distance([moved, F.avg_pool2d(moved, 2)], taps, 64)
    assert (by_blur > 5 * by_move).all(), (by_blur, by_move)
    assert F.l1_loss(moved, y) > F.l1_loss(blurred, y)  # what L1 would have preferred


def test_the_texture_term_joins_the_loss_when_weighted() -> None:
    torch.manual_seed(0)
    lpips = LPIPS.build("alex")
    net = _noisy()
    batch = make_batch(_cache(), 2, 64, random.Random(0), 0.0, 0.0, scales=True)
    recipe = PerceptualRecipe(**{**TINY.__dict__, "bf16": False, "l1": 0.0, "texture": 0.5})
    terms = training_step(
        net, torch.optim.SGD(net.parameters(), lr=0.0), batch, recipe, lpips, None
    )
    assert terms["texture"] > 0
    assert terms["loss"] == pytest.approx(terms["lpips"] + 0.5 * terms["texture"], rel=1e-4)
    shallow = PerceptualRecipe(**{**recipe.__dict__, "texture_depth": 1})
    with torch.no_grad():
        image = decoded(net, batch[0], batch[3], batch[2]).clamp(0, 1)
        first = texture_distance(
            lpips.normalized_taps(image)[:1], lpips.normalized_taps(batch[1])[:1], 64
        )
    sgd = torch.optim.SGD(net.parameters(), lr=0.0)
    by_first = training_step(net, sgd, batch, shallow, lpips, None)["texture"]
    assert by_first == pytest.approx(float(first.mean()), rel=1e-4)
    assert by_first != pytest.approx(terms["texture"], rel=1e-3)
    plain = PerceptualRecipe(**{**TINY.__dict__, "bf16": False, "l1": 0.0})
    assert "texture" not in training_step(
        net, torch.optim.SGD(net.parameters(), lr=0.0), batch, plain, lpips, None
    )


def test_a_rate_cap_keeps_only_the_references_below_it() -> None:
    data = _cache()
    data = {k: v * 3 for k, v in data.items()}
    data["bpp"] = [torch.tensor(0.03), torch.tensor(0.1), torch.tensor(0.05)]
    data["scale"] = [torch.tensor(0.1), torch.tensor(0.2), torch.tensor(0.3)]
    assert below(data, TINY) is data
    kept = below(data, PerceptualRecipe(max_bpp=0.055))
    assert [float(b) for b in kept["bpp"]] == pytest.approx([0.03, 0.05])
    assert [float(s) for s in kept["scale"]] == pytest.approx([0.1, 0.3])  # rows stay whole
    assert all(len(column) == 2 for column in kept.values())
    with pytest.raises(ValueError, match=r"below 0\.01 bpp"):
        below(data, PerceptualRecipe(max_bpp=0.01))


def test_taef2_taps_are_frozen_unit_features_at_three_scales() -> None:
    torch.manual_seed(0)
    taps = EncoderTaps(TAEF2().encoder)
    x = torch.rand(2, 3, 64, 48, requires_grad=True)
    out = taps(x)
    assert [t.shape[-2:] for t in out] == [(64, 48), (32, 24), (16, 12)]
    for t in out:
        norm = t.pow(2).sum(dim=1).sqrt()
        assert torch.allclose(norm[norm > 1e-3], torch.ones(()), atol=1e-4)
    sum(t.sum() for t in out).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # reaches the picture
    assert all(p.grad is None for p in taps.parameters())  # not the backbone


def test_the_texture_term_reads_the_texture_network_it_is_given() -> None:
    torch.manual_seed(0)
    lpips = LPIPS.build("alex")
    taps = EncoderTaps(TAEF2().encoder)
    net = _noisy()
    batch = make_batch(_cache(), 2, 64, random.Random(0), 0.0, 0.0, scales=True)
    recipe = PerceptualRecipe(
        **{**TINY.__dict__, "bf16": False, "l1": 0.0, "texture": 0.5, "texture_net": "taef2"}
    )
    sgd = torch.optim.SGD(net.parameters(), lr=0.0)
    terms = training_step(net, sgd, batch, recipe, lpips, None, taps)
    with torch.no_grad():
        image = decoded(net, batch[0], batch[3], batch[2]).clamp(0, 1)
        expected = texture_distance(taps(image)[:3], taps(batch[1])[:3], 64).mean()
    assert terms["texture"] == pytest.approx(float(expected), rel=1e-4)
    assert terms["loss"] == pytest.approx(terms["lpips"] + 0.5 * terms["texture"], rel=1e-4)
    with pytest.raises(ValueError, match="texture_taps"):
        training_step(net, sgd, batch, recipe, lpips, None)
    with pytest.raises(ValueError, match="lpips or taef2"):
        _texture_taps(PerceptualRecipe(texture_net="alexnet"))
    assert _texture_taps(PerceptualRecipe(texture_net="taef2")) is None  # no weight: no taps


@pytest.mark.skipif(not (weights_dir() / MANIFEST).is_file(), reason="no LPIPS weights fetched")
def test_a_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Generator, discriminator and both optimizers are checkpointed; a second call goes on
    from the step the first stopped at, from the weights it left."""
    recipe = PerceptualRecipe(**{**TINY.__dict__, "lpips_net": "alex", "adv_start": 1})
    run = tmp_path / "run"
    run.mkdir()
    torch.save(_cache(), run / "cache.pt")
    assert train(tmp_path, run, steps=2, recipe=recipe).step == 2
    first = torch.load(run / "checkpoint.pt", weights_only=True)
    disc = torch.load(run / "discriminator" / "checkpoint.pt", weights_only=True)
    assert first["step"] == disc["step"] == 2
    assert train(tmp_path, run, steps=3, recipe=recipe).step == 3
    second = torch.load(run / "checkpoint.pt", weights_only=True)
    moved = (second["model"]["head.weight"] - first["model"]["head.weight"]).abs().max()
    assert 0 < moved < 1e-3  # one more Adam step from where it stopped, not a fresh start
    assert json.loads((run / "recipe.json").read_text())["lpips_net"] == "alex"


def test_the_default_realism_is_the_most_perceptual_within_the_psnr_allowance() -> None:
    def results(psnrs: list[float], scores: list[float]) -> dict[str, dict[str, float]]:
        out = {"vvc": {"psnr": 23.0}}
        for r, p, s in zip((0.0, 0.25, 0.5, 0.75, 1.0), psnrs, scores, strict=True):
            out[f"realism {r}"] = {"psnr": p, "lpips": s, "dists": s / 2}
        return out

    scores = [0.8, 0.7, 0.6, 0.5, 0.4]
    assert choose_realism(results([23.5, 23.3, 22.9, 21.2, 21.0], scores)) == 0.5
    assert choose_realism(results([23.5, 23.3, 22.9, 22.2, 21.6], scores)) == 1.0
    assert choose_realism(results([20.0] * 5, scores)) == 0.0


class Tints(network.PixelRestorer):
    """A realism network that only shifts colour: +0.1 on blue, -0.05 on red, slowly
    varying over the picture."""

    def forward(
        self, lanczos: torch.Tensor, realism: torch.Tensor, edges: torch.Tensor | None = None
    ) -> torch.Tensor:
        ramp = torch.linspace(0, 1, lanczos.shape[-1]).expand_as(lanczos[:, :1])
        tint = torch.cat([-0.05 * ramp, 0 * ramp, 0.1 + 0 * ramp], dim=1)
        return lanczos + tint


def test_the_realism_network_adds_detail_not_colour() -> None:
    """A realism network that would tint the picture leaves it as the reference has it:
    its residual's local mean is taken out before it is added."""
    photo = np.ascontiguousarray(skimage.data.chelsea()[:240, :320])
    small = resize(photo, 80, 60)
    tinted = pixel.restore(small, 320, 240, Tints(width=8, blocks=1), 1.0)
    plain = resize(small, 320, 240)
    assert np.abs(tinted.astype(int) - plain.astype(int)).max() <= 1
