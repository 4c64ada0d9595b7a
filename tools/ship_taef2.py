"""Write the TAEF2 weights lite's restorer uses into the package: shared/semlink/data/.

TAEF2 (MIT, (c) 2023 Ollin Boer Bohan) comes from github.com/madebyollin/taesd at commit
5cccb12dc72074a4be35680c3b108548a7c69978, files taef2_encoder.pth and taef2_decoder.pth
(../shared/weights/taef2 in a checkout). The restorer calls both halves (the encoder for
its base latent, the decoder for the picture), so both go into one fp16 safetensors file,
keys prefixed ``encoder.`` and ``decoder.`` (TAEF2's own module names), with a manifest
(``taef2.json``: sha256, source, licence) and the MIT notice in data/NOTICE.

Run: ``.venv/bin/python tools/ship_taef2.py [DIRECTORY holding taef2_*.pth]``. The same
inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save

from semlink.models.taef2 import PACKAGED, TAEF2
from semlink.models.weights import load_state_dict, load_strict

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "shared/semlink/data"
DEFAULT_SOURCE = ROOT.parent / "shared/weights/taef2"
REPO = "github.com/madebyollin/taesd"
COMMIT = "5cccb12dc72074a4be35680c3b108548a7c69978"
PARTS = ("encoder", "decoder")
LICENCE = """\
MIT License

Copyright (c) 2023 Ollin Boer Bohan

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
NOTICE_HEADING = f"{PACKAGED}.safetensors:"
NOTICE = f"""\
{NOTICE_HEADING} the TAEF2 tiny autoencoder (encoder and decoder), stored as
fp16 safetensors by tools/ship_taef2.py from https://{REPO}
at commit {COMMIT}, files taef2_encoder.pth and
taef2_decoder.pth (repository root). Weights by Ollin Boer Bohan, under this licence:

{LICENCE}"""


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    model = TAEF2()
    sources = {}
    for part in PARTS:
        path = source / f"taef2_{part}.pth"
        load_strict(getattr(model, part), load_state_dict(path), what=f"TAEF2 {part}")
        sources[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    tensors = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    raw = save(tensors, metadata={"source": f"{REPO}@{COMMIT}", "license": "MIT"})
    out = DATA / f"{PACKAGED}.safetensors"
    out.write_bytes(raw)
    manifest = {
        "name": PACKAGED,
        "files": {out.name: hashlib.sha256(raw).hexdigest()},
        "dtype": "float16",
        "source": {"repo": REPO, "commit": COMMIT, "files": sources},
        "license": "MIT, (c) 2023 Ollin Boer Bohan (see NOTICE)",
    }
    (DATA / f"{PACKAGED}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    notice = DATA / "NOTICE"
    text = notice.read_text()
    if NOTICE_HEADING not in text:
        notice.write_text(text.rstrip("\n") + "\n\n" + NOTICE)
    print(f"wrote {len(tensors)} tensors, {len(raw)} bytes -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
