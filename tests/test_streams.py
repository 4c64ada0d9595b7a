"""Streams: lossless round trips, and the rates they reach on real content."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from skimage.segmentation import felzenszwalb, slic

from semlink.packet import PacketError
from semlink.streams.masks import decode_mask, encode_mask
from semlink.streams.reference import (
    ReferenceCodec,
    classical,
    decode_reference,
    encode_file,
    encode_reference,
    pack_file,
    search,
)
from semlink.streams.segmap import SegmapCodec, decode_segmap, encode_segmap, segmap_sizes
from semlink.streams.text import (
    ALWAYS_FITS,
    MAX_TEXT_BYTES,
    MAX_TEXT_SYMBOLS,
    _encode,
    decode_text,
    encode_text,
)

CAPTIONS = (Path(__file__).parent / "data" / "captions.txt").read_text().splitlines()


@given(st.text(max_size=ALWAYS_FITS))
@settings(max_examples=150, deadline=None)
def test_text_round_trips_any_unicode(text: str) -> None:
    assert decode_text(encode_text(text)) == text


@given(
    st.one_of(st.text(min_size=ALWAYS_FITS, max_size=600), st.text(alphabet="ab '", max_size=3000))
)
@settings(max_examples=60, deadline=None)
def test_text_encoder_refuses_exactly_what_the_decoder_refuses(text: str) -> None:
    """Over the limits the encoder says so; coded anyway, the decoder refuses the payload."""
    try:
        payload = encode_text(text)
    except ValueError as exc:
        assert "at most 1024 symbols" in str(exc)
        if len(text.encode()) <= MAX_TEXT_BYTES:
            with pytest.raises(PacketError, match="more than 1024 symbols"):
                decode_text(_encode(text, max_symbols=10**6))
        return
    assert decode_text(payload) == text


def _symbols(payload: bytes) -> int:
    """Symbols the decoder reads from ``payload`` (counted, not timed)."""
    from semlink.entropy import coder

    count = 0
    decode_symbol = coder.ArithmeticDecoder.decode_symbol

    def counted(self: coder.ArithmeticDecoder, probabilities: np.ndarray) -> int:
        nonlocal count
        count += 1
        return decode_symbol(self, probabilities)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(coder.ArithmeticDecoder, "decode_symbol", counted)
        with contextlib.suppress(PacketError):
            decode_text(payload)
    return count


def test_text_limits_bound_the_decoder_on_hostile_payloads() -> None:
    # A valid 120-byte payload of "a " * 30000 used to decode to 60,000 bytes (seconds of
    # CPU); a few garbage bytes behind a valid CRC decoded to the old 64 KiB limit.
    with pytest.raises(ValueError, match="60000 UTF-8 bytes"):
        encode_text("a " * 30000)
    with pytest.raises(ValueError, match="more than 1024 symbols"):
        encode_text("a " * 600)  # 1,200 bytes: under the byte limit, over the symbol one
    hostile = _encode("a " * 2000, max_symbols=10**6)  # what an old encoder could write
    assert len(hostile) < 100
    with pytest.raises(PacketError, match="more than 1024 symbols"):
        decode_text(hostile)
    assert _symbols(hostile) == MAX_TEXT_SYMBOLS
    rng = np.random.default_rng(13)
    worst = max(_symbols(rng.bytes(int(n))) for n in rng.integers(1, 64, size=300))
    assert worst <= MAX_TEXT_SYMBOLS
    # Every real caption and sedic's longest extracted one are far from the limit.
    assert max(_symbols(encode_text(c)) for c in CAPTIONS) < MAX_TEXT_SYMBOLS // 4
    forty_words = " ".join(["photograph"] * 40)
    assert _symbols(encode_text(forty_words)) < MAX_TEXT_SYMBOLS // 4


def test_text_rate_on_real_captions() -> None:
    assert len(CAPTIONS) >= 50
    bits = sum(8 * len(encode_text(c)) for c in CAPTIONS)
    chars = sum(len(c) for c in CAPTIONS)
    some = " ".join(CAPTIONS[:10])  # one text layer holds about ten captions' worth
    joined = 8 * len(encode_text(some)) / len(some)
    utf8 = 8.0
    print(
        f"text: {bits / chars:.3f} bits/char over {len(CAPTIONS)} captions coded one by one "
        f"({joined:.3f} when 10 are coded as one text; raw UTF-8 {utf8})"
    )
    assert bits / chars <= 2.5
    for caption in CAPTIONS:
        assert decode_text(encode_text(caption)) == caption


@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
@settings(max_examples=100, deadline=None)
def test_masks_round_trip_bit_exactly(mask: np.ndarray) -> None:
    assert np.array_equal(decode_mask(encode_mask(mask)), mask)


def test_mask_bytes_on_object_shapes(astronaut: np.ndarray) -> None:
    # A real object mask: the astronaut's segment at the H/8 x W/8 grid the decoder wants.
    labels = felzenszwalb(astronaut, scale=400, sigma=0.8, min_size=2000)
    largest = np.bincount(labels.ravel()).argmax()
    mask = labels == largest
    grid = (
        np.asarray(
            Image.fromarray(mask.astype(np.uint8) * 255).resize((64, 64), Image.Resampling.BOX)
        )
        >= 128
    )
    payload = encode_mask(grid)
    print(f"mask 64x64 ({grid.mean():.0%} set): {len(payload)} bytes (packed bits: {64 * 64 // 8})")
    assert np.array_equal(decode_mask(payload), grid)
    assert len(payload) < 64 * 64 // 8 / 4


@given(
    arrays(np.int64, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=st.integers(0, 9))
)
@settings(max_examples=60, deadline=None)
def test_segmaps_round_trip_bit_exactly(labels: np.ndarray) -> None:
    codec, payload = encode_segmap(labels)
    assert np.array_equal(decode_segmap(codec, payload), labels)


def test_segmap_context_coder_beats_png_and_jpegxl(chelsea: np.ndarray) -> None:
    small = np.asarray(
        Image.fromarray(chelsea).resize((chelsea.shape[1] // 4, chelsea.shape[0] // 4))
    )
    labels = slic(small, n_segments=40, start_label=0)
    sizes = segmap_sizes(labels)
    codec, payload = encode_segmap(labels)
    print(f"segmap {labels.shape} with {labels.max() + 1} labels: {sizes}")
    assert codec == SegmapCodec.CONTEXT
    assert sizes["context"] < min(sizes["png"], sizes["jpegxl"])
    for other in (SegmapCodec.PNG, SegmapCodec.JPEGXL_LOSSLESS):  # the other codecs decode too
        from semlink.streams import segmap as module

        encoder = module._encode_png if other == SegmapCodec.PNG else module._encode_jxl
        header = payload[: len(payload) - sizes["context"]]
        assert np.array_equal(
            decode_segmap(other, header + encoder(labels, int(labels.max()) + 1)), labels
        )


def test_reference_fits_budget_and_round_trips(chelsea: np.ndarray) -> None:
    height, width = chelsea.shape[:2]
    codec, payload, recon = encode_reference(chelsea, 600)
    assert len(payload) <= 600
    small = decode_reference(codec, payload, width, height)
    from semlink.imaging import resize

    assert np.array_equal(resize(small, width, height), recon)


def test_stripped_container_beats_whole_file(chelsea: np.ndarray) -> None:
    packed = search(chelsea, 600, codecs=(ReferenceCodec.AVIF,))
    whole = search(chelsea, 600, codecs=(ReferenceCodec.AVIF,), packed=False)
    assert packed is not None and whole is not None
    print(
        f"AVIF at 600 B: stripped container {packed.psnr:.2f} dB vs whole file {whole.psnr:.2f} dB"
    )
    assert packed.psnr > whole.psnr
    height, width = chelsea.shape[:2]
    for codec in (ReferenceCodec.AVIF, ReferenceCodec.HEVC):
        data = encode_file(codec, np.ascontiguousarray(chelsea[::4, ::4]), 30)
        raw = {"AVIF": classical.AVIF, "HEVC": classical.HEVC}[codec.name].coded_data_offset(data)
        sent = len(pack_file(codec, 64, data, width, height)) - (len(data) - raw) - 1
        print(f"{codec.name} container: {raw} bytes in the file, {sent} bytes in the layer")
        assert sent < raw / 4


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x40\x05abc", b"\x40\x00" + b"junk" * 10])
def test_reference_garbage_gives_typed_error(payload: bytes) -> None:
    with pytest.raises(PacketError):
        decode_reference(int(ReferenceCodec.HEVC), payload, 64, 64)
