"""Several packets decoded at once, each result what a decode of that packet alone gives,
or the exception it raises: one packet's error never fails another.

Layers are read on several threads (VVC references decode in a subprocess each), then
lite's learned restorer runs once per group of pictures of the same size (and restorer),
at most :data:`BATCH_PIXELS` pixels a run. Each result's ``reference`` stage time counts
its share of its run. Other profiles' stages run one packet at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from semlink.codec.decoder import Decoding, Pick, finish, read_layers, upsample
from semlink.codec.results import DecodeCall, DecodeResult
from semlink.packet import Packet

BATCH_PIXELS = 8 * 768 * 512
"""Most pixels the restorer takes in one run of a batch decode (its activations grow with
them); a larger group of equal-size pictures runs in several."""

Outcome = DecodeResult | Exception


def decode_batch(
    calls: Sequence[bytes | Packet | DecodeCall],
    pick: Pick,
    *,
    restorer: bool | None = None,
    max_pixels: int | None = None,
    threads: int | None = None,
) -> list[Outcome]:
    """Each packet's result or exception, in order (:meth:`semlink.codec.Codec.decode_batch`)."""
    items = [call if isinstance(call, DecodeCall) else DecodeCall(call) for call in calls]
    if not items:
        return []

    def read(call: DecodeCall) -> Decoding | Exception:
        try:
            return read_layers(
                call.data,
                pick,
                check=call.check,
                restorer=restorer,
                max_pixels=max_pixels,
                realism=call.realism,
            )
        except Exception as exc:
            return exc

    workers = max(1, min(len(items), threads or os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="semlink-decode") as pool:
        read_out = list(pool.map(read, items))
    references = _references(items, read_out)
    results: list[Outcome] = []
    for i, (call, decoding) in enumerate(zip(items, read_out, strict=True)):
        reference = references.get(i)
        if isinstance(decoding, Exception):
            results.append(decoding)
        elif isinstance(reference, Exception):
            results.append(reference)
        else:
            try:
                results.append(finish(decoding, reference, call.steps, call.seed, call.check))
            except Exception as exc:
                results.append(exc)
    return results


def _references(
    items: Sequence[DecodeCall], read_out: list[Decoding | Exception]
) -> dict[int, NDArray[np.uint8] | Exception]:
    """The full-size reference of every packet read that has one (by index): Lanczos ones
    one by one, restored ones a group of equal-size pictures at a time. A call whose check
    fails here (its deadline) gets the exception in ``read_out``."""
    references: dict[int, NDArray[np.uint8] | Exception] = {}
    groups: dict[tuple[int, int, int], list[tuple[int, Decoding]]] = {}
    for i, (call, decoding) in enumerate(zip(items, read_out, strict=True)):
        if isinstance(decoding, Exception) or decoding.small is None:
            continue
        try:
            if call.check is not None:
                call.check()  # the deadline, before the restorer's run
        except Exception as exc:
            read_out[i] = exc
            continue
        if decoding.restorer is None:
            start = time.perf_counter()
            references[i] = upsample(decoding)
            decoding.result.stage_seconds["reference"] += time.perf_counter() - start
        else:
            size = (id(decoding.restorer), decoding.packet.width, decoding.packet.height)
            groups.setdefault(size, []).append((i, decoding))
    for (_, width, height), members in groups.items():
        per_run = max(1, BATCH_PIXELS // (width * height))
        for first in range(0, len(members), per_run):
            references.update(_restore_group(members[first : first + per_run]))
    return references


def _restore_group(
    members: Sequence[tuple[int, Decoding]],
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
    assert first.restorer is not None
    start = time.perf_counter()
    out: dict[int, NDArray[np.uint8] | Exception] = {}
    try:
        pictures = pixel.restore_batch(
            smalls,
            first.packet.width,
            first.packet.height,
            first.restorer.network,
            realisms,
            segmaps,
            first.restorer.fidelity,
            bits,
        )
        out.update(zip((i for i, _ in members), pictures, strict=True))
    except Exception:
        for i, decoding in members:
            try:
                out[i] = upsample(decoding)
            except Exception as exc:
                out[i] = exc
    share = (time.perf_counter() - start) / len(members)
    for _, decoding in members:
        decoding.result.stage_seconds["reference"] += share
    return out
