"""VVC parameter sets written for a picture size, without running an encoder.

lite's VVC layer leaves out the access-unit delimiter, SPS and PPS: with one fixed vvenc
configuration they depend only on the picture size, and the decoder rebuilds them. They used
to be rebuilt by coding a flat grey picture of that size with vvenc (0.06-0.2 s per size, on
the encoder's critical path once per packet and again in every decode). This module writes
them directly: each configuration keeps the parameter sets vvenc wrote for a 64x64 picture
(:data:`TEMPLATES`), and for another size the fields that depend on the size are rewritten:

- ``general_level_idc`` in the SPS's profile_tier_level, chosen by vvenc's own rule
  (``LevelTierFeatures::getLevelForInput``: the first level whose maximum picture side and
  luma sample rate at 25 pictures a second admit the picture; :func:`level_idc`);
- ``sps_pic_width/height_max_in_luma_samples`` and ``pps_pic_width/height_in_luma_samples``:
  the size padded to a multiple of 8 (vvenc's minimum coding-unit grid);
- the SPS conformance window that crops the padding (right and bottom offsets in chroma
  units; the PPS inherits it).

Everything after those fields is copied bit for bit and re-aligned (``ue(v)`` fields change
length), and emulation-prevention bytes are recomputed. tests/test_vvc.py checks the result
against vvenc's own parameter sets over many sizes for every configuration, and the encoder
compares each stream's parameter sets with these before it strips them, so a mismatch can
never reach a packet.
"""

from __future__ import annotations

import math
from functools import lru_cache

PAD = 8
"""vvenc codes a picture padded to a multiple of 8 luma samples and crops it back."""
FRAME_RATE = 25
"""ffmpeg's rate for a raw picture on a pipe: part of vvenc's level rule."""

_LEVELS = (
    # (general_level_idc, MaxLumaPs, MaxLumaSr): H.266 Table A.8/A.9, as vvenc tabulates them
    (16, 36_864, 552_960),
    (32, 122_880, 3_686_400),
    (35, 245_760, 7_372_800),
    (48, 552_960, 16_588_800),
    (51, 983_040, 33_177_600),
    (64, 2_228_224, 66_846_720),
    (67, 2_228_224, 133_693_440),
    (80, 8_912_896, 267_386_880),
    (83, 8_912_896, 534_773_760),
    (86, 8_912_896, 1_069_547_520),
    (96, 35_651_584, 1_069_547_520),
    (99, 35_651_584, 2_139_095_040),
    (102, 35_651_584, 4_278_190_080),
    (105, 80_216_064, 4_812_963_840),
)
LEVEL_15_5 = 255

_FAST_SPS = (
    "007900ad021080000080820411a801cde884d149ef384d958c10209c00ca0c5842183110819220d48"
    "7a3d5a92f249a92c9116a22f1126a22452444992224d4659210b5085e10bd5a92f25ea19418b100c5880"
    "810810102a102020690810102c408081104040b2080812101064081108102c8408122041a08124107083"
    "2045a104908710d0972395f7a5d8ace48000003000800000300c8c4"
)
"""The SPS of configurations 2 and 3 (vvenc fast, 128x128 CTUs) at 64x64."""

TEMPLATES: dict[int, tuple[str, str, str]] = {
    # configuration version -> (AUD, SPS, PPS) vvenc wrote for a 64x64 picture (hex, NAL
    # header included). imageio-ffmpeg 0.8.1's ffmpeg 9.0.2 with libvvenc.
    1: (
        "00a188",
        "007900ad021080000080820411a801cdd36e991a4526f384d958c10209c00ca0c5842183110819220d48"
        "7a3d5a92f249a92c9116a22f1126a22452444992224d4659210b5085e10bd5a92f25ea19418b100c5880"
        "810810102a102020690810102c408081104040b2080812101064081108102c8408122041a08124107083"
        "2045a104908710d0972395ffa5d97f9c900000030010000003019188",
        "008100004102088907ec08",
    ),
    2: ("00a188", _FAST_SPS, "008100004102088907ec08"),
    # 3 is 2 without MCTF and its block-importance map: the PPS no longer enables a delta QP
    # per coding unit (one bit); the SPS is the same.
    3: ("00a188", _FAST_SPS, "008100004102088905ec08"),
}


def level_idc(width: int, height: int) -> int:
    """vvenc's automatic level for a ``width`` x ``height`` picture at 25 pictures/s."""
    rate = FRAME_RATE * width * height
    for idc, max_luma_ps, max_luma_sr in _LEVELS:
        side = int(math.sqrt(max_luma_ps * 8.0))
        if width <= side and height <= side and rate <= max_luma_sr:
            return idc
    return LEVEL_15_5


