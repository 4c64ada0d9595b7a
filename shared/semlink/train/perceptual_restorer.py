"""Recipe p: lite's realism end, trained for what people see (issue 31).

The recipe the perceptual codecs share (HiFiC, MS-ILLM), on top of lite's VVC reference:

  loss = ``l1`` x L1 + ``lpips`` x LPIPS-VGG + ``adv`` x hinge GAN (generator side)

against the original, with a *conditional* PatchGAN (spectral norm) that sees the picture
beside the Lanczos reference it was made from, so it judges texture that fits the reference
rather than texture alone. LPIPS's VGG variant trains; LPIPS-AlexNet and DISTS, the
figures reported, are not optimised (DISTS shares VGG16's layers, not its formula).

The network is a :class:`~semlink.restore.network.PixelRestorer` whose FiLM input is the
reference's side share (it runs only at realism 1; realism between 0 and 1 blends its
residual with the fidelity network's, :func:`semlink.restore.pixel.restore`). It trains
through exactly what the decoder applies (:func:`decoded`: ``degrid`` and the flat-area
gate), starting from the shipped fidelity network grown to its shape (``--init``), so step
0 is lite's realism-0 picture. Data: the fidelity recipe's cache (BSDS500 train+test, 1200
VVC references at 0.015-0.2 bpp, :func:`semlink.train.restorer_data.build_cache`); never
Kodak. Resumable: the generator, the discriminator and both optimizers are checkpointed
every 50 steps, and a run continues where it was stopped. Runs on a GPU as it is
(``--device cuda``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from semlink.quality.perceptual import LPIPS, unit_channels
from semlink.restore.network import PixelRestorer
from semlink.restore.residual import activity, degrid, detail_only
from semlink.train.common import (
    CHECKPOINT,
    DISCRIMINATOR,
    RunState,
    cosine_lr,
    discriminator,
    init_from,
    load_checkpoint,
    run,
    save_checkpoint,
    ship,
)
from semlink.train.growth import grow
from semlink.train.pixel_restorer import RECIPE
from semlink.train.restorer_data import Cache, build_cache, make_batch
from semlink.train.restorer_ship import REALISMS


@dataclass
class PerceptualRecipe:
    width: int = 48
    blocks: int = 8
    fine_width: int = 32
    fine_blocks: int = 4
    noise: int = 0
    """Full-size noise maps the network reads (:attr:`PixelRestorer.noise`); fresh
    uniform noise every step, :func:`~semlink.restore.network.hash_noise` when decoding."""
    edges: bool = True
    scale_input: bool = True
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    disc_lr: float = 2e-4
    l1: float = 1.0
    lpips: float = 1.0
    lpips_net: str = "vgg"
    texture: float = 0.0
    """Weight of :func:`texture_distance` (0: off)."""
    texture_depth: int = 5
    """How many of the texture network's taps the term reads, shallowest first: the deep
    ones' statistics follow the content the reference lost more than texture (VGG's 4th and
    5th move little when the original's own texture is put in)."""
    texture_net: str = "lpips"
    """Whose taps the texture term reads: ``lpips`` (the LPIPS network's, no extra cost) or
    ``taef2`` (the packaged TAEF2 encoder's first three stages, :class:`EncoderTaps`)."""
    max_bpp: float = 0.0
    """Train only on the cache's references below this rate (0: all of them). Below 0.04
    bpp every loss term rewards texture in the wrong place (LPIPS-VGG by 7% on 128-px crops);
    with the 0.055-0.2 bpp references mixed in, where the texture can be put in place,
    LPIPS-VGG penalises it (docs/perceptual.md)."""
    adv: float = 0.1
    adv_start: int = 200
    """Steps before the discriminator joins (L1 + LPIPS alone first)."""
    disc_width: int = 48
    edge_share: float = 0.5
    bf16: bool = True
    """Run the LPIPS network under bfloat16 autocast (2.4x faster on a CPU with AVX512-BF16;
    the loss moved by < 0.002 in a check)."""
    decay_steps: int = 0
    seed: int = 0

    def network(self) -> PixelRestorer:
        return PixelRestorer.from_recipe(asdict(self))


CACHE_PATH = "cache-path.txt"
"""A run directory's note of the shared restorer cache it was started with (``--cache``)."""


