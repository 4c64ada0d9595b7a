"""lite's CPU cost per image against the AVIF baseline, measured in the same run.

For each Kodak image at one rate: lite encode (codec x scale x quality search) and lite
decode (reference + learned restorer when shipped weights and TAEF2 are present), against
an AVIF baseline that sends a whole file at the same byte budget (its own scale/quality
search: `semlink.streams.reference.search`, packed=False) and decodes it with Lanczos.

Run: ``.venv/bin/python bench/bench_lite.py [--images N] [--bpp 0.03]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semlink import decode, encode
from semlink.restore import resize
from semlink.restore.latent import shipped_restorer
from semlink.streams.reference import ReferenceCodec, decode_file, search

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--bpp", type=float, default=0.03)
    args = parser.parse_args()
    print(f"learned restorer: {'on' if shipped_restorer() is not None else 'off (Lanczos)'}")
    rows = []
    for path in sorted(KODAK.glob("*.png"))[: args.images]:
        image = np.asarray(Image.open(path).convert("RGB"))
        h, w = image.shape[:2]
        budget = int(args.bpp * w * h / 8)
        result, lite_enc = timed(lambda: encode(image, target_bpp=args.bpp))  # noqa: B023
        _, lite_dec = timed(lambda: decode(result.data))  # noqa: B023
        found, avif_enc = timed(
            lambda: search(image, budget, codecs=(ReferenceCodec.AVIF,), packed=False)  # noqa: B023
        )
        assert found is not None
        _, avif_dec = timed(lambda: resize(decode_file(found.codec, found.data), w, h))  # noqa: B023
        rows.append((lite_enc, lite_dec, avif_enc, avif_dec))
        print(
            f"{path.stem}: lite encode {lite_enc:.2f} s, decode {lite_dec:.2f} s | "
            f"AVIF encode {avif_enc:.2f} s, decode {avif_dec * 1000:.0f} ms"
        )
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(
        f"median: encode lite/AVIF {med[0] / med[2]:.2f}x ({med[0]:.2f} s vs {med[2]:.2f} s), "
        f"decode lite/AVIF {med[1] / med[3]:.1f}x ({med[1]:.2f} s vs {med[3] * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
