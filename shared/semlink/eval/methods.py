"""The methods an evaluation runs: lite as it ships, along its realism control and with
Lanczos (one packet, several decodes), and the standard codecs as baselines; and how a
command line's names pick among them (:func:`select_methods`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from semlink.streams.reference import STANDARD


def realism_method(realism: float) -> str:
    """The method name of lite decoded at ``realism``: lite_r0, lite_r0.25, ..., lite_r1."""
    return f"lite_r{realism:g}"


REALISM_CURVE = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Realisms every lite packet is also decoded at: the realism curve (PSNR against LPIPS
and DISTS along the control, ``realism.png``)."""

LITE_DECODES: tuple[tuple[str, bool | None, float | None], ...] = (
    ("lite", None, None),
    *((realism_method(r), None, r) for r in REALISM_CURVE),
    ("lite_lanczos", False, None),
)
"""(method, restorer, realism): the decodes of each lite packet the evaluation reports."""


LITE_NAMES = tuple(method for method, _, _ in LITE_DECODES)
"""lite's methods: lite, lite_r0, lite_r0.25, lite_r0.5, lite_r0.75, lite_r1, lite_lanczos."""

BASELINES = tuple(c.name.lower() for c in STANDARD)
"""The standard codecs: avif, hevc, webp, jpegxl, jpeg, vvc."""

METHODS = (*LITE_NAMES, *BASELINES)
"""Every method an evaluation can run, in the order its rows come. ``best_baseline`` is
not one: it is picked per photo and rate among the baselines that ran."""


class UnknownMethodError(ValueError):
    """A method or baseline name that is not one of :data:`METHODS`."""


def _names(given: str | Iterable[str]) -> list[str]:
    items = given.split(",") if isinstance(given, str) else given
    names = []
    for item in items:
        name = item.strip().lower()
        if name.startswith("lite_r"):  # lite_r1.0 is lite_r1
            with contextlib.suppress(ValueError):
                name = realism_method(float(name[len("lite_r") :]))
        if name:
            names.append(name)
    return names


def select_methods(
    methods: str | Iterable[str] | None = None, baselines: str | Iterable[str] | None = None
) -> tuple[str, ...]:
    """The methods an evaluation runs, in :data:`METHODS` order.

    ``methods`` (names, or one comma-separated string) picks exactly those; ``baselines``
    names standard codecs. Neither: everything. ``baselines`` alone: every lite method
    and those codecs. Both: the union (``baselines`` adds codecs to ``methods``).
    :class:`UnknownMethodError` names what is wrong and lists the valid names."""
    chosen: set[str] = set()
    if baselines is not None:
        wanted = _names(baselines)
        unknown = [b for b in wanted if b not in BASELINES]
        if unknown:
            raise UnknownMethodError(
                f"unknown baseline {', '.join(unknown)}: choose from {', '.join(BASELINES)}"
            )
        chosen.update(wanted)
        if methods is None:
            chosen.update(LITE_NAMES)
    if methods is not None:
        wanted = _names(methods)
        unknown = [m for m in wanted if m not in METHODS]
        if unknown:
            why = (
                " (it is picked among the baselines that run)" if "best_baseline" in unknown else ""
            )
            raise UnknownMethodError(
                f"unknown method {', '.join(unknown)}{why}: choose from {', '.join(METHODS)}"
            )
        chosen.update(wanted)
    if methods is None and baselines is None:
        chosen.update(METHODS)
    if not chosen:
        raise UnknownMethodError(f"no method given: choose from {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in chosen)
