"""semlink: semantic image communication over bandwidth-starved links.

The library both services import. Two calls carry an image each way::

    from semlink import encode, decode
    result = encode(image, "lite", target_bpp=0.03, caption="a red barn")
    image = decode(result.data).image
"""

from semlink.codec import DecodeResult, EncodeResult, ObjectHint, decode, encode
from semlink.packet import bits_per_pixel

__version__ = "0.1.0"

__all__ = [
    "DecodeResult",
    "EncodeResult",
    "ObjectHint",
    "__version__",
    "bits_per_pixel",
    "decode",
    "encode",
]
