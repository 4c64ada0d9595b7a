"""Encoding: an image and a :class:`~semlink.budget.Budget` in, a packet out.

The budget covers the whole packet. Hints (caption, objects most salient first,
segmentation map) are coded first and dropped from the least salient object up while they
alone overflow it; the reference picture then takes every byte they leave: its layer's
*payload* gets the packet's bytes less the header, the hints and its own framing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import google_crc32c
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink import calls
from semlink.budget import Budget
from semlink.codec.checks import check_hint_sizes, check_realism, check_streams
from semlink.codec.results import EncodeResult, ObjectHint
from semlink.errors import BudgetError, WeightsError
from semlink.imaging import as_rgb
from semlink.packet import Layer, Packet, PacketLimitError, check_dimensions, parse, serialize
from semlink.profiles import Profile, Role
from semlink.resolver import Models
from semlink.streams import LayerKind
from semlink.streams.objects import encode_object
from semlink.streams.reference import encode_reference, smallest_reference
from semlink.streams.segmap import encode_segmap
from semlink.streams.text import encode_text

REFERENCE_LAYER_OVERHEAD = 14
"""Most bytes a reference layer adds besides its payload: field tag and length (<= 3),
codec (2), payload tag and length (<= 4), CRC32C (5)."""

EXTRACTED_SEMANTIC_SHARE = 0.5
"""At most this share of the budget goes to semantics the encoder extracted itself (the
reference image needs the rest); objects are dropped from the least salient up."""


@dataclass(frozen=True)
class Header:
    """Everything of a packet but its layers: what a candidate set of layers is framed with."""

    width: int
    height: int
    profile: int
    fingerprint: int
    seed: int
    realism: int
    """Hundredths, as the header carries it."""

    def build(self, layers: Sequence[Layer]) -> bytes:
        """The serialized packet of ``layers``: its size is what the budget counts."""
        packet = Packet(
            self.width,
            self.height,
            self.profile,
            self.fingerprint,
            self.seed,
            tuple(layers),
            self.realism,
        )
        return serialize(packet)


def encode(
    models: Models,
    image: NDArray[np.generic] | Image.Image,
    budget: Budget,
    *,
    caption: str | None = None,
    objects: Sequence[ObjectHint] = (),
    segmap: NDArray[np.integer] | None = None,
    mask_scale: int = 8,
    realism: float | None = None,
    semantics_only: bool = False,
) -> EncodeResult:
    """``image`` as a packet of ``models.profile`` within ``budget`` (the whole packet).

    See :meth:`semlink.codec.Codec.encode`, which calls this."""
    if realism is not None:
        realism = check_realism(realism)
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    check_dimensions(width, height)
    spec = models.profile
    packet_bytes = budget.packet_bytes(width, height)
    check_streams(spec, caption, objects, segmap)
    check_hint_sizes(width, height, objects, segmap)
    hundredths = _realism_hundredths(spec, realism)
    fingerprint = models.fingerprint  # first: it says which decoder models are missing
    stages: dict[str, float] = {}
    semantic_cap = packet_bytes
    if spec.holds(Role.EXTRACTOR) and caption is None and not objects:
        caption, objects = _extract(rgb, packet_bytes, stages, models)
        semantic_cap = int(packet_bytes * EXTRACTED_SEMANTIC_SHARE)
    calls.check()
    start = time.perf_counter()
    semantic = semantic_layers(width, height, caption, objects, segmap, mask_scale)
    stages["semantics"] = time.perf_counter() - start

    header = Header(width, height, spec.id, fingerprint, _seed(spec, rgb), hundredths)
    semantic = _trim_semantics(header, semantic, packet_bytes, semantic_cap)
    start = time.perf_counter()
    calls.check()
    if semantics_only:
        layers = semantic
    else:
        layers = with_reference(rgb, packet_bytes, header, semantic, models)
    stages["reference"] = time.perf_counter() - start
    data = header.build(layers)
    return EncodeResult(data=data, packet=parse(data), stage_seconds=stages)


def _realism_hundredths(spec: Profile, realism: float | None) -> int:
    """The header's realism: the one given, else the shipped restorer's default; 0 for
    profiles without a restorer (which take none)."""
    if spec.holds(Role.RESTORER):
        from semlink.restore import default_realism

        return round(100 * (default_realism() if realism is None else realism))
    if realism is not None:
        raise ValueError(f"profile {spec.name} has no restorer: it takes no realism")
    return 0


def _seed(spec: Profile, rgb: NDArray[np.uint8]) -> int:
    """Generative decoders draw noise from the header's seed: derived from the image, so
    the same image gives the same packet, and small (a 2-byte varint). 0 without them."""
    if not spec.holds(Role.DIFFUSION):
        return 0
    return int(google_crc32c.value(rgb.tobytes())) % 16383 + 1


def _extract(
    rgb: NDArray[np.uint8], packet_bytes: int, stages: dict[str, float], models: Models
) -> tuple[str, list[ObjectHint]]:
    """Caption and objects from the edge's extraction models (profiles that extract)."""
    extractor = models.extractor
    if extractor is None:
        raise WeightsError(
            "the sedic encoder extracts captions and objects itself: set SEMLINK_CAPTIONER "
            "(transformers:<dir or hub id> or chat:<API base URL>), SEMLINK_GROUNDER and "
            "SEMLINK_SAM_CHECKPOINT, or SEMLINK_TINY_MODELS=1, or pass caption/objects hints"
        )
    found = extractor.extract(rgb, packet_bytes)
    stages.update({f"extract_{name}": seconds for name, seconds in found.seconds.items()})
    return found.caption, [ObjectHint(text, mask) for text, mask in found.objects]


