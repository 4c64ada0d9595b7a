"""VVC (H.266) intra for the reference layer: Fraunhofer vvenc encodes, FFmpeg decodes.

Both run as a separate program: the static ffmpeg 9 that imageio-ffmpeg (pinned) ships,
which holds libvvenc and FFmpeg's native VVC decoder. Its VVC decoder runs single-threaded:
with frame threads it decodes some streams (128x192 at medium, for one) into a different,
broken picture from run to run. Pictures cross the pipe as raw 10-bit 4:2:0, converted
in integer arithmetic (:mod:`.yuv`), so a stream decodes to the same pixels on every
machine; streams are split into NAL units by :mod:`.nal`.

What the layer sends. A VVC stream of one picture is: access-unit delimiter, SPS, PPS
(about 180 bytes at these sizes), then adaptive parameter sets (ALF, LMCS) and the
slice. The encoder runs with one fixed configuration (:data:`CONFIGS`), and its SPS and
PPS then depend only on the picture size: the decoder rebuilds them from the parameter
sets vvenc wrote for that configuration at 64x64, with the size fields rewritten
(:mod:`semlink.streams.reference.vvcps`; no encoder runs). The payload carries only the
picture-level data:

    scale byte k (0: full size) | varint n | n x (varint length, NAL unit) | the slice NAL unit

NAL units keep their 2-byte headers; start codes are regenerated. The configuration
version is the codec id (8 = version 1, 9 = version 2, 10 = version 3, ids 8..15
reserved): a decoder refuses versions it does not know (``PacketVersionError`` ->
FAILED_PRECONDITION) rather than decoding a picture with the wrong parameter sets. The
encoder checks every stream's SPS/PPS against the template before it sends a stripped
layer.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from semlink import calls
from semlink.calls import Cancel
from semlink.packet.errors import PacketFormatError, PacketVersionError
from semlink.streams._varint import read_varint, write_varint
from semlink.streams.reference import vvcps
from semlink.streams.reference.base import (
    VVC_IDS,
    ReferenceCodec,
    scale_byte,
    scale_of,
    small_size,
)
from semlink.streams.reference.nal import REBUILT, annex_b, nal_type, nal_units, payload_size
from semlink.streams.reference.yuv import coded_size, padded, rgb_to_yuv420, yuv420_to_rgb

ENCODE_TIMEOUT_S = 60.0
DECODE_TIMEOUT_S = 20.0
MAX_QP = 63

_RAW_IN = ["-f", "rawvideo", "-pix_fmt", "yuv420p10le"]
_RAW_OUT = ["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-"]
_ONE_OUT = ["-frames:v", "1", "-f", "rawvideo", "-"]
"""NAL unit types the decoder regenerates; everything else is sent."""


class CodecUnavailableError(PacketVersionError):
    """The codec program this layer needs is missing on this machine."""


@dataclass(frozen=True)
class VvcConfig:
    """One fixed vvenc configuration; its version is the layer's codec id minus 7."""

    version: int
    preset: str
    qpa: bool
    """vvenc's perceptual QP adaptation (off: PSNR-optimal; the restorer adds texture)."""
    bit_depth: int = 10
    chroma: str = "420"
    params: str = ""
    """Extra vvenc settings on top of the preset (``-vvenc-params``, ``key=value:...``)."""

    @property
    def codec_id(self) -> int:
        return VVC_IDS.start + self.version - 1

    def encoder_args(self) -> list[str]:
        qpa = str(int(self.qpa))
        args = ["-c:v", "libvvenc", "-preset", self.preset, "-qpa", qpa, "-threads", "1"]
        return [*args, "-vvenc-params", self.params] if self.params else args


CONFIGS: dict[int, VvcConfig] = {
    1: VvcConfig(version=1, preset="medium", qpa=False),
    # 4x faster than medium per encode, -0.1 dB on BSDS500 val at 0.03 bpp (128x128 CTUs as
    # medium's: +0.02 dB over fast's 64x64 at the same time).
    2: VvcConfig(version=2, preset="fast", qpa=False, params="CTUSize=128"),
    # Version 2 without vvenc's MCTF pre-filter (on a lone picture it still runs, at
    # 0.01-0.1 s per encode) and its block-importance QP map (which needs MCTF; its
    # PPS enables a delta QP per coding unit). 24 BSDS500 val photos, lite at 0.03 / 0.05
    # bpp: PSNR at realism 0 22.558 / 23.601 dB (version 2: 22.558 / 23.610), MS-SSIM
    # 0.7845 / 0.8316 (0.7839 / 0.8317), HaarPSI 0.5431 / 0.6029 (0.5411 / 0.6020); encode
    # median 0.38 / 0.40 s (0.47 / 0.55 s).
    3: VvcConfig(version=3, preset="fast", qpa=False, params="CTUSize=128:MCTF=0:BIM=0"),
}
CURRENT = CONFIGS[3]


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg program (imageio-ffmpeg's, or ``IMAGEIO_FFMPEG_EXE``)."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise CodecUnavailableError(
            "VVC needs the ffmpeg program that imageio-ffmpeg ships (pip install "
            f"imageio-ffmpeg==0.8.1, see requirements.lock), or IMAGEIO_FFMPEG_EXE: {exc}"
        ) from exc


