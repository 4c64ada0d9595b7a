"""The codec's calls: :func:`encode` and :func:`decode`, and for the services
:func:`decode_batch` (several packets, one restorer run) and :func:`decode_preview`.

``encode(image, profile, max_bytes | target_bpp, hints) -> EncodeResult`` builds a
packet within the byte budget (text, objects and segmentation map are budgeted
first; the reference image gets every remaining byte). ``decode(bytes) ->
DecodeResult`` rebuilds the image from whichever layers arrived.

Both take ``models=``: the models to run (:class:`semlink.resolver.Models` for one
profile, or a :class:`~semlink.resolver.Resolver` for every profile). Without it they
use the process's default resolver, built from the settings on first use.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import google_crc32c
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink import calls
from semlink.errors import BudgetError
from semlink.imaging import as_rgb, read_image, resize
from semlink.packet import (
    DEFAULT_LIMITS,
    FingerprintMismatchError,
    Layer,
    Packet,
    PacketFormatError,
    PacketLimitError,
    bits_per_pixel,
    check_dimensions,
    parse,
    serialize,
)
from semlink.profiles import Profile, Role, get_profile
from semlink.resolver import Models, Resolver, models_for
from semlink.streams import LayerKind
from semlink.streams.objects import decode_object, encode_object
from semlink.streams.reference import decode_reference, encode_reference, smallest_reference
from semlink.streams.segmap import decode_segmap, encode_segmap
from semlink.streams.text import decode_text, encode_text

if TYPE_CHECKING:
    from semlink.restore.pixel import ShippedRestorer

_REFERENCE_LAYER_OVERHEAD = 14
"""Most bytes a reference layer adds besides its payload: field tag and length (<= 3),
codec (2), payload tag and length (<= 4), CRC32C (5)."""


EXTRACTED_SEMANTIC_SHARE = 0.5
"""At most this share of the budget goes to semantics the encoder extracted itself (the
reference image needs the rest); objects are dropped from the least salient up."""


def check_realism(realism: float) -> float:
    """``realism`` as a float in [0, 1], or ValueError with what to send instead."""
    if isinstance(realism, bool) or not isinstance(realism, numbers.Real):
        raise ValueError(f"realism is {realism!r}; it must be a number from 0 to 1")
    value = float(realism)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(
            f"realism is {value}; it must be from 0 (fidelity) to 1 (most realistic texture)"
        )
    return value


def budget_bytes(
    width: int, height: int, *, max_bytes: int | None = None, target_bpp: float | None = None
) -> int:
    """The packet's byte budget for a ``width`` x ``height`` image: ``max_bytes``, or
    ``target_bpp`` x pixels / 8 rounded down.

    Raises :class:`BudgetError` unless exactly one is given, ``max_bytes`` is a positive
    whole number and ``target_bpp`` a positive finite number. A budget beyond the largest
    packet (``DEFAULT_LIMITS.max_packet_bytes``) is that size: no packet can be larger.
    """
    if (max_bytes is None) == (target_bpp is None):
        raise BudgetError("give exactly one of max_bytes and target_bpp")
    largest = DEFAULT_LIMITS.max_packet_bytes
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
            raise BudgetError(
                f"max_bytes is {max_bytes!r}; it must be a whole number of bytes, at least 1"
            )
        if max_bytes <= 0:
            raise BudgetError(
                f"max_bytes is {max_bytes}; it must be a positive number of bytes (the whole "
                f"packet, header included; packets hold at most {largest} bytes)"
            )
        return min(int(max_bytes), largest)
    if isinstance(target_bpp, bool) or not isinstance(target_bpp, numbers.Real):
        raise BudgetError(f"target_bpp is {target_bpp!r}; it must be a number of bits per pixel")
    bpp = float(target_bpp)
    if not (math.isfinite(bpp) and bpp > 0):
        raise BudgetError(
            f"target_bpp is {bpp}; it must be positive and finite (bits per pixel of the whole "
            f"packet, e.g. 0.03)"
        )
    budget = bpp * width * height / 8  # float: finite bpp x many pixels may still overflow
    return largest if budget >= largest else int(budget)


@dataclass(frozen=True)
class ObjectHint:
    """An object the caller knows about: a short description and optionally a mask."""

    description: str
    mask: NDArray[np.bool_] | None = None
    """Boolean mask at any resolution; it is coded at the mask grid the encoder is given."""


@dataclass
class EncodeResult:
    data: bytes
    """The serialized packet: what goes on the link."""
    packet: Packet
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bits_per_pixel(self) -> float:
        return bits_per_pixel(self.data)

    def layer_bytes(self) -> list[tuple[str, int]]:
        """(layer kind name, serialized bytes incl. framing and CRC) per layer."""
        return [
            (LayerKind(layer.kind).name.lower(), size)
            for layer, size in zip(self.packet.layers, self.packet.layer_bytes(), strict=True)
        ]


@dataclass
class DecodeResult:
    image: NDArray[np.uint8]
    """RGB, original width x height."""
    layers_used: list[str]
    caption: str | None = None
    objects: list[tuple[str, NDArray[np.bool_] | None]] = field(default_factory=list)
    segmap: NDArray[np.int64] | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    """Diffusion steps the generative decoder took (0 for classical profiles)."""
    realism: float | None = None
    """The realism lite's restorer ran at (None: no learned restorer ran)."""


