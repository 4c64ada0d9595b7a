"""Recipe c: lite's restorer (:mod:`semlink.restore.pixel`), trained on VVC references.

Data: BSDS500 train + test (400 photos; val's 100 are held out), each coded the way lite
codes its reference, by the VVC rate control (:func:`fit_vvc`: the scales and QPs lite
picks) at two budgets drawn from 0.015-0.055 bpp (the fidelity recipe adds one from
0.055-0.2 bpp: the larger references lite picks on larger photos). Cached once
(``cache.pt``): the original (cropped to a multiple of 4), the Lanczos upsampling of the
decoded reference, its side share, and the first human segmentation's boundaries on the H/4
grid. Never Kodak.

Loss, per crop with its realism r drawn from [0, 1] (a quarter of the crops at r = 0):
(1 - r/2) x [L1 + 0.5 (1 - MS-SSIM)] against the original, plus r x ``adv_weight`` x a
hinge GAN loss from a spectral-norm PatchGAN discriminator (trained in the same step, its
loss on each fake weighted by that fake's r). At r = 0 the network is a plain fidelity
(L1/MS-SSIM) restorer; towards r = 1 it trades fidelity for texture.

The fidelity recipe (``--fidelity``, :data:`FIDELITY`) trains the network lite decodes
realism 0 with: every crop at r = 0, MSE (optionally + ``--ms-ssim-weight`` x (1 -
MS-SSIM), :func:`mse_loss`), no adversary.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image
from torch import nn

from semlink.imaging import resize
from semlink.restore.network import PixelRestorer, segment_edges
from semlink.restore.pixel import side_share
from semlink.streams.reference.base import small_size
from semlink.streams.reference.ratecontrol import fit_vvc
from semlink.streams.reference.vvc import VVC
from semlink.train.common import (
    CHECKPOINT,
    Adversary,
    RunState,
    bsds_photos,
    cosine_lr,
    init_from,
    load_adversary,
    load_checkpoint,
    run,
    save_adversary,
    ship,
)

RECIPE = "recipe.json"
"""The run directory's record of the recipe it was trained with (the manifest copies it)."""
BPP_RANGE = (0.015, 0.055)
HIGH_BPP_RANGE = (0.055, 0.2)
"""Budgets of the extra references a scale-aware network also learns from: on BSDS500's
481x321 photos these give the 1/2 to full-side references lite picks on larger, smoother
pictures at lower rates (Kodak at 0.03 bpp: 0.28-0.84 of the side)."""
MS_SSIM_MIN_CROP = 96
"""pytorch_msssim refuses pictures of this side or less with 7-pixel windows (it checks
room for 5 scales, whatever the weights ask)."""
MS_SSIM_SCALES = [0.3, 0.4, 0.3]
"""Weights of the fidelity network's MS-SSIM term at full, half and quarter size."""
OVERHEAD = 40
"""Bytes of a lite packet besides the reference layer (header, framing, short text)."""


@dataclass
class PixelRestorerRecipe:
    width: int = 48
    blocks: int = 8
    batch: int = 8
    crop: int = 96
    """Pixel crop side (a multiple of 4)."""
    lr: float = 5e-4
    edges: bool = True
    edge_share: float = 0.5
    """Share of crops that see the segmentation boundaries (the rest see zeros)."""
    adv_weight: float = 0.08
    disc_lr: float = 2e-4
    adv_start: int = 0
    """Steps of fidelity training before the discriminator joins (cheaper steps first)."""
    fidelity_share: float = 0.25
    """Share of crops trained at realism 0 exactly."""
    seed: int = 0
    fidelity_only: bool = False
    """The fidelity restorer (:data:`FIDELITY`): MSE at realism 0 on every crop, no
    adversary; lite decodes realism 0 with it."""
    decay_steps: int = 0
    """Cosine learning-rate decay to 0 over this many steps (0: constant)."""
    vflip: bool = False
    """Also flip crops vertically (at random)."""
    scale_input: bool = False
    """The fidelity network's FiLM input is each reference's side share instead of the
    realism (:attr:`PixelRestorer.scale_input`)."""
    high_budgets: int = 0
    """References per photo at :data:`HIGH_BPP_RANGE` besides the two at :data:`BPP_RANGE`."""
    fine_width: int = 0
    """Channels of the H/2 stage (:attr:`PixelRestorer.fine_width`; 0: none)."""
    fine_blocks: int = 0
    """Residual blocks of the H/2 stage."""
    ms_ssim_weight: float = 0.0
    """With :attr:`fidelity_only`: the loss is MSE + this x (1 - MS-SSIM) (:func:`mse_loss`)
    instead of MSE alone; needs crops over :data:`MS_SSIM_MIN_CROP` pixels."""

    def network(self) -> PixelRestorer:
        """A new network of this recipe's shape."""
        return PixelRestorer.from_recipe(asdict(self))

    def __post_init__(self) -> None:
        if self.ms_ssim_weight and self.crop <= MS_SSIM_MIN_CROP:
            raise ValueError(
                f"an MS-SSIM term needs crops over {MS_SSIM_MIN_CROP} pixels "
                f"(7-pixel windows); this recipe crops {self.crop}"
            )


