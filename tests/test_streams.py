"""Streams: lossless round trips, and the rates they reach on real content."""

from __future__ import annotations

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
from semlink.streams.text import decode_text, encode_text

CAPTIONS = (Path(__file__).parent / "data" / "captions.txt").read_text().splitlines()


@given(st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_text_round_trips_any_unicode(text: str) -> None:
    assert decode_text(encode_text(text)) == text


def test_text_rate_on_real_captions() -> None:
    assert len(CAPTIONS) >= 50
    bits = sum(8 * len(encode_text(c)) for c in CAPTIONS)
    chars = sum(len(c) for c in CAPTIONS)
    joined = 8 * len(encode_text(" ".join(CAPTIONS))) / len(" ".join(CAPTIONS))
    utf8 = 8.0
    print(
        f"text: {bits / chars:.3f} bits/char over {len(CAPTIONS)} captions coded one by one "
        f"({joined:.3f} when coded as one text; raw UTF-8 {utf8})"
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