def _extract(
    rgb: NDArray[np.uint8], budget: int, stages: dict[str, float], models: Models
) -> tuple[str, list[ObjectHint]]:
    """Caption and objects from the edge's extraction models (profiles that extract)."""
    from semlink.models.weights import WeightsError

    extractor = models.extractor
    if extractor is None:
        raise WeightsError(
            "the sedic encoder extracts captions and objects itself: set SEMLINK_CAPTIONER "
            "(transformers:<dir or hub id> or chat:<API base URL>), SEMLINK_GROUNDER and "
            "SEMLINK_SAM_CHECKPOINT, or SEMLINK_TINY_MODELS=1, or pass caption/objects hints"
        )
    found = extractor.extract(rgb, budget)
    stages.update({f"extract_{name}": seconds for name, seconds in found.seconds.items()})
    return found.caption, [ObjectHint(text, mask) for text, mask in found.objects]


def _check_streams(
    spec: Profile,
    caption: str | None,
    objects: Sequence[ObjectHint],
    segmap: NDArray[np.integer] | None,
) -> None:
    """Hints the profile's packets cannot carry are an error, not silently dropped."""
    given = {
        LayerKind.CAPTION: bool(caption),
        LayerKind.OBJECT: len(objects) > 0,
        LayerKind.SEGMAP: segmap is not None,
    }
    for kind in (kind for kind, wanted in given.items() if wanted):
        if kind not in spec.streams:
            raise ValueError(f"profile {spec.name} carries no {kind.name.lower()} layers")


def _check_hint_sizes(
    width: int, height: int, objects: Sequence[ObjectHint], segmap: NDArray[np.integer] | None
) -> None:
    """Masks and maps are drawn on the image: one larger than it is a mistake, and refused
    before it costs memory (smaller ones are scaled up)."""
    for index, hint in enumerate(objects):
        if hint.mask is not None:
            mask_height, mask_width = np.shape(hint.mask)[:2]
            check_hint_size(f"object {index}'s mask", mask_width, mask_height, width, height)
    if segmap is not None:
        map_height, map_width = np.shape(segmap)[:2]
        check_hint_size("the segmentation map", map_width, map_height, width, height)


def check_hint_size(what: str, hint_width: int, hint_height: int, width: int, height: int) -> None:
    """ValueError when a ``hint_width`` x ``hint_height`` mask or map exceeds its image."""
    if hint_width > width or hint_height > height:
        raise ValueError(
            f"{what} is {hint_width}x{hint_height}, larger than the {width}x{height} image; "
            f"send it at the image's size or smaller"
        )


def _fit_reference(
    rgb: NDArray[np.uint8],
    budget: int,
    build: Callable[[Sequence[Layer]], bytes],
    semantic: Sequence[Layer],
    held: Models,
) -> list[Layer] | None:
    """The reference layer that takes every byte ``semantic`` leaves, before them; None
    when no picture fits beside them."""
    # The largest payload whose layer still fits (its framing grows with varint lengths).
    reference_budget = budget - len(build(semantic)) - _REFERENCE_LAYER_OVERHEAD
    while reference_budget >= 0:
        probe = Layer(LayerKind.REFERENCE, 15, bytes(reference_budget + 1))
        try:
            if len(build([probe, *semantic])) > budget:
                break
        except PacketLimitError:  # past the largest packet: it does not fit either
            break
        reference_budget += 1
    while reference_budget > 0:
        found = encode_reference(rgb, reference_budget, held.reference_codecs, reconstruct=False)
        if found is None:
            return None
        codec, payload, _ = found
        candidate = [Layer(LayerKind.REFERENCE, codec, payload), *semantic]
        size = len(build(candidate))
        if size <= budget:
            return candidate
        reference_budget -= size - budget  # framing estimate was short: try again
    return None


