"""torchvision without its C++ operators: importable where its extension does not load.

piq, compressai and segment-anything import torchvision; semlink uses only its Python parts
(layer layouts, PIL resizing), never its C++ operators (nms, roi_align, deform_conv2d) or
its image decoders. The CPU lock (requirements.lock) pairs CPU torch 2.13.0+cpu with
torchvision 0.28.0. Where the PyTorch CPU index answers, that is 0.28.0+cpu and its
extension loads. Where it does not (these machines, CI), pip takes PyPI's 0.28.0, a CUDA
build whose ``_C.so`` needs ``libtorch_cuda.so``: the extension fails to load, which
torchvision tolerates, but its ``_meta_registrations`` then registers fake kernels for
``torchvision::nms`` and ``torchvision::qnms`` unconditionally and ``import torchvision``
fails with "operator torchvision::nms does not exist".

:func:`install` (called by ``import semlink``) puts a finder on ``sys.meta_path`` that acts
once, when torchvision is first imported: it loads torchvision's extension the way
torchvision does, and only if the extension is there and fails to load declares the
schemas of those two operators (no kernels), so the import completes. Calling
``torchvision.ops.nms`` then raises torchvision's own "Couldn't load custom C++ ops" error.
With a matching build (the GPU lock, or 0.28.0+cpu) the extension loads and nothing is
declared. Importing semlink does not import torch: the finder does that only when
torchvision is being imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
"""The operators torchvision 0.28/0.29's ``_meta_registrations`` registers fakes for
without checking that its extension loaded."""

_declared: list[Any] = []
"""The ``torch.library.Library`` holding the declared schemas: kept alive, since a
library's registrations go when it is collected."""


_EXTENSIONS = ("_C", "_C_stable")
"""torchvision's operator extensions: ``_C`` up to 0.28, ``_C_stable`` from 0.29."""


def extension_fails() -> bool:
    """Whether torchvision's operator extension is there and fails to load against the
    installed torch (trying it as ``import torchvision`` would: a library that loads stays
    loaded, and torchvision's own load of it is then a no-op). False when torchvision is
    not installed or holds no extension this module knows."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    folder = Path(spec.origin).parent
    found = [
        folder / f"{name}{suffix}"
        for name in _EXTENSIONS
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (folder / f"{name}{suffix}").exists()
    ]
    if not found:
        return False
    import torch

    for library in found:
        try:
            torch.ops.load_library(str(library))
        except OSError:
            continue
        return False
    return True


def declare_missing_ops() -> bool:
    """Declares torchvision's ``nms``/``qnms`` schemas if its extension does not load.
    Returns whether it declared them (once per process)."""
    if _declared or not extension_fails():
        return False
    import torch

    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        library.define(schema)
    _declared.append(library)
    return True


class _Finder(importlib.abc.MetaPathFinder):
    """Runs :func:`declare_missing_ops` before torchvision's first import, then steps aside
    (it finds nothing itself: the regular finders import torchvision)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision":
            uninstall()
            declare_missing_ops()
        return None


_finder = _Finder()


def install() -> None:
    """Puts the finder first on ``sys.meta_path`` unless torchvision is already imported."""
    if "torchvision" not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
