"""semlink: semantic image communication over bandwidth-starved links.

The library both services import. Two calls carry an image each way::

    from semlink import encode, decode
    result = encode(image, "lite", target_bpp=0.03, caption="a red barn")
    image = decode(result.data).image

The names below are imported on first use, so ``import semlink`` (and the ``semlink``
command line, whose ``--help`` and ``info`` need none of them) starts without numpy, the
image libraries or torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from semlink import _torchvision

if TYPE_CHECKING:
    from semlink.codec import DecodeResult, EncodeResult, ObjectHint, decode, encode
    from semlink.packet import bits_per_pixel

__version__ = "0.1.0"

# torchvision (imported by piq, compressai, segment-anything) must import in the CPU install
# too, where its C++ extension may not load: see semlink._torchvision. Imports nothing now.
_torchvision.install()

_LAZY = {
    "DecodeResult": "semlink.codec",
    "EncodeResult": "semlink.codec",
    "ObjectHint": "semlink.codec",
    "decode": "semlink.codec",
    "encode": "semlink.codec",
    "bits_per_pixel": "semlink.packet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semlink' has no attribute {name!r}")


__all__ = [
    "DecodeResult",
    "EncodeResult",
    "ObjectHint",
    "__version__",
    "bits_per_pixel",
    "decode",
    "encode",
]
