"""Build the static English word model shipped in shared/semlink/data/english_words.txt.gz.

Run once, offline afterwards: `pip install --target /tmp/wf wordfreq==3.1.1` then
`PYTHONPATH=/tmp/wf python tools/build_text_model.py`. The output is a table of the
most frequent English words with integer counts (frequency x 2^28), derived from
wordfreq's data (CC-BY-SA 4.0, see shared/semlink/data/NOTICE).
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

from wordfreq import top_n_list, word_frequency

VOCABULARY = 24000
OUT = Path(__file__).resolve().parents[1] / "shared/semlink/data/english_words.txt.gz"
WORD = re.compile(r"^[a-z]+(?:'[a-z]+)?$")


def main() -> None:
    rows = []
    for word in top_n_list("en", VOCABULARY * 2):
        if not WORD.match(word):
            continue
        rows.append((word, max(1, round(word_frequency(word, "en") * 2**28))))
        if len(rows) == VOCABULARY:
            break
    body = "".join(f"{w}\t{c}\n" for w, c in rows).encode()
    # mtime=0: the same input gives the same bytes, so the file's hash is stable.
    OUT.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
    print(f"wrote {len(rows)} words, {OUT.stat().st_size} bytes -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