def _with_reference(
    rgb: NDArray[np.uint8],
    budget: int,
    build: Callable[[Sequence[Layer]], bytes],
    semantic: Sequence[Layer],
    held: Models,
) -> list[Layer]:
    """The packet's layers with a picture: hints that leave no room for the smallest one
    are dropped (least salient first); a budget that holds no picture even alone is a
    :class:`BudgetError` naming the smallest that does."""
    layers = _fit_reference(rgb, budget, build, semantic, held)
    if layers is not None:
        return layers
    codec, payload = smallest_reference(rgb)
    least = Layer(LayerKind.REFERENCE, codec, payload)
    need = len(build([least]))
    if need > budget:
        height, width = rgb.shape[:2]
        bpp = math.ceil(need * 8 / (width * height) * 10_000) / 10_000
        raise BudgetError(
            f"a budget of {budget} bytes holds no picture of this {width}x{height} image: "
            f"the smallest packet with one takes {need} bytes; raise max_bytes to at least "
            f"{need} (target_bpp to {bpp:g}), or ask for semantics only"
        )
    kept = list(semantic)
    while kept and len(build([least, *kept])) > budget:
        kept.pop()
    return _fit_reference(rgb, budget, build, kept, held) or [least, *kept]


def encode(
    image: NDArray[np.generic] | Image.Image,
    profile: str | Profile = "lite",
    *,
    max_bytes: int | None = None,
    target_bpp: float | None = None,
    caption: str | None = None,
    objects: Sequence[ObjectHint] = (),
    segmap: NDArray[np.integer] | None = None,
    mask_scale: int = 8,
    models: Models | Resolver | None = None,
    realism: float | None = None,
    semantics_only: bool = False,
) -> EncodeResult:
    """Encode ``image`` into a packet of at most ``max_bytes`` (or ``target_bpp`` x pixels / 8).

    The budget must be positive and finite (:func:`budget_bytes`; :class:`BudgetError`
    otherwise); one beyond the largest packet, 4 MiB, is that size.

    Profiles that extract (``sedic``) caption, ground and segment the image themselves
    when given neither ``caption`` nor ``objects``. Hints (caption, objects most salient
    first, segmentation map) are coded first and dropped from the least salient object up
    if they alone would overflow the budget; the reference image takes every remaining
    byte. ``models``: the models to encode with (default: the process's). ``realism``
    (profiles with the learned restorer, from 0 for fidelity to 1 for texture) is written
    into the header for the decoder (default: the shipped restorer's chosen value).

    A budget too small for any picture of ``image`` is a :class:`BudgetError` that names
    the smallest budget that holds one, unless ``semantics_only`` asks for a packet of
    the hints alone (no reference picture is then coded at all).
    """
    stages: dict[str, float] = {}
    budget_bytes(1, 1, max_bytes=max_bytes, target_bpp=target_bpp)  # refused before any work
    if realism is not None:
        realism = check_realism(realism)
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    check_dimensions(width, height)
    spec = get_profile(profile) if isinstance(profile, str) else profile
    budget = budget_bytes(width, height, max_bytes=max_bytes, target_bpp=target_bpp)
    held = models_for(spec, models)
    if held.profile != spec:
        raise ValueError(f"the models given are {held.profile.name}'s, not {spec.name}'s")
    _check_streams(spec, caption, objects, segmap)
    _check_hint_sizes(width, height, objects, segmap)
    hundredths = 0
    if spec.holds(Role.RESTORER):
        from semlink.restore import default_realism

        hundredths = round(100 * (default_realism() if realism is None else realism))
    elif realism is not None:
        raise ValueError(f"profile {spec.name} has no restorer: it takes no realism")
    fingerprint = held.fingerprint  # first: it says which decoder models are missing
    semantic_cap = budget
    if spec.holds(Role.EXTRACTOR) and caption is None and not objects:
        caption, objects = _extract(rgb, budget, stages, held)
        semantic_cap = int(budget * EXTRACTED_SEMANTIC_SHARE)
    calls.check()
    start = time.perf_counter()
    semantic: list[Layer] = []
    if caption:
        semantic.append(Layer(LayerKind.CAPTION, 0, encode_text(caption)))
    for hint in objects:
        semantic.append(
            Layer(
                LayerKind.OBJECT,
                0,
                encode_object(hint.description, hint.mask, width, height, mask_scale),
            )
        )
    if segmap is not None:
        codec, payload = encode_segmap(np.asarray(segmap))
        semantic.append(Layer(LayerKind.SEGMAP, codec, payload))
    stages["semantics"] = time.perf_counter() - start

    # Generative decoders draw noise from the header's seed: derived from the image, so
    # the same image gives the same packet, and small (a 2-byte varint).
    seed = int(google_crc32c.value(rgb.tobytes())) % 16383 + 1 if spec.holds(Role.DIFFUSION) else 0

    def build(layers: Sequence[Layer]) -> bytes:
        return serialize(
            Packet(width, height, spec.id, fingerprint, seed, tuple(layers), hundredths)
        )

    header_only = len(build([]))
    if budget < header_only:
        raise BudgetError(
            f"a budget of {budget} bytes cannot hold the {header_only}-byte packet header; "
            f"allow at least {header_only} bytes"
        )
    # Drop the least important semantic layers (from the tail) until they fit.
    while semantic and len(build(semantic)) > min(budget, header_only + semantic_cap):
        semantic.pop()
    start = time.perf_counter()
    calls.check()
    if semantics_only:
        layers = list(semantic)
    else:
        layers = _with_reference(rgb, budget, build, semantic, held)
    stages["reference"] = time.perf_counter() - start
    data = build(layers)
    return EncodeResult(data=data, packet=parse(data), stage_seconds=stages)


