"""The sedic profile at its real size: components, decode steps, whole decode, encode.

Runs on the real-size weights with random values that ``semlink weights synth`` writes in
the publishers' layouts (written first into ``--root`` when missing), through semlink's own
loaders, and prints one table:

* per component: parameters, load time (semlink's loader, manifest check included) and the
  peak RSS of a fresh process that loaded it and read every weight once;
* per decode step at each size: a plain step (ControlNet + UNet) vs an ORAG-guided one
  (energy pass over the hooked cross-attention layers, gradient to the latent, then the
  plain step), their ratio (SEDIC's goal: guided <= 1.25x plain), and what the guidance
  costs part by part (ControlNet, UNet, energy forward, energy forward + backward);
* whole decode at each size (GenerativeDecoder: DynDiff's steps capped by ``--max-steps``,
  global pass + one object pass, guidance on the first half of the object's steps) and the
  decoder process's peak RSS (CUDA: peak allocated GPU memory too);
* the sedic encode at each size in a fresh process (captioner -> Grounding DINO -> SAM,
  then the reference's rate control), by stage, and that process's peak RSS.

Run: ``nice -n 10 .venv/bin/python bench/bench_sedic.py`` (CPU, fp32; ~25 min on 2 busy
cores). ``bench/gpu_check.sh`` runs it on a CUDA device in fp16. The pictures of random
weights mean nothing; parameters, memory and time are the real ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sedic.children import COMPONENTS, run_child
from bench.sedic.decoder import decoder_rows
from bench.sedic.tables import print_components, print_decoder, print_encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="synthesized weights")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=4, help="DynDiff's cap (whole decode)")
    parser.add_argument("--bpp", type=float, default=0.03)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--fp16", action="store_true", help="half precision (CUDA)")
    parser.add_argument("--skip-components", action="store_true")
    parser.add_argument("--skip-encode", action="store_true")
    args = parser.parse_args()

    import torch

    from semlink.models.synth import cached, default_cache

    root = args.root or default_cache()
    sizes = [int(s) for s in args.sizes.split(",")]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"weights: {cached(root, log=lambda m: print('  synth ' + m, flush=True)).root}")
    print(
        f"device {device}, {'fp16' if args.fp16 else 'fp32'}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, sizes {sizes}, reps {args.reps}",
        flush=True,
    )
    components: list[tuple[str, dict[str, Any]]] = []
    if not args.skip_components:
        for name in COMPONENTS:
            result = run_child(root, sizes, args.bpp, "component", name)
            components.append((name, result))
            print(f"  component {name}: {json.dumps(result)}", flush=True)
    rows, info = decoder_rows(root, sizes, args.reps, args.max_steps, device, args.fp16)
    encoded = None if args.skip_encode else run_child(root, sizes, args.bpp, "encode")

    print()
    if components:
        print_components(components)
        print()
    print_decoder(rows, info)
    if encoded:
        print_encode(encoded)


if __name__ == "__main__":
    main()
