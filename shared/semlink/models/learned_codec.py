"""A learned reference codec (compressai): a scale hyperprior, cheng2020-attn, and a scale
hyperprior over TAEF2 latents (decoded by TAEF2's decoder); :class:`LearnedCodec` codes a
picture into entropy-coded strings and back. Where the models come from (directories,
manifests, the package's, tiny ones) is :mod:`semlink.models.codecs`.

The bitstream is compressai's: its rANS coder over integer CDF tables that ``update()``
derives from the weights, indexed per symbol by scales the hyper-synthesis network computes.
Both are floating-point network outputs, so two machines (another CPU vector capability,
another thread count) can disagree on a table entry or on the index of a scale that lies on
a boundary, and the decoder would then rebuild other latents than the encoder coded: a
broken picture. Each layer therefore carries a CRC32C of everything the rANS decoder
consumes besides the string (the tables and every symbol's index, :meth:`LearnedCodec.check`);
the decoder recomputes it and refuses a mismatch (``EntropyMismatchError``, DATA_LOSS)
instead of returning a different picture. The hyperpriors' scales are computed in float64,
so that two machines disagree on an index only if their results differ in about the 15th
digit. The analysis transform (``g_a`` then ``h_a``) is the part an
edge device runs; it can run in onnxruntime (:mod:`semlink.models.onnx_edge`) while the
entropy coding stays here, so both paths produce the same bytes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import google_crc32c
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from torch import nn

from semlink.packet.errors import EntropyMismatchError
from semlink.streams.reference.learned import EntropyCoded

Architecture = Literal["bmshj2018-hyperprior", "cheng2020-attn", "taef2-latent-hyperprior"]
PAD = 64
"""Both architectures downsample by 64 (16 in g_a, 4 more in h_a): inputs are padded to it."""
LAYER_FORMAT = 2
"""Version of the learned reference layer. 2: the entropy-parameter check follows the model
index. It enters every learned codec's digest, hence the profile's model fingerprint, so a
packet of format 1 is refused as made for another model set (FAILED_PRECONDITION)."""


class LearnedCodecConfig(BaseModel):
    """One model file: its architecture, its rate point and its channel widths."""

    model_config = ConfigDict(extra="forbid")

    architecture: Architecture
    quality: int
    """Rate point, higher is more bytes (compressai zoo numbering, 1..8)."""
    N: int = 128
    M: int = 192
    """Latent channels (hyperpriors only; cheng2020-attn uses N)."""
    file: str = ""
    taef2_sha256: str = ""
    """taef2-latent-hyperprior: sha256 of the TAEF2 encoder and decoder files it was
    trained with, "encoder:decoder" (other TAEF2 weights are refused)."""


def latent_hyperprior(n: int = 96, m: int = 64) -> Any:
    """A scale hyperprior whose input is a TAEF2 latent (32 channels at H/8) instead of RGB:
    g_a halves the latent grid again, so with h_a the total downsampling is 64, as for the
    pixel codecs."""
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN
    from compressai.models import CompressionModel
    from compressai.models.utils import conv, deconv

    from semlink.models.taef2 import LATENT_CHANNELS

    class LatentHyperprior(CompressionModel):
        def __init__(self) -> None:
            super().__init__()
            self.entropy_bottleneck = EntropyBottleneck(n)
            self.gaussian_conditional = GaussianConditional(None)
            self.g_a = nn.Sequential(conv(LATENT_CHANNELS, n, 3, 1), GDN(n), conv(n, m, 5, 2))
            self.g_s = nn.Sequential(
                deconv(m, n, 5, 2), GDN(n, inverse=True), conv(n, LATENT_CHANNELS, 3, 1)
            )
            self.h_a = nn.Sequential(
                conv(m, n, 3, 1), nn.ReLU(), conv(n, n, 5, 2), nn.ReLU(), conv(n, n, 5, 2)
            )
            self.h_s = nn.Sequential(
                deconv(n, n, 5, 2),
                nn.ReLU(),
                deconv(n, n, 5, 2),
                nn.ReLU(),
                conv(n, m, 3, 1),
                nn.ReLU(),
            )

        def forward(self, z: torch.Tensor) -> dict[str, Any]:
            y = self.g_a(z)
            h = self.h_a(torch.abs(y))
            h_hat, h_likelihoods = self.entropy_bottleneck(h)
            y_hat, y_likelihoods = self.gaussian_conditional(y, self.h_s(h_hat))
            return {
                "z_hat": self.g_s(y_hat),
                "likelihoods": {"y": y_likelihoods, "h": h_likelihoods},
            }

    return LatentHyperprior()


def build(config: LearnedCodecConfig) -> Any:
    from compressai.models import Cheng2020Attention, ScaleHyperprior

    if config.architecture == "cheng2020-attn":
        return Cheng2020Attention(N=config.N)
    if config.architecture == "taef2-latent-hyperprior":
        return latent_hyperprior(config.N, config.M)
    return ScaleHyperprior(N=config.N, M=config.M)


def _is_autoregressive(model: nn.Module) -> bool:
    from compressai.models import JointAutoregressiveHierarchicalPriors

    return isinstance(model, JointAutoregressiveHierarchicalPriors)


class Analysis(nn.Module):
    """The edge's network: image in [0, 1] (padded to 64) -> latents y and hyper-latents z."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.g_a, self.h_a = model.g_a, model.h_a
        self.autoregressive = _is_autoregressive(model)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.g_a(x)
        z = self.h_a(y if self.autoregressive else torch.abs(y))
        return y, z


