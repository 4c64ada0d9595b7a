"""encode/decode: rate control bounds on real images, partial packets, model fingerprints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from semlink.budget import Budget
from semlink.codec import BudgetError, Codec, Codecs, ObjectHint, codec_of
from semlink.packet import FingerprintMismatchError, Packet, parse, serialize
from semlink.quality import psnr
from semlink.streams import LayerKind

from .conftest import kodak_image


@pytest.mark.parametrize("budget", [400, 1000, 2500])
def test_rate_control_fills_but_never_exceeds_the_budget(
    lite: Codec, astronaut: np.ndarray, budget: int
) -> None:
    result = lite.encode(astronaut, Budget(max_bytes=budget))
    print(f"astronaut, budget {budget} B: {len(result.data)} B ({len(result.data) / budget:.1%})")
    assert len(result.data) <= budget
    assert len(result.data) >= 0.97 * budget


@pytest.mark.parametrize("name", ["kodim01", "kodim02"])
def test_rate_control_on_kodak_at_003_bpp(lite: Codec, name: str) -> None:
    image = kodak_image(name)
    budget = int(0.03 * image.shape[0] * image.shape[1] / 8)
    result = lite.encode(image, Budget(target_bpp=0.03), caption="a photograph")
    decoded = lite.decode(result.data)
    print(
        f"{name}: {len(result.data)}/{budget} B, {result.bits_per_pixel:.4f} bpp, "
        f"{psnr(image, decoded.image):.2f} dB, layers {result.layer_bytes()}"
    )
    assert 0.97 * budget <= len(result.data) <= budget
    assert result.bits_per_pixel <= 0.03
    assert decoded.layers_used == ["reference", "caption"]


def test_semantic_layers_come_first_in_budget_and_in_priority_order(
    lite: Codec, chelsea: np.ndarray
) -> None:
    mask = np.zeros(chelsea.shape[:2], bool)
    mask[50:250, 100:350] = True
    result = lite.encode(
        chelsea,
        Budget(max_bytes=700),
        caption="a tabby cat looking up",
        objects=[ObjectHint("the cat's face", mask), ObjectHint("a wooden floor")],
    )
    kinds = [layer.kind for layer in result.packet.layers]
    assert kinds == [LayerKind.REFERENCE, LayerKind.CAPTION, LayerKind.OBJECT, LayerKind.OBJECT]
    decoded = lite.decode(result.data)
    assert decoded.caption == "a tabby cat looking up"
    assert [d for d, _ in decoded.objects] == ["the cat's face", "a wooden floor"]
    grid = decoded.objects[0][1]
    assert grid is not None and grid.shape == (
        round(chelsea.shape[0] / 8),
        round(chelsea.shape[1] / 8),
    )
    assert decoded.objects[1][1] is None


def test_least_salient_hints_are_dropped_when_they_alone_overflow(
    lite: Codec, chelsea: np.ndarray
) -> None:
    objects = [
        ObjectHint(f"object number {i} with a long description of its looks") for i in range(10)
    ]
    result = lite.encode(chelsea, Budget(max_bytes=120), caption="a cat", objects=objects)
    assert len(result.data) <= 120
    descriptions = [d for d, _ in lite.decode(result.data).objects]
    assert descriptions == [o.description for o in objects[: len(descriptions)]]
    assert len(descriptions) < len(objects)


def test_budget_below_the_header_is_refused(lite: Codec, chelsea: np.ndarray) -> None:
    with pytest.raises(BudgetError, match="at least"):
        lite.encode(chelsea, Budget(max_bytes=5))


def test_any_subset_of_layers_decodes(lite: Codec, chelsea: np.ndarray) -> None:
    result = lite.encode(
        chelsea, Budget(max_bytes=800), caption="a cat", objects=[ObjectHint("an ear")]
    )
    packet = result.packet
    height, width = chelsea.shape[:2]
    full = lite.decode(result.data)
    for drop in range(len(packet.layers)):
        kept = packet.layers[:drop] + packet.layers[drop + 1 :]
        partial = lite.decode(serialize(dataclasses.replace(packet, layers=kept)))
        assert partial.image.shape == (height, width, 3)
        assert len(partial.layers_used) == len(kept)
    no_reference = lite.decode(serialize(dataclasses.replace(packet, layers=packet.layers[1:])))
    assert "reference" not in no_reference.layers_used
    assert (no_reference.image == 128).all()
    assert psnr(chelsea, full.image) > psnr(chelsea, no_reference.image) + 5


def test_a_packet_for_other_models_is_refused_naming_both_fingerprints(
    lite: Codec, chelsea: np.ndarray
) -> None:
    result = lite.encode(chelsea, Budget(max_bytes=500))
    packet = parse(result.data)
    foreign = serialize(
        Packet(packet.width, packet.height, packet.profile, 0x12345678, 0, packet.layers)
    )
    with pytest.raises(FingerprintMismatchError) as info:
        lite.decode(foreign)
    assert "0x12345678" in str(info.value)
    assert f"{lite.models.fingerprint:#010x}" in str(info.value)


def test_models_of_another_profile_refuse_the_packet(
    lite: Codec, tiny: Codecs, chelsea: np.ndarray
) -> None:
    """A codec holds one profile's models: another profile's packet is refused naming the
    mismatch, and a codec asked for over another profile's models says whose they are."""
    lite_packet = lite.encode(chelsea, Budget(max_bytes=500)).data
    sedic = tiny["sedic"]
    with pytest.raises(FingerprintMismatchError):
        sedic.decode(lite_packet)
    with pytest.raises(ValueError, match="sedic's, not lite's"):
        codec_of(sedic.models, "lite")


def test_gray_and_rgba_inputs(lite: Codec, chelsea: np.ndarray) -> None:
    gray = chelsea[..., 0]
    rgba = np.concatenate([chelsea, np.full((*chelsea.shape[:2], 1), 255, np.uint8)], axis=2)
    assert lite.decode(lite.encode(gray, Budget(max_bytes=400)).data).image.shape == chelsea.shape
    assert lite.decode(lite.encode(rgba, Budget(max_bytes=400)).data).image.shape == chelsea.shape
    with pytest.raises(ValueError, match="8-bit"):
        lite.encode(chelsea.astype(np.float32), Budget(max_bytes=400))


def test_tiny_image_round_trips(lite: Codec) -> None:
    tiny = np.full((1, 1, 3), 200, np.uint8)
    result = lite.encode(tiny, Budget(max_bytes=200))
    assert lite.decode(result.data).image.shape == (1, 1, 3)


def test_hostile_object_layer_cannot_ask_for_a_mask_finer_than_the_image(lite: Codec) -> None:
    from semlink.packet import Layer, PacketLimitError
    from semlink.streams._varint import write_varint
    from semlink.streams.text import encode_text

    text = encode_text("x")
    huge_mask = write_varint(4000) + write_varint(4000) + b"\x00" * 8
    payload = write_varint(len(text)) + text + huge_mask
    layers = (Layer(LayerKind.OBJECT, 0, payload),)
    wire = serialize(Packet(64, 64, 0, lite.models.fingerprint, 0, layers))
    with pytest.raises(PacketLimitError, match="exceeds 4096"):
        lite.decode(wire)
