"""Peak memory of one lite encode and one decode against picture size (issue 32.2).

Each measurement runs in a fresh process: the baseline is that process after importing
semlink and loading lite's models (measured in the same run), the peak is the largest
resident set of the process and its ffmpeg children together (sampled every 20 ms). The
picture is skimage's astronaut scaled up with Lanczos (natural
content: flat black pictures code in less), at 0.03 bpp; the decode runs at the packet's
realism (the shipped default). Prints one row per size, the per-request cost in bytes per
pixel, and the linear fit ``semlink.serving.memory`` should hold (it prints the
formula's estimate beside each measurement and the ratio measured / estimate).

Run: ``.venv/bin/python bench/bench_memory.py [--megapixels 1,4,16,64]
[--decode-megapixels 1,4,16]``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1024 * 1024


class PeakSampler:
    """The largest resident set of this process plus its children (ffmpeg) at once,
    sampled every 20 ms while running (a vfork'd child's own ru_maxrss counts the
    parent's pages, so the children's rusage cannot say it)."""

    def __init__(self) -> None:
        import threading

        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                total = self._me.memory_info().rss
                for child in self._me.children(recursive=True):
                    total += child.memory_info().rss
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.02)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        self.peak = max(self.peak, own)


def _current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def child(task: str, megapixels: float) -> None:
    import numpy as np
    from PIL import Image
    from skimage import data

    from semlink import decode, encode
    from semlink.imaging import read_image
    from semlink.restore.pixel import load_shipped
    from semlink.serving.client import png_bytes
    from services.decoder.server import image_bytes

    load_shipped()
    side = math.sqrt(megapixels * 1e6 / (3 / 2))
    width, height = round(side * 3 / 2) // 2 * 2, round(side) // 2 * 2
    picture = np.asarray(Image.fromarray(data.astronaut()).resize((width, height)))
    warm = encode(picture[:64, :96], target_bpp=0.5)  # load what encode and decode load
    decode(warm.data)
    upload = png_bytes(picture) if task == "encode" else b""
    packet = encode(picture, target_bpp=0.03).data if task == "decode" else b""
    del warm, picture
    baseline = _current_rss()
    start = time.perf_counter()
    with PeakSampler() as sampler:
        if task == "encode":  # what the encoder service does with a request
            encode(read_image(upload), target_bpp=0.03)
        else:  # and the decoder's
            image_bytes(decode(packet).image, 0)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "pixels": width * height,
                "width": width,
                "height": height,
                "baseline": baseline,
                "peak": sampler.peak,
                "seconds": seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", default="1,4,16,64", help="encode sizes")
    parser.add_argument(
        "--decode-megapixels", default="1,4,16", help="decode sizes (the decoder's limit: 16.8)"
    )
    parser.add_argument("--child", choices=["encode", "decode"])
    args = parser.parse_args()
    sizes = [float(m) for m in args.megapixels.split(",")]
    if args.child:
        child(args.child, sizes[0])
        return
    from semlink.serving.memory import DECODE, ENCODE

    print(
        f"{'task':7} {'MP':>5} {'seconds':>8} {'baseline':>9} {'peak':>8} {'request':>8}"
        f" {'B/px':>6} {'formula':>8} {'ratio':>6}"
    )
    decode_sizes = [float(m) for m in args.decode_megapixels.split(",")]
    for task, model, task_sizes in (("encode", ENCODE, sizes), ("decode", DECODE, decode_sizes)):
        for mp in task_sizes:
            done = subprocess.run(
                [sys.executable, __file__, "--child", task, "--megapixels", str(mp)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            peak = row["peak"]
            request = peak - row["baseline"]
            estimate = model.bytes_for(row["width"], row["height"])
            print(
                f"{task:7} {row['pixels'] / 1e6:5.1f} {row['seconds']:8.1f} "
                f"{row['baseline'] / MiB:8.0f}M {peak / MiB:7.0f}M {request / MiB:7.0f}M "
                f"{request / row['pixels']:6.1f} {estimate / MiB:7.0f}M {request / estimate:6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