def conditional_discriminator(width: int = 48) -> nn.Module:
    """PatchGAN (spectral norm) over the picture and its Lanczos reference, 6 channels:
    one score per ~22-pixel patch."""
    return discriminator(width, channels=6, extra=1)


def decoded(
    model: PixelRestorer,
    lanczos: torch.Tensor,
    scale: torch.Tensor,
    edges: torch.Tensor | None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """The picture the decoder delivers at realism 1 (before clamping): the Lanczos picture
    plus the network's residual without its fixed grid pattern and its local mean colour,
    faded out on flat areas. ``noise``: the network's noise input (None: the decoder's)."""
    residual = detail_only(degrid(model(lanczos, scale, edges, noise) - lanczos))
    return lanczos + residual * activity(lanczos)


class EncoderTaps(nn.Module):
    """The first stages of TAEF2's encoder (a tiny autoencoder's, whose latents keep the
    texture its adversarially trained decoder draws; not a classifier's) as a texture
    backbone: its activations after the full-size, H/2 and H/4 stages, each unit-normalised
    over channels. On 16 training crops its window statistics (:func:`texture_distance`)
    fall 44 / 36 / 25% when the realism-1 picture is given the original's own high
    frequencies *moved* by (7, 11) pixels and rise 16 / 80 / 71% with Gaussian noise of the
    same local amplitude: what LPIPS-AlexNet and DISTS say of those two pictures, where
    LPIPS-VGG's taps reward the moved texture less (docs/perceptual.md). Frozen; pictures
    in [0, 1]."""

    TAPS = (1, 5, 9)

    def __init__(self, encoder: nn.Sequential) -> None:
        super().__init__()
        self.layers = nn.Sequential(*list(encoder)[: max(self.TAPS) + 1])
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.TAPS:
                taps.append(unit_channels(x))
        return taps


TEXTURE_CELL = 32
"""Side, in pixels, of the windows whose feature statistics :func:`texture_distance` compares."""


def texture_distance(
    fx: list[torch.Tensor], fy: list[torch.Tensor], side: int, cell: int = TEXTURE_CELL
) -> torch.Tensor:
    """How far two pictures' textures are apart, per picture: at each of the LPIPS network's
    taps (unit-normalised over channels), the per-channel mean and standard deviation over
    windows of about ``cell`` pixels, compared by L1 and summed over channels, averaged over
    windows and taps. It asks for feature *energy* where the original has it (what blur
    takes away and L1 or LPIPS, which compare positions, reward only when it lands in place)
    without asking where each feature sits (EnhanceNet's texture loss, with statistics
    instead of Gram matrices). ``side``: the pictures' width in pixels."""
    total = fx[0].new_zeros(fx[0].shape[0], dtype=torch.float32)
    for a, b in zip(fx, fy, strict=True):
        k = min(max(2, cell * a.shape[-1] // side), a.shape[-1], a.shape[-2])
        stats = []
        for t in (a.float(), b.float()):
            mean = F.avg_pool2d(t, k)
            std = (F.avg_pool2d(t * t, k) - mean * mean).clamp(min=1e-8).sqrt()
            stats.append((mean, std))
        (ma, sa), (mb, sb) = stats
        total = total + ((sa - sb).abs() + (ma - mb).abs()).sum(dim=1).mean(dim=(1, 2))
    return total / len(fx)


def _judge(disc: nn.Module, picture: torch.Tensor, lanczos: torch.Tensor) -> torch.Tensor:
    return disc(torch.cat([picture, lanczos], dim=1) * 2 - 1)


def training_step(
    model: PixelRestorer,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    recipe: PerceptualRecipe,
    perceptual: LPIPS,
    disc: tuple[nn.Module, torch.optim.Optimizer] | None,
    texture_taps: EncoderTaps | None = None,
) -> dict[str, float]:
    """One generator step and, with ``disc``, one discriminator step; the loss terms.
    ``texture_taps``: the texture term's network when the recipe's ``texture_net`` is not
    ``lpips``."""
    lanczos, original, edges, scale = batch
    model.train()
    optimizer.zero_grad()
    noise = None
    if model.noise:  # fresh every step: the decoder's fixed pattern is one draw of many
        shape = (lanczos.shape[0], model.noise, *lanczos.shape[2:])
        noise = (torch.rand(shape, device=lanczos.device) - 0.5) * 12**0.5
    image = decoded(model, lanczos, scale, edges, noise)
    l1 = (image - original).abs().mean()
    with torch.autocast(image.device.type, torch.bfloat16, enabled=recipe.bf16):
        fx = perceptual.normalized_taps(image.clamp(0, 1))
        fy = perceptual.normalized_taps(original)
        perc = perceptual.compare(fx, fy).float().mean()
    loss = recipe.l1 * l1 + recipe.lpips * perc
    terms = {"l1": float(l1.detach()), "lpips": float(perc.detach())}
    if recipe.texture:
        depth = recipe.texture_depth
        if recipe.texture_net != "lpips":
            if texture_taps is None:
                raise ValueError(f"texture_net {recipe.texture_net!r} needs its texture_taps")
            with torch.autocast(image.device.type, torch.bfloat16, enabled=recipe.bf16):
                fx, fy = texture_taps(image.clamp(0, 1)), texture_taps(original)
        texture = texture_distance(fx[:depth], fy[:depth], original.shape[-1]).mean()
        loss = loss + recipe.texture * texture
        terms["texture"] = float(texture.detach())
    if disc is not None:
        net, disc_opt = disc
        net.requires_grad_(False)
        gen = -_judge(net, image, lanczos).mean()
        loss = loss + recipe.adv * gen
        terms["gen"] = float(gen.detach())
    loss.backward()
    optimizer.step()
    terms["loss"] = float(loss.detach())
    if disc is not None:
        net, disc_opt = disc
        net.requires_grad_(True)
        disc_opt.zero_grad()
        real = F.relu(1 - _judge(net, original, lanczos)).mean()
        fake = F.relu(1 + _judge(net, image.detach(), lanczos)).mean()
        (real + fake).backward()
        disc_opt.step()
        terms["disc"] = float((real + fake).detach())
    return terms


def train(
    bsds: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: PerceptualRecipe | None = None,
    init: Path | None = None,
    cache: Path | None = None,
    device: str = "cpu",
    progress: Callable[[str, int, int], None] | None = None,
) -> RunState:
    """Train into ``out`` (resuming from its checkpoint when there is one, else starting
    from ``init``'s weights grown to the recipe's shape); ``cache``: a restorer cache to
    share (default ``out/cache.pt``, built when missing)."""
    from semlink.quality.perceptual import load_lpips

    recipe = recipe or PerceptualRecipe()
    texture_taps = _texture_taps(recipe)  # a recipe it refuses is refused before any work
    out.mkdir(parents=True, exist_ok=True)
    (out / RECIPE).write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    torch.manual_seed(recipe.seed)
    shared = out / CACHE_PATH  # a resumed run reads the cache it started with
    if cache is None and shared.exists():
        cache = Path(shared.read_text().strip())
    elif cache is not None:
        shared.write_text(f"{cache}\n")
    data = below(build_cache(bsds, cache or out / "cache.pt", seed=recipe.seed, high=1), recipe)
    model = recipe.network()
    if init is not None and not (out / CHECKPOINT).exists():
        init_from(model, init, grow)
    model.to(device)  # before the optimizers: a resumed state follows its parameters' device
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=(0.5, 0.999))
    state = load_checkpoint(out, model, optimizer)
    disc_net = conditional_discriminator(recipe.disc_width).to(device)
    disc_opt = torch.optim.Adam(disc_net.parameters(), lr=recipe.disc_lr, betas=(0.5, 0.999))
    load_checkpoint(out / DISCRIMINATOR, disc_net, disc_opt)
    perceptual = load_lpips(recipe.lpips_net).to(device)
    if texture_taps is not None:
        texture_taps.to(device)
    rng = random.Random(recipe.seed * 1_000_003 + state.step)  # resumed runs draw fresh crops
    log = (out / "terms.jsonl").open("a")

    def step() -> float:
        if recipe.decay_steps:
            cosine_lr(optimizer, recipe.lr, state.step, recipe.decay_steps)
        batch = make_batch(
            data, recipe.batch, recipe.crop, rng, recipe.edge_share, 0.0, True, scales=True
        )
        batch = tuple(t.to(device) for t in batch)  # type: ignore[assignment]
        disc = (disc_net, disc_opt) if recipe.adv and state.step >= recipe.adv_start else None
        terms = training_step(model, optimizer, batch, recipe, perceptual, disc, texture_taps)
        if (state.step + 1) % 10 == 0:
            log.write(json.dumps({"step": state.step + 1, **terms}) + "\n")
            log.flush()
        if (state.step + 1) % 50 == 0:
            save_checkpoint(out / DISCRIMINATOR, disc_net, disc_opt, state)
        return terms["loss"]

    state = run(
        step,
        state,
        steps=steps,
        minutes=minutes,
        out=out,
        model=model,
        optimizer=optimizer,
        title=f"lite perceptual restorer: L1 + LPIPS-{recipe.lpips_net} + GAN",
        progress=progress,
    )
    save_checkpoint(out / DISCRIMINATOR, disc_net, disc_opt, state)
    log.close()
    return state


def below(data: Cache, recipe: PerceptualRecipe) -> Cache:
    """The cache's references coded below the recipe's ``max_bpp`` (all when it is 0)."""
    if not recipe.max_bpp:
        return data
    keep = [i for i, bpp in enumerate(data["bpp"]) if float(bpp) < recipe.max_bpp]
    if not keep:
        raise ValueError(f"no reference in the cache is below {recipe.max_bpp} bpp")
    return {name: [column[i] for i in keep] for name, column in data.items()}


def _texture_taps(recipe: PerceptualRecipe) -> EncoderTaps | None:
    if recipe.texture_net not in ("lpips", "taef2"):
        raise ValueError(f"texture_net {recipe.texture_net!r}: lpips or taef2")
    if not recipe.texture or recipe.texture_net == "lpips":
        return None
    from semlink.models.taef2 import packaged_taef2

    taef2 = packaged_taef2()
    if taef2 is None:
        raise FileNotFoundError("texture_net taef2: the package has no data/taef2.safetensors")
    return EncoderTaps(taef2.encoder)


MAX_PSNR_LOSS = 1.5
"""How far below VVC's PSNR (same bytes, held-out photos) the default realism may go."""


def choose_realism(
    results: dict[str, dict[str, float]], max_psnr_loss: float = MAX_PSNR_LOSS
) -> float:
    """The default realism: of :data:`~semlink.train.restorer_ship.REALISMS`, the one with
    the lowest LPIPS (AlexNet) + DISTS whose PSNR is at most ``max_psnr_loss`` dB below
    the VVC baseline's on held-out photos; 0 when none is."""
    floor = results["vvc"]["psnr"] - max_psnr_loss
    fit = [r for r in REALISMS if results[f"realism {r}"]["psnr"] >= floor]
    if not fit:
        return 0.0
    return min(
        fit, key=lambda r: results[f"realism {r}"]["lpips"] + results[f"realism {r}"]["dists"]
    )


def ship_perceptual(out: Path, dest: Path, bsds: Path, limit: int = 20) -> Path:
    """Evaluate the run in ``out`` on ``limit`` held-out BSDS500 val photos at 0.03 bpp
    along the realism curve (with the fidelity network packaged in ``dest`` at realism 0),
    choose the default realism (:func:`choose_realism`) and write the fp16 weights and
    manifest as lite's realism network (:data:`~semlink.restore.pixel.SHIPPED`)."""
    from semlink.restore.pixel import FIDELITY, SHIPPED
    from semlink.train.restorer_ship import evaluate, packaged

    recipe = PerceptualRecipe(**json.loads((out / RECIPE).read_text()))
    model = recipe.network()
    state = load_checkpoint(out, model, torch.optim.Adam(model.parameters()))
    fidelity = packaged(dest, FIDELITY)
    results = evaluate(model.eval(), bsds, out / "val-baselines", limit, 0.03, fidelity)
    realism = choose_realism(results)
    return ship(
        dest,
        SHIPPED,
        model,
        state,
        {
            **asdict(recipe),
            "realism": realism,
            "recipe": "perceptual",
            "data": "BSDS500 train+test: 1200 VVC references (lite's rate control, two per "
            "photo from 0.015-0.055 bpp, one from 0.055-0.2 bpp) of their 400 photos, with "
            f"their first human segmentation; default realism chosen on {limit} val photos "
            f"at 0.03 bpp against the VVC baseline (lowest LPIPS + DISTS within "
            f"{MAX_PSNR_LOSS} dB of its PSNR), with the packaged {FIDELITY} at realism 0",
        },
        {f"bsds500_val_{limit}_at_0.03bpp": results},
    )
