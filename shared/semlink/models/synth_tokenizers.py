"""Tokenizers for the synthesized real-size weights (:mod:`semlink.models.synth`), built
here because they cannot be downloaded either, in the publishers' file formats:

* BERT (Grounding DINO, BLIP): a WordPiece ``vocab.txt`` of bert-base-uncased's size (30522,
  BLIP adds ``[DEC]`` and ``[ENC]``) with its special tokens and ASCII characters at
  bert-base-uncased's ids (``[CLS]`` 101, ``[SEP]`` 102, ``.`` 1012, ``?`` 1029: Grounding
  DINO's text masks hard-code those), whole words from the package's English word table
  (``data/english_words.txt.gz``), then the table's commonest word endings as ``##`` pieces;
* CLIP (Stable Diffusion): a byte-level BPE (``vocab.json`` + ``merges.txt``, ``</w>``
  word ends) trained here with ``tokenizers`` on the same word table, weighted by frequency;
  the text encoder keeps the published 49408-row embedding, the trained vocabulary uses
  its first rows.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

BERT_SIZE = 30522
CLIP_SIZE = 49408


def _word_table() -> list[tuple[str, int]]:
    """(word, count) of the package's English word table, plain a-z words only."""
    raw = resources.files("semlink").joinpath("data/english_words.txt.gz").read_bytes()
    table = []
    for line in gzip.decompress(raw).decode().splitlines():
        word, _, count = line.partition("\t")
        if word.isascii() and word.isalpha() and word.islower():
            table.append((word, int(count or 1)))
    return table


def bert_vocab() -> list[str]:
    """A bert-base-uncased-shaped WordPiece vocabulary (30522 tokens, see the module doc)."""
    vocab = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"[unused{i}]" for i in range(99, 994)]  # bert-base-uncased: ids 104..998
    vocab += [chr(c) for c in range(33, 127) if not chr(c).isupper()]  # "!" is 999, "." 1012
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    seen = set(vocab)
    words = _word_table()
    for word, _ in words:
        if word not in seen and len(vocab) < BERT_SIZE:
            vocab.append(word)
            seen.add(word)
    endings: Counter[str] = Counter()
    for word, count in words:
        for n in range(2, min(6, len(word))):
            endings[word[-n:]] += count
    for ending, _ in endings.most_common():
        if len(vocab) >= BERT_SIZE:
            break
        if f"##{ending}" not in seen:
            vocab.append(f"##{ending}")
            seen.add(f"##{ending}")
    while len(vocab) < BERT_SIZE:  # only if the table were too small
        vocab.append(f"[unused{len(vocab)}]")
    assert vocab.index(".") == 1012 and vocab.index("?") == 1029
    return vocab


def write_bert_tokenizer(directory: Path, extra_special: tuple[str, ...] = ()) -> Any:
    """A BertTokenizer over :func:`bert_vocab` (plus ``extra_special`` tokens appended,
    BLIP's ``[DEC]``/``[ENC]``), saved in transformers' layout; returned."""
    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab() + list(extra_special)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    kwargs: dict[str, Any] = {"do_lower_case": True, "model_max_length": 512}
    if extra_special:
        kwargs["bos_token"] = extra_special[0]
        kwargs["additional_special_tokens"] = list(extra_special[1:])
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, **kwargs)
    tokenizer.save_pretrained(directory)
    return tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clip_merges(limit: int = CLIP_SIZE - 514) -> list[tuple[str, str]]:
    """BPE merges with CLIP's ``</w>`` word ends, trained on the word table (frequency
    weighted, log scale) with ``tokenizers``; at most ``limit`` (CLIP's vocabulary size less
    its 512 byte symbols and 2 specials)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    alphabet = list(_bytes_to_unicode().values())
    trainer = trainers.BpeTrainer(
        vocab_size=limit + len(alphabet) * 2,
        min_frequency=1,
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    words = _word_table()
    lines = (" ".join([w] * max(1, int(math.log2(max(c, 2))))) for w, c in words)
    tokenizer.train_from_iterator(lines, trainer=trainer)
    merges: list[tuple[str, str]] = []
    for merge in json.loads(tokenizer.to_str())["model"]["merges"]:
        a, b = merge if isinstance(merge, list) else merge.split(" ")
        merges.append((a, b))
    return merges[:limit]


def write_clip_tokenizer(directory: Path) -> None:
    """vocab.json + merges.txt in CLIP's construction (bytes, bytes+``</w>``, one token per
    merge, then ``<|startoftext|>`` and ``<|endoftext|>``), with SD 1.5's tokenizer config."""
    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    merges = clip_merges()
    seen = set(tokens)
    kept = []
    for a, b in merges:
        if a + b not in seen:
            kept.append((a, b))
            tokens.append(a + b)
            seen.add(a + b)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in kept)
    )
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(published_path(f"sd15-{name}"), directory / name)


def published_path(name: str) -> Path:
    """A published configuration kept in the package (``semlink/data/published/``)."""
    return Path(str(resources.files("semlink").joinpath("data/published", name)))
