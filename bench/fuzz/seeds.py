"""Seed packets: every layer kind (reference, caption, objects, segmentation map) and every
reference codec id a decoder may hold (VVC, the classical codecs, the learned codecs)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from semlink.packet import Layer, Packet
    from semlink.resolver import Resolver


def seed_packets() -> list[bytes]:
    """Valid packets: every layer kind, every reference codec id a decoder may hold."""
    import skimage.data

    from semlink import ObjectHint, encode
    from semlink.packet import Layer, parse, serialize
    from semlink.streams import LayerKind
    from semlink.streams.reference import CLASSICAL, encode_reference

    image = np.ascontiguousarray(skimage.data.chelsea()[::4, ::4])  # 113 x 75
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[10:50, 30:90] = True
    segmap = (np.arange(h)[:, None] // 25 + np.arange(w)[None, :] // 40).astype(np.uint8)
    lite = encode(
        image,
        "lite",
        max_bytes=700,
        caption="a tabby cat on a red blanket",
        objects=[ObjectHint("a cat's face", mask), ObjectHint("a blanket", ~mask)],
        segmap=segmap,
    ).data
    seeds = [lite]
    packet = parse(lite)
    for codec in CLASSICAL:
        found = encode_reference(image, 400, codecs=(codec,))
        if found is None:
            continue
        codec_id, payload, _ = found
        layers = tuple(
            Layer(int(LayerKind.REFERENCE), codec_id, payload)
            if layer.kind == LayerKind.REFERENCE
            else layer
            for layer in packet.layers
        )
        seeds.append(serialize(replace_layers(packet, layers)))
    seeds.extend(_sedic_seeds(image))
    return seeds


def cached_seeds(path: Path) -> list[bytes]:
    """Seed packets from ``path`` (length-prefixed), made and written there if absent."""
    if path.exists():
        data, seeds, i = path.read_bytes(), [], 0
        while i < len(data):
            (n,) = struct.unpack_from("<I", data, i)
            seeds.append(data[i + 4 : i + 4 + n])
            i += 4 + n
        return seeds
    seeds = seed_packets()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(struct.pack("<I", len(s)) + s for s in seeds))
    return seeds


def replace_layers(packet: Packet, layers: tuple[Layer, ...]) -> Packet:
    """``packet`` with other layers (header kept)."""
    from dataclasses import replace

    return replace(packet, layers=layers)


def _sedic_seeds(image: np.ndarray) -> list[bytes]:
    """sedic packets on tiny models, one per learned reference codec id."""
    from semlink import encode
    from semlink.packet import parse, serialize
    from semlink.streams import LayerKind
    from semlink.streams.reference import pack_learned

    models = tiny_resolver()
    packet = encode(image, "sedic", max_bytes=600, caption="a cat", models=models).data
    parsed = parse(packet)
    out = [packet]
    h, w = image.shape[:2]
    held = models.models(parsed.profile).reference_codecs
    from semlink.imaging import resize
    from semlink.streams.reference import LEARNED
    from semlink.streams.reference.base import small_size

    for codec_id, name in LEARNED.items():
        chosen = [c for c in held if c.config.architecture == name]
        if not chosen:
            continue  # the TAEF2 latent codec is not among the tiny models
        k = 96
        payload = pack_learned(k, 0, *chosen[0].compress(resize(image, *small_size(w, h, k))))
        layers = tuple(
            type(layer)(layer.kind, int(codec_id), payload)
            if layer.kind == LayerKind.REFERENCE
            else layer
            for layer in parsed.layers
        )
        out.append(serialize(replace_layers(parsed, layers)))
    return out


def tiny_resolver() -> Resolver:
    """The tiny models (no weights on disk): the sedic seeds and the worker's decodes."""
    from semlink.config import settings
    from semlink.resolver import Resolver

    return Resolver(settings().model_copy(update={"tiny_models": True}))


def seeds_digest(seeds: list[bytes]) -> str:
    digest = hashlib.sha256()
    for s in seeds:
        digest.update(struct.pack("<I", len(s)) + s)
    return digest.hexdigest()


def seed_labels(seeds: list[bytes]) -> list[str]:
    """'lite ref 8' and the like: each seed's profile and reference codec id."""
    from semlink.packet import parse
    from semlink.profiles import get_profile
    from semlink.streams import LayerKind

    labels = []
    for s in seeds:
        packet = parse(s)
        ref = [layer.codec for layer in packet.layers if layer.kind == LayerKind.REFERENCE]
        labels.append(f"{get_profile(packet.profile).name} ref {ref[0] if ref else '-'}")
    return labels