def check_picture_size(packet: Packet, max_pixels: int) -> None:
    """Raise :class:`PacketLimitError` when the header claims more than ``max_pixels`` pixels.

    A header of a few bytes can claim any size up to the format's limits: decode checks it
    against the decoder's own limit before it allocates anything for the picture."""
    pixels = packet.width * packet.height
    if pixels > max_pixels:
        raise PacketLimitError(
            f"packet header claims a {packet.width}x{packet.height} picture ({pixels} pixels, "
            f"{3 * pixels / 2**20:.0f} MiB as RGB); this decoder accepts at most {max_pixels} "
            f"pixels per packet: raise SEMLINK_MAX_DECODE_PIXELS (`semlink serve decoder "
            f"--max-pixels`) to decode larger pictures"
        )


def _profile_models(packet: Packet, models: Models | Resolver | None) -> tuple[Profile, Models]:
    """The packet's profile and the models that decode it (not loaded yet)."""
    try:
        spec = get_profile(packet.profile)
    except KeyError as exc:
        raise PacketFormatError(str(exc)) from exc
    return spec, models_for(spec, models)


@dataclass
class _Decoding:
    """A packet read up to its reference's upsampling (the first half of a decode)."""

    packet: Packet
    held: Models
    result: DecodeResult
    small: NDArray[np.uint8] | None
    """The decoded reference at its coded size (None: no reference layer arrived)."""
    learned: ShippedRestorer | None
    """lite's learned restorer to upsample with at ``result.realism`` (None: Lanczos)."""
    wire_bytes: int
    reference_bits: int | None = None
    """The reference layer's payload in bits (how much the restorer corrects depends on it)."""


def _read_layers(
    data: bytes | Packet,
    expected_profile: str | Profile | None,
    check: Callable[[], None] | None,
    restorer: bool | None,
    models: Models | Resolver | None,
    max_pixels: int | None,
    realism: float | None,
) -> _Decoding:
    """Parse and check the packet, decode every layer; the reference stays small."""
    if realism is not None:
        realism = check_realism(realism)
    packet = data if isinstance(data, Packet) else parse(data)
    spec, held = _profile_models(packet, models)
    check_picture_size(
        packet, held.settings.max_decode_pixels if max_pixels is None else max_pixels
    )
    if expected_profile is not None:
        expected = (
            get_profile(expected_profile) if isinstance(expected_profile, str) else expected_profile
        )
        expected_fingerprint = models_for(expected, models).fingerprint
        if expected_fingerprint != packet.model_fingerprint:
            raise FingerprintMismatchError(packet.model_fingerprint, expected_fingerprint)
    if packet.model_fingerprint != held.fingerprint:  # other models, or another profile's
        raise FingerprintMismatchError(packet.model_fingerprint, held.fingerprint)
    result = DecodeResult(image=np.empty(0, np.uint8), layers_used=[])
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
                layer.codec, layer.payload, packet.width, packet.height, held.reference_codecs
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
    learned = None
    if small is not None and spec.holds(Role.RESTORER) and restorer is not False:
        from semlink.restore import pixel

        # Without models given, the default restorer is looked up where scripts switch it.
        learned = held.restorer if models is not None else pixel.shipped_restorer()
        if learned is not None:
            result.realism = packet.realism / 100 if realism is None else realism
    wire_bytes = len(data) if isinstance(data, bytes) else len(serialize(packet))
    return _Decoding(packet, held, result, small, learned, wire_bytes, reference_bits)


