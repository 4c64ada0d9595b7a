"""semlink: semantic image communication over bandwidth-starved links.

The library both services import. A codec is built once from its models and passed on::

    from semlink import Budget, Codecs
    codecs = Codecs.from_settings()  # every profile's models, as the SEMLINK_* settings say
    result = codecs["lite"].encode(image, Budget(target_bpp=0.03), caption="a red barn")
    image = codecs.decode(result.data).image

Scripts may call ``encode(image, "lite", target_bpp=0.03)`` and ``decode(data)`` instead:
the same calls on the process's codecs (:mod:`semlink.default_codecs`).

The names below are imported on first use, so ``import semlink`` (and the ``semlink``
command line, whose ``--help`` and ``info`` need none of them) starts without numpy, the
image libraries or torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from semlink import _torchvision

if TYPE_CHECKING:
    from semlink.budget import Budget
    from semlink.codec import Codec, Codecs, DecodeResult, EncodeResult, ObjectHint
    from semlink.default_codecs import decode, encode
    from semlink.packet import bits_per_pixel

__version__ = "0.1.0"

# torchvision (imported by piq, compressai, segment-anything) must import in the CPU install
# too, where its C++ extension may not load: see semlink._torchvision. Imports nothing now.
_torchvision.install()

_LAZY = {
    "Budget": "semlink.budget",
    "Codec": "semlink.codec",
    "Codecs": "semlink.codec",
    "DecodeResult": "semlink.codec",
    "EncodeResult": "semlink.codec",
    "ObjectHint": "semlink.codec",
    "decode": "semlink.default_codecs",
    "encode": "semlink.default_codecs",
    "bits_per_pixel": "semlink.packet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semlink' has no attribute {name!r}")


__all__ = [
    "Budget",
    "Codec",
    "Codecs",
    "DecodeResult",
    "EncodeResult",
    "ObjectHint",
    "__version__",
    "bits_per_pixel",
    "decode",
    "encode",
]
