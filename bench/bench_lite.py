"""lite's CPU cost per image against one plain VVC encode and decode, measured in the same run.

For each Kodak image at one rate: lite's encode (size model's scale/QP + a few
encodes, two processes side by side), against one plain vvenc encode of the same
picture at the scale lite picked and the QP it aims at with vvenc's default preset (medium: what a
standard VVC sender runs, once, if it already knew scale and QP) and with lite's own
configuration (fast, 128x128 CTUs); lite's decode
(reference + learned restorer at the packet's realism, when its weights are present)
against a plain VVC decode of the same stream plus Lanczos. Also prints budget fill,
restorer-off, realism-0 (fidelity network) and realism-1 (perceptual network) decode
times and peak RSS.

Run: ``.venv/bin/python bench/bench_lite.py [--images N] [--bpp 0.03]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semlink import decode, encode
from semlink.imaging import resize
from semlink.restore.pixel import load_shipped
from semlink.streams.reference import small_size
from semlink.streams.reference.ratecontrol import target_qp
from semlink.streams.reference.vvc import VVC, VVC_MEDIUM

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--bpp", type=float, default=0.03)
    args = parser.parse_args()
    restorer = load_shipped()
    print(
        "learned restorer: "
        + (f"on, default realism {restorer.realism}" if restorer is not None else "off (Lanczos)")
    )
    rows = []
    for path in sorted(KODAK.glob("*.png"))[: args.images]:
        image = np.asarray(Image.open(path).convert("RGB"))
        h, w = image.shape[:2]
        budget = int(args.bpp * w * h / 8)
        result, lite_enc = timed(lambda: encode(image, target_bpp=args.bpp))  # noqa: B023
        _, lite_dec = timed(lambda: decode(result.data))  # noqa: B023
        _, lanczos_dec = timed(lambda: decode(result.data, restorer=False))  # noqa: B023
        _, fidelity_dec = timed(lambda: decode(result.data, realism=0.0))  # noqa: B023
        _, realism_dec = timed(lambda: decode(result.data, realism=1.0))  # noqa: B023
        layer = result.packet.layers[0]
        k = layer.payload[0] or 256
        small = resize(image, *small_size(w, h, k))
        stream, vvc_enc = timed(lambda: VVC_MEDIUM.encode_qp(small, target_qp(budget)))  # noqa: B023
        _, own_enc = timed(lambda: VVC.encode_qp(small, target_qp(budget)))  # noqa: B023
        _, vvc_dec = timed(
            lambda: resize(VVC.decode(stream, small_size(w, h, k)), w, h)  # noqa: B023
        )
        fill = len(result.data) / budget
        rows.append(
            (
                lite_enc,
                vvc_enc,
                lite_dec,
                vvc_dec,
                lanczos_dec,
                fill,
                own_enc,
                fidelity_dec,
                realism_dec,
            )
        )
        print(
            f"{path.stem}: lite encode {lite_enc:.2f} s (one VVC encode: medium "
            f"{vvc_enc:.2f} s, lite's configuration {own_enc:.2f} s), "
            f"decode {lite_dec:.2f} s (realism 0 {fidelity_dec:.2f} s, realism 1 "
            f"{realism_dec:.2f} s; VVC + Lanczos "
            f"{vvc_dec * 1000:.0f} ms, lite without restorer {lanczos_dec * 1000:.0f} ms), "
            f"budget used {fill:.1%}"
        )
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"median: encode lite/VVC {med[0] / med[1]:.2f}x ({med[0]:.2f} s vs one medium encode "
        f"{med[1]:.2f} s; one encode in lite's configuration {med[6]:.2f} s), "
        f"decode lite/VVC {med[2] / med[3]:.1f}x ({med[2]:.2f} s vs {med[3] * 1000:.0f} ms; "
        f"at realism 0 {med[7]:.2f} s, at realism 1 {med[8]:.2f} s = {med[8] / med[3]:.1f}x "
        f"VVC + Lanczos; without restorer {med[4] * 1000:.0f} ms); budget used min "
        f"{min(r[5] for r in rows):.1%}; peak RSS {rss:.0f} MiB (largest ffmpeg {children:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