def _upsample(decoding: _Decoding) -> NDArray[np.uint8]:
    """The full-size reference of one picture: the learned restorer's, or Lanczos."""
    packet, small, learned = decoding.packet, decoding.small, decoding.learned
    assert small is not None
    if learned is None:
        return resize(small, packet.width, packet.height)
    from semlink.restore import pixel

    realism = decoding.result.realism
    assert realism is not None
    return pixel.restore(
        small,
        packet.width,
        packet.height,
        learned.network,
        realism,
        decoding.result.segmap,
        learned.fidelity,
        decoding.reference_bits,
    )


def _finish(
    decoding: _Decoding,
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
    generative = decoding.held.generative  # None without the diffusion role
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


def decode(
    data: bytes | Packet,
    *,
    expected_profile: str | Profile | None = None,
    check: Callable[[], None] | None = None,
    steps: int | None = None,
    seed: int | None = None,
    restorer: bool | None = None,
    models: Models | Resolver | None = None,
    max_pixels: int | None = None,
    realism: float | None = None,
) -> DecodeResult:
    """Rebuild the image from a packet (bytes or parsed), using whatever layers it holds.

    Raises a ``semlink.packet.PacketError`` subclass for malformed, damaged, unknown-version
    or wrong-model packets. ``check`` is called between stages; a service passes one that
    raises once the caller's deadline has passed. ``steps`` and ``seed`` override DynDiff's
    step count and the header's seed for generative profiles. ``restorer=False`` upsamples
    lite's reference with Lanczos instead of the learned restorer (default: the models'
    choice, ``SEMLINK_LITE_RESTORER``). ``models``: the models to decode with (default: the
    process's); a packet written for other models is refused. ``max_pixels``: the largest
    picture the header may claim (default: the models' settings,
    ``SEMLINK_MAX_DECODE_PIXELS``); a larger one raises ``PacketLimitError`` before anything
    is allocated or any model loaded. ``realism`` (0 fidelity .. 1 texture) overrides the
    header's for lite's learned restorer.
    """
    decoding = _read_layers(data, expected_profile, check, restorer, models, max_pixels, realism)
    reference = None
    if decoding.small is not None:  # upsampled last: the learned restorer reads the segmap
        start = time.perf_counter()
        reference = _upsample(decoding)
        decoding.result.stage_seconds["reference"] += time.perf_counter() - start
    return _finish(decoding, reference, steps, seed, check)


@dataclass(frozen=True)
class DecodeCall:
    """One packet of :func:`decode_batch` with its own options (as :func:`decode` takes them)."""

    data: bytes | Packet
    realism: float | None = None
    steps: int | None = None
    seed: int | None = None
    check: Callable[[], None] | None = None


BATCH_PIXELS = 8 * 768 * 512
"""Most pixels the restorer takes in one run of :func:`decode_batch` (its activations grow
with them); a larger group of equal-size pictures runs in several."""


def decode_batch(
    calls: Sequence[bytes | Packet | DecodeCall],
    *,
    expected_profile: str | Profile | None = None,
    restorer: bool | None = None,
    models: Models | Resolver | None = None,
    max_pixels: int | None = None,
    threads: int | None = None,
) -> list[DecodeResult | Exception]:
    """:func:`decode` for several packets at once, each result what ``decode`` gives for
    that packet alone, or the exception it raises: one packet's error never fails another.

    Layers are read on up to ``threads`` threads at once (default: one per packet, at most
    the CPU count; VVC references decode in a subprocess each), then lite's learned
    restorer runs once per group of pictures of the same size (and restorer), at most
    :data:`BATCH_PIXELS` pixels a run. Each result's ``reference`` stage time counts its
    share of its run. Other profiles' stages run one packet at a time.
    """
    items = [call if isinstance(call, DecodeCall) else DecodeCall(call) for call in calls]
    if not items:
        return []

    def read(call: DecodeCall) -> _Decoding | Exception:
        try:
            return _read_layers(
                call.data, expected_profile, call.check, restorer, models, max_pixels, call.realism
            )
        except Exception as exc:
            return exc

    workers = max(1, min(len(items), threads or os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="semlink-decode") as pool:
        read_out = list(pool.map(read, items))

    references: dict[int, NDArray[np.uint8] | Exception] = {}
    groups: dict[tuple[int, int, int], list[tuple[int, _Decoding]]] = {}
    for i, (call, decoding) in enumerate(zip(items, read_out, strict=True)):
        if isinstance(decoding, Exception) or decoding.small is None:
            continue
        try:
            if call.check is not None:
                call.check()  # the deadline, before the restorer's run
        except Exception as exc:
            read_out[i] = exc
            continue
        if decoding.learned is None:
            start = time.perf_counter()
            references[i] = _upsample(decoding)
            decoding.result.stage_seconds["reference"] += time.perf_counter() - start
        else:
            size = (id(decoding.learned), decoding.packet.width, decoding.packet.height)
            groups.setdefault(size, []).append((i, decoding))
    for (_, width, height), members in groups.items():
        per_run = max(1, BATCH_PIXELS // (width * height))
        for first in range(0, len(members), per_run):
            references.update(_restore_group(members[first : first + per_run]))

    results: list[DecodeResult | Exception] = []
    for i, (call, decoding) in enumerate(zip(items, read_out, strict=True)):
        reference = references.get(i)
        if isinstance(decoding, Exception):
            results.append(decoding)
        elif isinstance(reference, Exception):
            results.append(reference)
        else:
            try:
                results.append(_finish(decoding, reference, call.steps, call.seed, call.check))
            except Exception as exc:
                results.append(exc)
    return results


def _restore_group(
    members: Sequence[tuple[int, _Decoding]],
) -> dict[int, NDArray[np.uint8] | Exception]:
    """One run of the learned restorer over pictures of one size; should the run fail
    (memory), each picture is restored alone, so only its own failure reaches its caller."""
    from semlink.restore import pixel

    smalls, realisms, segmaps, bits = [], [], [], []
    for _, decoding in members:
        assert decoding.small is not None and decoding.result.realism is not None
        smalls.append(decoding.small)
        realisms.append(decoding.result.realism)
        segmaps.append(decoding.result.segmap)
        bits.append(decoding.reference_bits)
    first = members[0][1]
    assert first.learned is not None
    start = time.perf_counter()
    out: dict[int, NDArray[np.uint8] | Exception] = {}
    try:
        pictures = pixel.restore_batch(
            smalls,
            first.packet.width,
            first.packet.height,
            first.learned.network,
            realisms,
            segmaps,
            first.learned.fidelity,
            bits,
        )
        out.update(zip((i for i, _ in members), pictures, strict=True))
    except Exception:
        for i, decoding in members:
            try:
                out[i] = _upsample(decoding)
            except Exception as exc:
                out[i] = exc
    share = (time.perf_counter() - start) / len(members)
    for _, decoding in members:
        decoding.result.stage_seconds["reference"] += share
    return out


def decode_preview(
    data: bytes | Packet,
    *,
    models: Models | Resolver | None = None,
    max_pixels: int | None = None,
) -> DecodeResult:
    """A fast first look: the reference layer alone, bilinear upsampling, no other layers.

    ``max_pixels`` bounds the header's picture size as in :func:`decode`."""
    packet = data if isinstance(data, Packet) else parse(data)
    _, held = _profile_models(packet, models)
    check_picture_size(
        packet, held.settings.max_decode_pixels if max_pixels is None else max_pixels
    )
    learned = held.reference_codecs
    start = time.perf_counter()
    image = np.full((packet.height, packet.width, 3), 128, dtype=np.uint8)
    used = []
    for layer in packet.layers:
        if layer.kind == LayerKind.REFERENCE:
            small = decode_reference(
                layer.codec, layer.payload, packet.width, packet.height, learned
            )
            resized = Image.fromarray(small).resize(
                (packet.width, packet.height), Image.Resampling.BILINEAR
            )
            image, used = np.asarray(resized), ["reference"]
            break
    return DecodeResult(
        image=image, layers_used=used, stage_seconds={"preview": time.perf_counter() - start}
    )


__all__ = [
    "BudgetError",
    "DecodeCall",
    "DecodeResult",
    "EncodeResult",
    "ObjectHint",
    "PacketLimitError",
    "as_rgb",
    "budget_bytes",
    "check_picture_size",
    "decode",
    "decode_batch",
    "decode_preview",
    "encode",
    "read_image",
]