def ffmpeg_version() -> str:
    """imageio-ffmpeg's version: it fixes the ffmpeg, vvenc and decoder builds."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.__version__)
    except ImportError:
        return "missing"


def _run(
    args: list[str], data: bytes, timeout: float, what: str, cancel: Cancel | None = None
) -> bytes:
    """Run ffmpeg on ``data``; ``cancel`` (default: the running call's,
    :func:`semlink.calls.current`) kills it when set, and its reason is raised."""
    if cancel is None:
        cancel = calls.current()
    if cancel is not None:
        cancel.check()  # never start a process for work nobody waits for
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        if cancel is not None:
            cancel.track(process)
        try:
            stdout, stderr = process.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise PacketFormatError(
                f"{what} took longer than {timeout:.0f} s and was stopped"
            ) from exc
        finally:
            if cancel is not None:
                cancel.untrack(process)
        returncode = process.returncode
    if cancel is not None and cancel.reason is not None:
        raise cancel.reason
    if returncode != 0:
        reason = stderr.decode(errors="replace").strip().splitlines()
        raise PacketFormatError(f"{what} failed: {reason[-1] if reason else returncode}")
    return stdout


# --- the codec ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VvcCodec:
    """H.266 intra with one fixed vvenc configuration (the codec id carries its version)."""

    config: VvcConfig = CURRENT
    min_bpp: float = 0.03
    qualities: tuple[int, int] = (0, 51)
    """Quality q is QP 63 - q, for the baselines' search: QP 63 (q 0) to QP 12 (q 51); its
    bisection starts near QP 38 (lite's own rate control goes down to QP 0)."""

    @property
    def id(self) -> ReferenceCodec:
        return ReferenceCodec(self.config.codec_id)

    def encode_qp(
        self,
        image: NDArray[np.uint8],
        qp: float,
        cancel: Cancel | None = None,
        base: int | None = None,
    ) -> bytes:
        """The raw VVC stream (AUD, SPS, PPS, APS, slice) of ``image`` at ``qp``.

        A fractional ``qp`` codes at the next integer QP with the intra RD lambda scaled
        down by 2^((qp - QP) / 3), the lambda a QP of ``qp`` would have: a rate knob finer
        than QP steps (13% each at these rates) that leaves the parameter sets alone (the
        lambda is the encoder's choice, never sent). With ``base``, the QP is ``base`` and
        only the lambda follows ``qp`` (either way): sizes then move smoothly with ``qp``,
        without the ~7% step a QP change adds at each integer."""
        even = padded(np.ascontiguousarray(image))
        height, width = even.shape[:2]
        args = self.config.encoder_args()
        whole = math.ceil(qp) if base is None else base
        if whole != qp:
            scale = f"LambdaModifierI={2 ** ((qp - whole) / 3):.4f}"
            if "-vvenc-params" in args:
                args[args.index("-vvenc-params") + 1] += ":" + scale
            else:
                args += ["-vvenc-params", scale]
        return _run(
            [*_RAW_IN, "-s", f"{width}x{height}", "-i", "-", *args, "-qp", str(whole), *_ONE_OUT],
            rgb_to_yuv420(even),
            ENCODE_TIMEOUT_S,
            "VVC encoding",
            cancel,
        )

    def encode(self, image: NDArray[np.uint8], quality: int) -> bytes:
        return self.encode_qp(image, MAX_QP - quality)

    def decode(self, data: bytes, size: tuple[int, int]) -> NDArray[np.uint8]:
        width, height = size
        ew, eh = coded_size(width, height)
        raw = _run(
            ["-xerror", "-threads", "1", "-f", "vvc", "-i", "-", *_ONE_OUT[:2], *_RAW_OUT],
            data,
            DECODE_TIMEOUT_S,
            "VVC decoding of the reference layer",
        )
        expected = ew * eh * 3  # 1.5 samples per pixel, 2 bytes each
        if len(raw) != expected:
            raise PacketFormatError(
                f"reference layer's VVC stream decodes to {len(raw)} bytes of picture, "
                f"expected {expected} for {ew}x{eh}"
            )
        return yuv420_to_rgb(raw, ew, eh)[:height, :width]

    def parameter_sets(self, width: int, height: int) -> list[bytes]:
        """The NAL units the decoder rebuilds for a ``width`` x ``height`` small picture."""
        return list(vvcps.parameter_sets(self.config.version, *coded_size(width, height)))

    def pack(self, k: int, data: bytes, width: int, height: int) -> bytes:
        units = nal_units(data)
        rebuilt = [u for u in units if nal_type(u) in REBUILT]
        sent = [u for u in units if nal_type(u) not in REBUILT]
        if rebuilt != self.parameter_sets(*small_size(width, height, k)) or not sent:
            raise ValueError(
                "this VVC stream's parameter sets differ from the ones the decoder rebuilds: "
                f"not produced by VVC configuration version {self.config.version}"
            )
        head, slice_unit = sent[:-1], sent[-1]
        body = b"".join(write_varint(len(u)) + u for u in head)
        return bytes([scale_byte(k)]) + write_varint(len(head)) + body + slice_unit

    def unpack(self, payload: bytes, width: int, height: int) -> tuple[int, bytes]:
        if len(payload) < 4:
            raise PacketFormatError("VVC reference layer is shorter than its 4-byte minimum")
        k = scale_of(payload[0])
        count, offset = read_varint(payload, 1, "VVC NAL unit count")
        if count > 16:
            raise PacketFormatError(f"VVC reference layer claims {count} NAL units; at most 16")
        units = []
        for _ in range(count):
            length, offset = read_varint(payload, offset, "VVC NAL unit length")
            if length < 2 or offset + length > len(payload):
                raise PacketFormatError("VVC reference layer is cut short inside a NAL unit")
            units.append(payload[offset : offset + length])
            offset += length
            if nal_type(units[-1]) in REBUILT:
                raise PacketFormatError(
                    "VVC reference layer carries a parameter set or delimiter (NAL unit type "
                    f"{nal_type(units[-1])}); those are rebuilt from the packet header"
                )
        if len(payload) - offset < 3:
            raise PacketFormatError("VVC reference layer has no slice data")
        units.append(payload[offset:])
        return k, annex_b(self.parameter_sets(*small_size(width, height, k)) + units)


def encoder_parameter_sets(config: VvcConfig, width: int, height: int) -> tuple[bytes, ...]:
    """The AUD/SPS/PPS vvenc itself writes for a ``width`` x ``height`` coded picture (a
    flat grey one at QP 63): what :mod:`~semlink.streams.reference.vvcps` must reproduce."""
    grey = np.full((height, width, 3), 128, dtype=np.uint8)
    stream = VvcCodec(config).encode_qp(grey, MAX_QP)
    return tuple(u for u in nal_units(stream) if nal_type(u) in REBUILT)


VVC = VvcCodec()
"""lite's VVC: the current configuration."""
VVC_MEDIUM = VvcCodec(CONFIGS[1])
"""vvenc's default preset, as a standard user sends it: the baseline ``semlink eval`` uses."""


def codec_for(codec_id: int) -> VvcCodec:
    """The VVC codec of a layer's codec id; unknown configuration versions are refused."""
    version = codec_id - VVC_IDS.start + 1
    if version not in CONFIGS:
        known = ", ".join(f"{v} (codec id {c.codec_id})" for v, c in CONFIGS.items())
        raise PacketVersionError(
            f"reference layer was coded with VVC encoder configuration version {version} "
            f"(codec id {codec_id}); this decoder knows version {known}: decode it with the "
            "semlink release whose encoder made it"
        )
    return VvcCodec(CONFIGS[version])


__all__ = [
    "CONFIGS",
    "CURRENT",
    "MAX_QP",
    "VVC",
    "VVC_MEDIUM",
    "Cancel",
    "CodecUnavailableError",
    "VvcCodec",
    "VvcConfig",
    "codec_for",
    "coded_size",
    "encoder_parameter_sets",
    "ffmpeg_exe",
    "ffmpeg_version",
    "nal_type",
    "nal_units",
    "payload_size",
    "rgb_to_yuv420",
    "yuv420_to_rgb",
]