# --- bits -------------------------------------------------------------------------------


def _rbsp(unit: bytes) -> bytes:
    """A NAL unit's payload without its 2-byte header and emulation-prevention bytes."""
    out = bytearray()
    zeros = 0
    for byte in unit[2:]:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _nal(header: bytes, rbsp: bytes) -> bytes:
    """``header`` + ``rbsp`` with emulation-prevention bytes inserted."""
    out = bytearray(header)
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos : self.pos + n] or "0", 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        self.pos += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def align(self) -> None:
        self.pos += -self.pos % 8

    def payload_tail(self) -> str:
        """The bits left before the rbsp_trailing_bits (the last 1 and its zeros)."""
        return self.bits[self.pos : self.bits.rindex("1")]


def _ue(value: int) -> str:
    code = f"{value + 1:b}"
    return "0" * (len(code) - 1) + code


def _u(value: int, n: int) -> str:
    return f"{value:0{n}b}"


def _bytes(bits: str) -> bytes:
    bits += "1" + "0" * (-(len(bits) + 1) % 8)  # rbsp_trailing_bits
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def padded_size(width: int, height: int) -> tuple[int, int]:
    """The picture vvenc codes for a ``width`` x ``height`` one: sides rounded up to
    :data:`PAD`; the conformance window crops the rest."""
    return -(-width // PAD) * PAD, -(-height // PAD) * PAD


def _window(width: int, height: int) -> tuple[int, int, str]:
    """Padded size and the conformance window's bits (flag and offsets, 4:2:0 units)."""
    pw, ph = padded_size(width, height)
    if (pw, ph) == (width, height):
        return pw, ph, "0"
    offsets = (0, (pw - width) // 2, 0, (ph - height) // 2)
    return pw, ph, "1" + "".join(_ue(o) for o in offsets)


def _sps(unit: bytes, width: int, height: int) -> bytes:
    r = _Reader(_rbsp(unit))
    r.u(4 + 4)  # sps_seq_parameter_set_id, sps_video_parameter_set_id
    sublayers = r.u(3)
    r.u(2 + 2)  # sps_chroma_format_idc, sps_log2_ctu_size_minus5
    if not r.u(1):  # sps_ptl_dpb_hrd_params_present_flag
        raise ValueError("template SPS has no profile_tier_level")
    r.u(7 + 1)  # general_profile_idc, general_tier_flag
    level_at = r.pos
    r.u(8)  # general_level_idc
    r.u(1 + 1)  # ptl_frame_only_constraint_flag, ptl_multilayer_enabled_flag
    if r.u(1):  # gci_present_flag
        raise ValueError("template SPS carries general constraints info")
    r.align()
    present = [r.u(1) for _ in range(sublayers)]
    r.align()
    r.u(8 * sum(present))  # sublayer_level_idc
    r.u(32 * r.u(8))  # ptl_num_sub_profiles, general_sub_profile_idc
    r.u(1)  # sps_gdr_enabled_flag
    if r.u(1):  # sps_ref_pic_resampling_enabled_flag
        r.u(1)
    head = r.bits[:level_at] + _u(level_idc(width, height), 8) + r.bits[level_at + 8 : r.pos]
    r.ue()
    r.ue()
    if r.u(1):  # sps_conformance_window_flag
        for _ in range(4):
            r.ue()
    pw, ph, window = _window(width, height)
    return _nal(unit[:2], _bytes(head + _ue(pw) + _ue(ph) + window + r.payload_tail()))


def _pps(unit: bytes, width: int, height: int) -> bytes:
    r = _Reader(_rbsp(unit))
    r.u(6 + 4 + 1)  # pps_pic_parameter_set_id, pps_seq_parameter_set_id, mixed nalu types
    head = r.bits[: r.pos]
    r.ue()
    r.ue()
    if r.u(1):  # pps_conformance_window_flag: 0 when the size equals the SPS's
        raise ValueError("template PPS has its own conformance window")
    pw, ph, _ = _window(width, height)
    return _nal(unit[:2], _bytes(head + _ue(pw) + _ue(ph) + "0" + r.payload_tail()))


@lru_cache(maxsize=256)
def parameter_sets(version: int, width: int, height: int) -> tuple[bytes, ...]:
    """AUD, SPS and PPS of configuration ``version`` for a ``width`` x ``height`` coded
    picture (even sides), as vvenc writes them."""
    aud, sps, pps = (bytes.fromhex(h) for h in TEMPLATES[version])
    return aud, _sps(sps, width, height), _pps(pps, width, height)