FIDELITY = PixelRestorerRecipe(
    crop=128,
    lr=1e-3,
    adv_weight=0.0,
    fidelity_only=True,
    decay_steps=12000,
    vflip=True,
    scale_input=True,
    high_budgets=1,
)
"""Recipe of the fidelity restorer (``semlink train restorer --fidelity``)."""


def _depth(weights: dict[str, torch.Tensor]) -> int:
    """Residual blocks in a :class:`PixelRestorer`'s state dict."""
    return 1 + max(int(key.split(".")[1]) for key in weights if key.startswith("body."))


def deepen(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a :class:`PixelRestorer` with fewer residual blocks, made into ``model``'s
    (same width, more blocks) without changing what it computes: the new blocks come after
    the old ones and start as the identity (their second convolution zero, their FiLM
    scale and shift zero), their first convolutions as ``model`` initialised them. A
    network that stopped improving at its depth trains on from where it was."""
    own = model.state_dict()
    old, new = _depth(weights), _depth(own)
    if new <= old:
        return weights
    grown = dict(weights)
    for i in range(old, new):
        for key in (f"body.{i}.conv1.weight", f"body.{i}.conv1.bias"):
            grown[key] = own[key]
        for key in (f"body.{i}.conv2.weight", f"body.{i}.conv2.bias"):
            grown[key] = torch.zeros_like(own[key])
    # The FiLM's last layer gives (scale, shift) per block in block order: rows for the new
    # blocks are appended as zeros (no modulation).
    for key in ("film.2.weight", "film.2.bias"):
        extra = own[key].shape[0] - weights[key].shape[0]
        grown[key] = torch.cat([weights[key], weights[key].new_zeros(extra, *own[key].shape[1:])])
    return grown


def widen(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a narrower :class:`PixelRestorer` made into ``model``'s width (same or
    fewer blocks) without changing what it computes: the new feature channels start at
    zero (``head``'s new rows zero) and stay zero (each block's second convolution writes
    nothing into them), and the old channels read nothing from the new ones (each block's
    second convolution reads none of its new inputs, ``tail`` none of its); the new first
    convolutions keep ``model``'s initialisation, so the second ones get a gradient at once.
    The FiLM rows of the new channels are zero (no modulation)."""
    own = model.state_dict()
    old, new = weights["head.weight"].shape[0], own["head.weight"].shape[0]
    if new <= old:
        return weights
    grown = dict(weights)

    def put(key: str, base: torch.Tensor) -> None:
        """``base`` with the old weights in its leading rows (and columns)."""
        value = base.clone()
        value[tuple(slice(0, n) for n in weights[key].shape)] = weights[key]
        grown[key] = value

    put("head.weight", torch.zeros_like(own["head.weight"]))
    put("head.bias", torch.zeros_like(own["head.bias"]))
    for key in weights:  # blocks only a deeper model has are deepen's business
        if key.startswith("body.") and ".conv1." in key:
            put(key, own[key])
        elif key.startswith("body."):  # conv2: nothing into the new, nothing read from them
            put(key, torch.zeros_like(own[key]))
    put("tail.weight", torch.zeros_like(own["tail.weight"]))
    if "fine_head.weight" in weights:
        # The fine stage reads the features depth-to-space by 2: the new channels arrive
        # as new context channels after the old ones, and are zero; it reads none of them.
        if weights["fine_head.weight"].shape[0] != own["fine_head.weight"].shape[0]:
            raise ValueError("widening a network's fine stage is not supported")
        put("fine_head.weight", torch.zeros_like(own["fine_head.weight"]))
    # The FiLM's last layer: (scale, shift) per old block, each ``width`` rows long.
    for key in ("film.2.weight", "film.2.bias"):
        chunks = weights[key].split(old)
        grown[key] = torch.cat(
            [torch.cat([c, c.new_zeros(new - old, *c.shape[1:])]) for c in chunks]
        )
    return grown


def refine(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a :class:`PixelRestorer` without a fine stage given ``model``'s, as
    ``model`` initialised it: its last convolution and FiLM rows are zero, so the network
    computes what the old one did and the fine stage learns from there."""
    if any(key.startswith("fine_") for key in weights):
        return weights
    return {**weights, **{k: v for k, v in model.state_dict().items() if k.startswith("fine_")}}


def grow(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """:func:`widen`, then :func:`deepen`, then :func:`refine`: a smaller network's weights
    in ``model``'s shape, computing what they did."""
    return refine(deepen(widen(weights, model), model), model)


def coded_reference(image: NDArray[np.uint8], bpp: float) -> NDArray[np.uint8] | None:
    """The decoded small reference lite would send at ``bpp`` (VVC rate control)."""
    height, width = image.shape[:2]
    budget = int(bpp * width * height / 8) - OVERHEAD
    found = fit_vvc(image, budget)
    if found is None:
        return None
    return VVC.decode(found.data, small_size(width, height, found.k))


def _labels(bsds: Path, photo: Path) -> NDArray[np.integer]:
    from scipy.io import loadmat

    mat = bsds / "groundTruth" / photo.parent.name / f"{photo.stem}.mat"
    labels: NDArray[np.integer] = loadmat(mat)["groundTruth"][0, 0]["Segmentation"][0, 0]
    return labels


Cache = dict[str, list[torch.Tensor]]


def build_cache(
    bsds: Path,
    path: Path,
    splits: tuple[str, ...] = ("train", "test"),
    per_photo: int = 2,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    high: int = 0,
) -> Cache:
    """Originals, Lanczos-upsampled VVC references (both uint8, H x W x 3), segment
    boundaries (uint8, H/4 x W/4) and the references' side shares, ``per_photo`` budgets
    per photo from :data:`BPP_RANGE` and ``high`` more from :data:`HIGH_BPP_RANGE`; cached
    at ``path``. Resumes a partial cache (``path`` + ``.part``) left by an interrupted run."""
    if path.exists():
        cached: Cache = torch.load(path, weights_only=True)
        return cached
    part = path.with_suffix(".part")
    cache: Cache = {"originals": [], "lanczos": [], "edges": [], "bpp": [], "scale": []}
    done = 0
    if part.exists():
        saved = torch.load(part, weights_only=True)
        cache, done = saved["cache"], int(saved["done"])
    photos = bsds_photos(bsds, splits)[:limit]
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(photos):
        if i < done:
            continue
        rng = random.Random(seed * 1_000_003 + i)
        image = np.asarray(Image.open(photo).convert("RGB"))
        height, width = (image.shape[0] // 4) * 4, (image.shape[1] // 4) * 4
        image = np.ascontiguousarray(image[:height, :width])
        edges = segment_edges(_labels(bsds, photo), width // 4, height // 4)
        budgets = [rng.uniform(*BPP_RANGE) for _ in range(per_photo)]
        budgets += [rng.uniform(*HIGH_BPP_RANGE) for _ in range(high)]
        for bpp in budgets:
            small = coded_reference(image, bpp)
            if small is None:
                continue
            cache["originals"].append(torch.from_numpy(image.copy()))
            cache["lanczos"].append(torch.from_numpy(resize(small, width, height).copy()))
            cache["edges"].append(torch.from_numpy(edges.astype(np.uint8)))
            cache["bpp"].append(torch.tensor(bpp))
            cache["scale"].append(torch.tensor(side_share(small, width, height)))
        if (i + 1) % 20 == 0:
            torch.save({"cache": cache, "done": i + 1}, part)
        if progress:
            progress(i + 1, len(photos))
    torch.save(cache, path)
    part.unlink(missing_ok=True)
    return cache


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def make_batch(
    cache: Cache,
    size: int,
    crop: int,
    rng: random.Random,
    edge_share: float,
    fidelity: float,
    vflip: bool = False,
    scales: bool = False,
) -> Batch:
    """(Lanczos crops, original crops, edges at H/4, realism per crop) of ``size`` random
    crops, randomly flipped (left-right; with ``vflip`` also upside down); ``edge_share``
    see their edges, the rest zeros. With ``scales`` the last is each crop's reference side
    share instead (a scale-aware fidelity network's FiLM input)."""
    xs, ys, es, rs = [], [], [], []
    for _ in range(size):
        i = rng.randrange(len(cache["originals"]))
        original, lanczos, edges = cache["originals"][i], cache["lanczos"][i], cache["edges"][i]
        h, w = original.shape[:2]
        top, left = 4 * rng.randrange((h - crop) // 4 + 1), 4 * rng.randrange((w - crop) // 4 + 1)
        x = lanczos[top : top + crop, left : left + crop].permute(2, 0, 1).float() / 255.0
        y = original[top : top + crop, left : left + crop].permute(2, 0, 1).float() / 255.0
        e = torch.zeros(1, crop // 4, crop // 4)
        if rng.random() < edge_share:
            e[0] = edges[top // 4 : (top + crop) // 4, left // 4 : (left + crop) // 4].float()
        if rng.random() < 0.5:
            x, y, e = x.flip(-1), y.flip(-1), e.flip(-1)
        if vflip and rng.random() < 0.5:
            x, y, e = x.flip(-2), y.flip(-2), e.flip(-2)
        xs.append(x)
        ys.append(y)
        es.append(e)
        r = 0.0 if rng.random() < fidelity else rng.random()  # drawn either way: same crops
        rs.append(float(cache["scale"][i]) if scales else r)
    return torch.stack(xs), torch.stack(ys), torch.stack(es), torch.tensor(rs)


def fidelity_loss(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per crop: L1 + 0.5 (1 - MS-SSIM) (3 scales, 3x3 windows: fits 64-pixel crops)."""
    from pytorch_msssim import ms_ssim

    ms = ms_ssim(
        image, target, data_range=1.0, win_size=3, weights=[0.3, 0.4, 0.3], size_average=False
    )
    l1: torch.Tensor = (image - target).abs().mean(dim=(1, 2, 3))
    return l1 + 0.5 * (1 - ms)


def mse_loss(
    image: torch.Tensor, target: torch.Tensor, ms_ssim_weight: float = 0.0
) -> torch.Tensor:
    """The fidelity network's loss over a batch: mean squared error, plus ``ms_ssim_weight``
    x (1 - MS-SSIM) of the picture clamped to [0, 1] as it is delivered (7-pixel windows,
    :data:`MS_SSIM_SCALES`). MSE alone is blind to the structure of what it cannot
    restore; the term moves the network's guesses towards the local contrast and
    structure MS-SSIM scores, at the cost of a little PSNR."""
    error = F.mse_loss(image, target)
    if not ms_ssim_weight:
        return error
    from pytorch_msssim import ms_ssim

    ms = ms_ssim(image.clamp(0, 1), target, data_range=1.0, win_size=7, weights=MS_SSIM_SCALES)
    return error + ms_ssim_weight * (1 - ms)


def training_step(
    model: PixelRestorer,
    optimizer: torch.optim.Optimizer,
    lanczos: torch.Tensor,
    original: torch.Tensor,
    edges: torch.Tensor,
    realism: torch.Tensor,
    adversary: Adversary | None = None,
    mse: bool = False,
    ms_ssim_weight: float = 0.0,
) -> float:
    """One generator step (then, with ``adversary``, one discriminator step); the mean
    fidelity loss at this batch (with ``mse``, :func:`mse_loss` with ``ms_ssim_weight`` is
    the loss)."""
    model.train()
    optimizer.zero_grad()
    image = model(lanczos, realism, edges)
    if mse:
        error = mse_loss(image, original, ms_ssim_weight)
        error.backward()
        optimizer.step()
        return float(error.detach())
    fid = fidelity_loss(image, original)
    loss = ((1 - realism / 2) * fid).mean()
    if adversary is not None:
        for p in adversary.net.parameters():
            p.requires_grad_(False)
        scores = adversary.net(image * 2 - 1).mean(dim=(1, 2, 3))
        loss = loss - adversary.weight * (realism * scores).mean()
    loss.backward()
    optimizer.step()
    if adversary is not None and float(realism.sum()) > 0:
        discriminator_step(adversary, original, image.detach(), realism)
    return float(fid.mean().detach())


def discriminator_step(
    adversary: Adversary, real: torch.Tensor, fake: torch.Tensor, realism: torch.Tensor
) -> float:
    """Hinge loss; each fake weighted by its realism (fakes at r = 0 are not its business)."""
    net = adversary.net
    for p in net.parameters():
        p.requires_grad_(True)
    adversary.optimizer.zero_grad()
    real_loss = F.relu(1 - net(real * 2 - 1)).mean()
    fake_scores = F.relu(1 + net(fake * 2 - 1)).mean(dim=(1, 2, 3))
    loss = real_loss + (realism * fake_scores).sum() / realism.sum()
    loss.backward()
    adversary.optimizer.step()
    return float(loss.detach())


def train(
    bsds: Path,
    out: Path,
    *,
    steps: int,
    minutes: float | None = None,
    recipe: PixelRestorerRecipe | None = None,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    init: Path | None = None,
) -> RunState:
    """Train, resuming from ``out/checkpoint.pt`` when present, else starting from the
    weights of the checkpoint ``init`` (a fine-tune: fresh optimizer, steps counted from
    0); writes a loss curve."""
    recipe = recipe or PixelRestorerRecipe()
    out.mkdir(parents=True, exist_ok=True)
    (out / RECIPE).write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    cache = build_cache(
        bsds,
        out / "cache.pt",
        seed=recipe.seed,
        limit=limit,
        progress=None if progress is None else lambda i, n: progress("caching BSDS500", i, n),
        high=recipe.high_budgets,
    )
    if recipe.scale_input and "scale" not in cache:
        raise ValueError(
            f"{out / 'cache.pt'} was built without the references' scales; delete it "
            "(or train into a new directory) to rebuild it"
        )
    model = recipe.network()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    if init is not None and not (out / CHECKPOINT).exists():
        init_from(model, init, grow)
    state = load_checkpoint(out, model, optimizer)
    adversary = None
    if recipe.adv_weight > 0 and not recipe.fidelity_only:
        adversary = load_adversary(out, recipe.adv_weight, recipe.disc_lr)
    rng.seed(recipe.seed * 1_000_003 + state.step)  # resumed runs draw fresh crops

    def step() -> float | None:
        if recipe.decay_steps:
            cosine_lr(optimizer, recipe.lr, state.step, recipe.decay_steps)
        share = 1.0 if recipe.fidelity_only else recipe.fidelity_share
        batch = make_batch(
            cache,
            recipe.batch,
            recipe.crop,
            rng,
            recipe.edge_share,
            share,
            recipe.vflip,
            recipe.scale_input,
        )
        active = adversary if state.step >= recipe.adv_start else None
        loss = training_step(
            model,
            optimizer,
            *batch,
            active,
            mse=recipe.fidelity_only,
            ms_ssim_weight=recipe.ms_ssim_weight,
        )
        if active is not None and (state.step + 1) % 50 == 0:
            save_adversary(out, active, state)
        return loss

    state = run(
        step,
        state,
        steps=steps,
        minutes=minutes,
        out=out,
        model=model,
        optimizer=optimizer,
        title=(
            "lite fidelity restorer: MSE"
            + (f" + {recipe.ms_ssim_weight:g} (1 - MS-SSIM)" if recipe.ms_ssim_weight else "")
        )
        if recipe.fidelity_only
        else "lite restorer: fidelity loss (L1 + 0.5 (1 - MS-SSIM))",
        progress=progress,
    )
    if adversary is not None:
        save_adversary(out, adversary, state)
    return state


REALISMS = (0.0, 0.25, 0.5, 0.75, 1.0)


def evaluate(
    model: PixelRestorer,
    bsds: Path,
    cache: Path,
    limit: int = 20,
    bpp: float = 0.03,
    fidelity: PixelRestorer | None = None,
) -> dict[str, dict[str, float]]:
    """Mean PSNR / MS-SSIM / HaarPSI / NIQE / LPIPS / DISTS on held-out BSDS500 val photos
    at ``bpp``: the VVC baseline (a standard VVC file, downscale search, same bytes;
    searches cached in ``cache``), lite's reference with Lanczos, and the restorer
    (``model``, with the ``fidelity`` network at its realism-0 end) at every realism in
    :data:`REALISMS`."""
    from semlink.eval.harness import standard_baseline
    from semlink.quality.metrics import all_metrics
    from semlink.restore.pixel import restore
    from semlink.streams.reference import ReferenceCodec

    totals: dict[str, dict[str, list[float]]] = {}
    model.eval()
    for photo in bsds_photos(bsds, ("val",))[:limit]:
        image = np.asarray(Image.open(photo).convert("RGB"))
        height, width = image.shape[:2]
        small = coded_reference(image, bpp)
        vvc = standard_baseline(image, int(bpp * width * height / 8), ReferenceCodec.VVC, cache)
        if small is None or vvc is None:
            continue
        outputs = {"vvc": vvc, "lanczos": resize(small, width, height)}
        for r in REALISMS:
            outputs[f"realism {r}"] = restore(small, width, height, model, r, None, fidelity)
        for name, decoded in outputs.items():
            for metric, value in all_metrics(image, decoded).items():
                if metric in ("psnr", "ms_ssim", "haarpsi", "niqe", "lpips", "dists"):
                    totals.setdefault(name, {}).setdefault(metric, []).append(value)
    return {
        name: {k: round(float(np.mean(v)), 4) for k, v in metrics.items()}
        for name, metrics in totals.items()
    }


def choose_realism(results: dict[str, dict[str, float]], max_psnr_loss: float = 0.2) -> float:
    """The default realism: the most realistic (lowest NIQE) setting that, against the VVC
    baseline on held-out photos, has higher MS-SSIM and HaarPSI, lower NIQE and at most
    ``max_psnr_loss`` dB less PSNR (the issue's bar for the default); 0 when none does."""
    base = results["vvc"]
    fit = [
        r
        for r in REALISMS
        if results[f"realism {r}"]["psnr"] >= base["psnr"] - max_psnr_loss
        and results[f"realism {r}"]["ms_ssim"] > base["ms_ssim"]
        and results[f"realism {r}"]["haarpsi"] > base["haarpsi"]
        and results[f"realism {r}"]["niqe"] < base["niqe"]
    ]
    if not fit:
        return 0.0
    return min(fit, key=lambda r: results[f"realism {r}"]["niqe"])


def _packaged(dest: Path, name: str) -> PixelRestorer | None:
    """The network ``name`` already shipped in ``dest`` (None when it has none)."""
    from semlink.restore.pixel import load_network

    found = load_network(name, dest)
    return None if found is None else found[0]


def ship_restorer(out: Path, dest: Path, bsds: Path, note: str = "") -> Path:
    """Evaluate the run in ``out`` on held-out photos and write fp16 weights + manifest
    into ``dest``: the realism network (choosing its default realism), or, for a
    ``fidelity_only`` run, the fidelity network (evaluated with the realism network
    already in ``dest``)."""
    from semlink.restore.pixel import FIDELITY, SHIPPED

    recipe = PixelRestorerRecipe()
    if (out / RECIPE).exists():
        recipe = PixelRestorerRecipe(**json.loads((out / RECIPE).read_text()))
    model = recipe.network()
    optimizer = torch.optim.Adam(model.parameters())
    state = load_checkpoint(out, model, optimizer)
    if recipe.fidelity_only:
        texture = _packaged(dest, SHIPPED)
        if texture is None:
            raise FileNotFoundError(f"{dest / SHIPPED}.json: ship the realism network first")
        results = evaluate(texture, bsds, out / "val-baselines", fidelity=model.eval())
        realism = 0.0
        name, what = FIDELITY, "the fidelity network (MSE at realism 0)"
    else:
        # The default realism is chosen over the blend with the packaged fidelity network.
        fidelity = _packaged(dest, FIDELITY)
        results = evaluate(model, bsds, out / "val-baselines", fidelity=fidelity)
        realism = choose_realism(results)
        name, what = SHIPPED, "default realism chosen"
        if fidelity is not None:
            what += f" with the packaged {FIDELITY} at the realism-0 end"
    originals = torch.load(out / "cache.pt", weights_only=True)["originals"]
    extra = ""
    if recipe.high_budgets:
        low, high = HIGH_BPP_RANGE
        extra = f", {recipe.high_budgets} per photo from {low}-{high} bpp"
    samples = len(originals)
    photos = len({hashlib.sha256(o.numpy().tobytes()).hexdigest() for o in originals})
    return ship(
        dest,
        name,
        model,
        state,
        {
            **asdict(recipe),
            "realism": realism,
            "recipe": "restorer",
            "data": f"BSDS500 train+test: {samples} VVC references (lite's rate control, "
            f"budgets drawn from {BPP_RANGE[0]}-{BPP_RANGE[1]} bpp{extra}) of {photos} of "
            "their 400 "
            f"photos, with their first human segmentation; {what}, evaluated on 20 val "
            "photos against the VVC baseline",
            "note": note,
        },
        {"bsds500_val_20_at_0.03bpp": results},
    )
