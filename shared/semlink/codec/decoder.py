"""Decoding, in the order a packet is read: parse and check it, decode every layer with the
reference kept small, upsample the reference (lite's learned restorer, or Lanczos), and for
generative profiles run the diffusion stage on it.

The steps are :func:`read_layers`, :func:`upsample` and :func:`finish`: the codec's
``decode`` takes them for one packet, :mod:`semlink.codec.batch` for several at once.
Which models decode a packet is the caller's (:class:`Pick`): one profile's codec holds
one profile's models, every profile's codecs pick them by the packet's header.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.codec.checks import check_picture_size, check_realism
from semlink.codec.results import DecodeResult
from semlink.imaging import resize
from semlink.packet import FingerprintMismatchError, Packet, PacketFormatError, parse, serialize
from semlink.profiles import Profile, Role, get_profile
from semlink.resolver import Models
from semlink.streams import LayerKind
from semlink.streams.objects import decode_object
from semlink.streams.reference import decode_reference
from semlink.streams.segmap import decode_segmap
from semlink.streams.text import decode_text

if TYPE_CHECKING:
    from semlink.restore.pixel import ShippedRestorer

Pick = Callable[[Profile], Models]
"""The models that decode a packet of a profile."""


@dataclass
class Decoding:
    """A packet read up to its reference's upsampling (the first half of a decode)."""

    packet: Packet
    models: Models
    result: DecodeResult
    small: NDArray[np.uint8] | None
    """The decoded reference at its coded size (None: no reference layer arrived)."""
    restorer: ShippedRestorer | None
    """lite's learned restorer to upsample with at ``result.realism`` (None: Lanczos)."""
    wire_bytes: int
    reference_bits: int | None = None
    """The reference layer's payload in bits (how much the restorer corrects depends on it)."""


def _profile_models(packet: Packet, pick: Pick) -> tuple[Profile, Models]:
    """The packet's profile and the models that decode it (not loaded yet)."""
    try:
        spec = get_profile(packet.profile)
    except KeyError as exc:
        raise PacketFormatError(str(exc)) from exc
    return spec, pick(spec)


def _checked(data: bytes | Packet, pick: Pick, max_pixels: int | None) -> tuple[Packet, Models]:
    """The parsed packet and its models, its claimed size checked against ``max_pixels``
    (default: the models' settings) before anything is allocated for the picture."""
    packet = data if isinstance(data, Packet) else parse(data)
    _, models = _profile_models(packet, pick)
    check_picture_size(
        packet, models.settings.max_decode_pixels if max_pixels is None else max_pixels
    )
    return packet, models


def read_layers(
    data: bytes | Packet,
    pick: Pick,
    *,
    check: Callable[[], None] | None = None,
    restorer: bool | None = None,
    max_pixels: int | None = None,
    realism: float | None = None,
) -> Decoding:
    """Parse and check the packet, decode every layer; the reference stays small."""
    if realism is not None:
        realism = check_realism(realism)
    packet, models = _checked(data, pick, max_pixels)
    spec = get_profile(packet.profile)
    if packet.model_fingerprint != models.fingerprint:  # other models, or another profile's
        raise FingerprintMismatchError(packet.model_fingerprint, models.fingerprint)
    result = DecodeResult(image=np.empty(0, np.uint8), layers_used=[])
    small, reference_bits = _decode_layers(packet, models, result, check)
    shipped = None
    if small is not None and spec.holds(Role.RESTORER) and restorer is not False:
        shipped = models.restorer
        if shipped is not None:
            result.realism = packet.realism / 100 if realism is None else realism
    wire_bytes = len(data) if isinstance(data, bytes) else len(serialize(packet))
    return Decoding(packet, models, result, small, shipped, wire_bytes, reference_bits)


def _decode_layers(
    packet: Packet, models: Models, result: DecodeResult, check: Callable[[], None] | None
) -> tuple[NDArray[np.uint8] | None, int | None]:
    """Every layer into ``result`` (layers of kinds this decoder does not know are skipped);
    returns the small reference picture and its payload in bits (None: none arrived)."""
    stages = result.stage_seconds
    small: NDArray[np.uint8] | None = None
    reference_bits = None
    for layer in packet.layers:
        if check is not None:
            check()
        start = time.perf_counter()
        kind = LayerKind(layer.kind) if layer.kind in LayerKind._value2member_map_ else None
        if kind is LayerKind.REFERENCE and small is None:
            small = decode_reference(
                layer.codec, layer.payload, packet.width, packet.height, models.reference_codecs
            )
            reference_bits = 8 * len(layer.payload)
        elif kind is LayerKind.CAPTION:
            result.caption = decode_text(layer.payload)
        elif kind is LayerKind.OBJECT:
            result.objects.append(
                decode_object(layer.payload, max_pixels=packet.width * packet.height)
            )
        elif kind is LayerKind.SEGMAP:
            result.segmap = decode_segmap(
                layer.codec, layer.payload, max_pixels=packet.width * packet.height
            )
        else:
            continue  # a layer kind from a newer encoder: skip it, say so by omission
        name = kind.name.lower()
        result.layers_used.append(name)
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - start
    return small, reference_bits


def upsample(decoding: Decoding) -> NDArray[np.uint8]:
    """The full-size reference of one picture: the learned restorer's, or Lanczos."""
    packet, small, restorer = decoding.packet, decoding.small, decoding.restorer
    assert small is not None
    if restorer is None:
        return resize(small, packet.width, packet.height)
    from semlink.restore import pixel

    realism = decoding.result.realism
    assert realism is not None
    return pixel.restore(
        small,
        packet.width,
        packet.height,
        restorer.network,
        realism,
        decoding.result.segmap,
        restorer.fidelity,
        decoding.reference_bits,
    )


def finish(
    decoding: Decoding,
    reference: NDArray[np.uint8] | None,
    steps: int | None,
    seed: int | None,
    check: Callable[[], None] | None,
) -> DecodeResult:
    """The picture from the full-size reference: as it is, or through the diffusion stage."""
    packet, result = decoding.packet, decoding.result
    if reference is None:
        # No reference arrived: a flat mid-grey picture of the right size, not a crash.
        reference = np.full((packet.height, packet.width, 3), 128, dtype=np.uint8)
    result.image = reference
    generative = decoding.models.generative  # None without the diffusion role
    if generative is not None:
        start = time.perf_counter()
        result.image, result.steps = generative(
            reference,
            result.caption or "",
            result.objects,
            bpp=8 * decoding.wire_bytes / (packet.width * packet.height),
            seed=packet.seed if seed is None else seed,
            steps=steps,
            check=check,
        )
        result.stage_seconds["diffusion"] = time.perf_counter() - start
    return result


def decode_preview(data: bytes | Packet, pick: Pick, max_pixels: int | None = None) -> DecodeResult:
    """A fast first look: the reference layer alone, bilinear upsampling, no other layers."""
    packet, models = _checked(data, pick, max_pixels)
    codecs = models.reference_codecs
    start = time.perf_counter()
    image = np.full((packet.height, packet.width, 3), 128, dtype=np.uint8)
    used = []
    for layer in packet.layers:
        if layer.kind == LayerKind.REFERENCE:
            small = decode_reference(
                layer.codec, layer.payload, packet.width, packet.height, codecs
            )
            resized = Image.fromarray(small).resize(
                (packet.width, packet.height), Image.Resampling.BILINEAR
            )
            image, used = np.asarray(resized), ["reference"]
            break
    return DecodeResult(
        image=image, layers_used=used, stage_seconds={"preview": time.perf_counter() - start}
    )