def semantic_layers(
    width: int,
    height: int,
    caption: str | None,
    objects: Sequence[ObjectHint],
    segmap: NDArray[np.integer] | None,
    mask_scale: int,
) -> list[Layer]:
    """The hints' layers, most important first: caption, objects, segmentation map."""
    layers: list[Layer] = []
    if caption:
        layers.append(Layer(LayerKind.CAPTION, 0, encode_text(caption)))
    for hint in objects:
        payload = encode_object(hint.description, hint.mask, width, height, mask_scale)
        layers.append(Layer(LayerKind.OBJECT, 0, payload))
    if segmap is not None:
        codec, payload = encode_segmap(np.asarray(segmap))
        layers.append(Layer(LayerKind.SEGMAP, codec, payload))
    return layers


def _trim_semantics(
    header: Header, semantic: list[Layer], packet_bytes: int, cap: int
) -> list[Layer]:
    """``semantic`` less its least important layers (from the tail) until the packet of
    them alone fits ``packet_bytes`` and they take at most ``cap`` bytes; a budget that
    cannot hold the header is a :class:`BudgetError`."""
    header_only = len(header.build([]))
    if packet_bytes < header_only:
        raise BudgetError(
            f"a budget of {packet_bytes} bytes cannot hold the {header_only}-byte packet "
            f"header; allow at least {header_only} bytes"
        )
    kept = list(semantic)
    while kept and len(header.build(kept)) > min(packet_bytes, header_only + cap):
        kept.pop()
    return kept


def _fit_reference(
    rgb: NDArray[np.uint8],
    packet_bytes: int,
    header: Header,
    semantic: Sequence[Layer],
    models: Models,
) -> list[Layer] | None:
    """The reference layer that takes every byte ``semantic`` leaves, before them; None
    when no picture fits beside them."""
    # The largest payload whose layer still fits (its framing grows with varint lengths).
    payload_bytes = packet_bytes - len(header.build(semantic)) - REFERENCE_LAYER_OVERHEAD
    while payload_bytes >= 0:
        probe = Layer(LayerKind.REFERENCE, 15, bytes(payload_bytes + 1))
        try:
            if len(header.build([probe, *semantic])) > packet_bytes:
                break
        except PacketLimitError:  # past the largest packet: it does not fit either
            break
        payload_bytes += 1
    while payload_bytes > 0:
        found = encode_reference(rgb, payload_bytes, models.reference_codecs, reconstruct=False)
        if found is None:
            return None
        codec, payload, _ = found
        candidate = [Layer(LayerKind.REFERENCE, codec, payload), *semantic]
        size = len(header.build(candidate))
        if size <= packet_bytes:
            return candidate
        payload_bytes -= size - packet_bytes  # framing estimate was short: try again
    return None


def with_reference(
    rgb: NDArray[np.uint8],
    packet_bytes: int,
    header: Header,
    semantic: Sequence[Layer],
    models: Models,
) -> list[Layer]:
    """The packet's layers with a picture: hints that leave no room for the smallest one
    are dropped (least salient first); a budget that holds no picture even alone is a
    :class:`BudgetError` naming the smallest that does."""
    layers = _fit_reference(rgb, packet_bytes, header, semantic, models)
    if layers is not None:
        return layers
    codec, payload = smallest_reference(rgb)
    least = Layer(LayerKind.REFERENCE, codec, payload)
    need = len(header.build([least]))
    if need > packet_bytes:
        height, width = rgb.shape[:2]
        bpp = math.ceil(need * 8 / (width * height) * 10_000) / 10_000
        raise BudgetError(
            f"a budget of {packet_bytes} bytes holds no picture of this {width}x{height} "
            f"image: the smallest packet with one takes {need} bytes; raise max_bytes to at "
            f"least {need} (target_bpp to {bpp:g}), or ask for semantics only"
        )
    kept = list(semantic)
    while kept and len(header.build([least, *kept])) > packet_bytes:
        kept.pop()
    return _fit_reference(rgb, packet_bytes, header, kept, models) or [least, *kept]