AnalysisRunner = Callable[[NDArray[np.float32]], tuple[NDArray[np.float32], NDArray[np.float32]]]


@dataclass
class LearnedCodec:
    config: LearnedCodecConfig
    model: Any
    """A compressai CompressionModel (untyped library)."""
    digest: str
    analysis_runner: AnalysisRunner | None = None
    """Replaces the PyTorch analysis transform (e.g. an onnxruntime session)."""
    taef2: Any = None
    """taef2-latent-hyperprior: the TAEF2 autoencoder whose latent space it codes."""
    _h_s64: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.config.architecture}-q{self.config.quality}"

    def analysis(self, x: NDArray[np.float32]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.analysis_runner is not None:
            y, z = self.analysis_runner(x)
            return torch.from_numpy(y), torch.from_numpy(z)
        with torch.no_grad():
            y, z = Analysis(self.model)(torch.from_numpy(x))
        return y, z

    def tables(self) -> bytes:
        """The integer tables the rANS coder reads (both entropy models' CDFs, their lengths
        and offsets): derived from the weights in floating point by ``update()``."""
        parts = []
        for entropy_model in (self.model.entropy_bottleneck, self.model.gaussian_conditional):
            for table in ("quantized_cdf", "cdf_length", "offset"):
                values = getattr(entropy_model, table).to(torch.int32).contiguous()
                parts.append(values.numpy().tobytes())
        return b"".join(parts)

    def check(self, indexes: NDArray[np.int32]) -> int:
        """CRC32C of the tables and the latent symbols' scale indexes in coding order."""
        crc = google_crc32c.value(self.tables())
        return int(google_crc32c.extend(crc, np.ascontiguousarray(indexes, np.int32).tobytes()))

    def _scale_indexes(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Scale indexes of the latents (non-autoregressive models): hyper-synthesis in
        float64, compared with the scale table."""
        if self._h_s64 is None:
            self._h_s64 = copy.deepcopy(self.model.h_s).double()
        scales = self._h_s64(z_hat.double())
        return self.model.gaussian_conditional.build_indexes(scales)

    @torch.no_grad()
    def compress(self, image: NDArray[np.uint8]) -> EntropyCoded:
        """(z string, y string, check) for an RGB image of any size (padded to 64 inside)."""
        x = _to_input(image)
        if self.taef2 is not None:
            x = self.taef2.encode(torch.from_numpy(x)).numpy()
        y, z = self.analysis(x)
        model = self.model
        z_strings = model.entropy_bottleneck.compress(z)
        z_hat = model.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        if _is_autoregressive(model):
            y_string, indexes = _compress_ar(model, y, z_hat)
        else:
            index_tensor = self._scale_indexes(z_hat)
            y_string = model.gaussian_conditional.compress(y, index_tensor)[0]
            indexes = index_tensor.numpy()
        return EntropyCoded(bytes(z_strings[0]), bytes(y_string), self.check(indexes))

    @torch.no_grad()
    def decompress(self, coded: EntropyCoded, width: int, height: int) -> NDArray[np.uint8]:
        """The picture of :meth:`compress`'s output. ``EntropyMismatchError`` when this
        machine computes other entropy parameters than the encoder did (its check differs):
        the latents it would decode are not the ones coded."""
        shape = (-(-height // PAD), -(-width // PAD))
        model = self.model
        z_hat = model.entropy_bottleneck.decompress([coded.z], shape)
        if _is_autoregressive(model):
            y_hat, indexes = _decompress_ar(model, coded.y, z_hat)
        else:
            index_tensor = self._scale_indexes(z_hat)
            y_hat = model.gaussian_conditional.decompress([coded.y], index_tensor, z_hat.dtype)
            indexes = index_tensor.numpy()
        found = self.check(indexes)
        if found != coded.check:
            raise EntropyMismatchError(self.name, coded.check, found)
        if self.taef2 is None:
            out = model.g_s(y_hat).clamp_(0, 1)[0, :, :height, :width]
        else:  # latents (not clamped) through TAEF2's decoder
            out = self.taef2.decode(model.g_s(y_hat))[0, :, :height, :width]
        return (out.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


_KERNEL, _PADDING = 5, 2
"""cheng2020-attn's context model: a 5x5 masked convolution."""


def _context_steps(
    model: Any, y_hat: torch.Tensor, z_hat: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[slice, slice]]]:
    """cheng2020-attn's latent positions in coding order (rows, then columns), each with
    what its context model predicts from the positions coded before it: the 5x5 crop of
    ``y_hat`` (padded latents) around it, its scales' indexes, its means and where it lies
    in ``y_hat``. The caller writes each position's coded value into ``y_hat`` before
    asking for the next (the next prediction reads it)."""
    conditional = model.gaussian_conditional
    params = model.h_s(z_hat)
    height, width = z_hat.shape[2] * 4, z_hat.shape[3] * 4
    weight = model.context_prediction.weight * model.context_prediction.mask
    for h in range(height):
        for w in range(width):
            crop = y_hat[:, :, h : h + _KERNEL, w : w + _KERNEL]
            context = F.conv2d(crop, weight, bias=model.context_prediction.bias)
            p = params[:, :, h : h + 1, w : w + 1]
            scales, means = model.entropy_parameters(torch.cat((p, context), 1)).chunk(2, 1)
            at = (slice(h + _PADDING, h + _PADDING + 1), slice(w + _PADDING, w + _PADDING + 1))
            yield crop, conditional.build_indexes(scales), means, at


def _compress_ar(model: Any, y: torch.Tensor, z_hat: torch.Tensor) -> tuple[bytes, NDArray[Any]]:
    """compressai's serial context-model coding, also returning every symbol's scale index
    in coding order (what :meth:`LearnedCodec.check` covers)."""
    from compressai.ans import BufferedRansEncoder

    conditional = model.gaussian_conditional
    y_hat = F.pad(y, (_PADDING,) * 4)
    symbols: list[int] = []
    indexes: list[int] = []
    for crop, index, means, (rows, columns) in _context_steps(model, y_hat, z_hat):
        centre = crop[:, :, _PADDING : _PADDING + 1, _PADDING : _PADDING + 1]
        y_q = conditional.quantize(centre, "symbols", means)
        y_hat[:, :, rows, columns] = y_q + means
        symbols.extend(y_q.flatten().tolist())
        indexes.extend(index.flatten().tolist())
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(
        symbols,
        indexes,
        conditional.quantized_cdf.tolist(),
        conditional.cdf_length.tolist(),
        conditional.offset.tolist(),
    )
    return encoder.flush(), np.asarray(indexes, np.int32)


def _decompress_ar(
    model: Any, y_string: bytes, z_hat: torch.Tensor
) -> tuple[torch.Tensor, NDArray[Any]]:
    """Inverse of :func:`_compress_ar`: the latents and the scale indexes it decoded with."""
    from compressai.ans import RansDecoder

    conditional = model.gaussian_conditional
    height, width = z_hat.shape[2] * 4, z_hat.shape[3] * 4
    y_hat = torch.zeros((1, model.M, height + 2 * _PADDING, width + 2 * _PADDING))
    cdf, lengths, offsets = (
        conditional.quantized_cdf.tolist(),
        conditional.cdf_length.tolist(),
        conditional.offset.tolist(),
    )
    decoder = RansDecoder()
    decoder.set_stream(y_string)
    indexes: list[int] = []
    for _, index_tensor, means, (rows, columns) in _context_steps(model, y_hat, z_hat):
        index = index_tensor.flatten().tolist()
        values = torch.tensor(
            decoder.decode_stream(index, cdf, lengths, offsets), dtype=torch.float32
        ).reshape(1, -1, 1, 1)
        y_hat[:, :, rows, columns] = conditional.dequantize(values, means)
        indexes.extend(index)
    return F.pad(y_hat, (-_PADDING,) * 4), np.asarray(indexes, np.int32)


def _to_input(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    height, width = image.shape[:2]
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    ph, pw = -height % PAD, -width % PAD
    return np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge"))
