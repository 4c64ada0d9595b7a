"""Text stream: captions and object descriptions, arithmetic-coded with a static English model.

The model (never raw UTF-8):

* the text is split into tokens: words (letters, optionally one apostrophe part) and
  single other characters (space, punctuation, digits, any UTF-8 byte);
* a token *class* (known word, out-of-vocabulary word, space, other byte, end) is coded
  with adaptive counts conditioned on the previous class: after a word a space is
  nearly certain, after a space a word is;
* a known word is coded by its frequency in a 24,000-word English table shipped as
  data (``data/english_words.txt.gz``); a word seen earlier in the same text gets
  cheaper (adaptive increment);
* the word's case (lower, Capitalized, UPPER) is coded with a context that knows
  whether a sentence just began; mixed-case words are spelled byte by byte;
* an out-of-vocabulary word is spelled with an order-1 letter model built from the
  same table.

Measured on 60 real captions (tests/data/captions.txt): see ``semlink info`` and
``tests/test_text.py`` for bits per character.

Limits (a format rule: the encoder refuses what the decoder would refuse): one text
layer codes at most :data:`MAX_TEXT_SYMBOLS` symbols (token classes, cases, words,
letters, bytes and the end) and rebuilds at most :data:`MAX_TEXT_BYTES` bytes. Without
the symbol limit a few bytes behind a valid CRC, or a valid 120-byte payload coding
``"a " * 30000``, made the decoder spend seconds of CPU rebuilding 64 KiB (the old limit,
which let an encoder write such layers; a packet holding one is now refused as malformed,
INVALID_ARGUMENT. Captions and descriptions as the encoders make them are far inside the
limits, so no version was added for it).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from semlink.entropy import AdaptiveCategoricalModel, ArithmeticDecoder, ArithmeticEncoder
from semlink.packet.errors import PacketFormatError

MAX_TEXT_SYMBOLS = 1024
"""Most symbols one text layer codes, its end included. A caption or object description is a
sentence or a few words: the 60 real captions of tests/data/captions.txt code 8 to 86, and
sedic's extraction stops at 40 words (about 160). 1024 holds about 1,200 characters of
English, 170 of a CJK script, and any text of at most :data:`ALWAYS_FITS` characters. The
decoder's worst case, a third of the symbols words from the 24,000-word table, cost 20-30 ms
of CPU on a loaded 2-core machine (the 64 KiB limit before it: 3-4 s)."""

ALWAYS_FITS = (MAX_TEXT_SYMBOLS - 1) // 8
"""Characters any text may have and still fit: one character codes to at most 8 symbols (a
class and a byte for each of 4 UTF-8 bytes)."""

MAX_TEXT_BYTES = 4 * 1024
"""Longest text (UTF-8 bytes) one layer carries; a hostile payload cannot make more."""

_LIMITS = (
    f"a caption or object description codes to at most {MAX_TEXT_SYMBOLS} symbols and "
    f"{MAX_TEXT_BYTES} UTF-8 bytes: about 1,200 characters of English prose, or any text "
    f"of up to {ALWAYS_FITS} characters"
)

_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|.", re.S)

# Token classes.
WORD, OOV, SPACE, BYTE, END = range(5)
# Contexts of the class model: what the previous token was.
_START, _AFTER_WORD, _AFTER_SPACE, _AFTER_BYTE = range(4)
_CLASS_PRIORS = np.array(
    [
        [90, 6, 1, 4, 2],  # at the start
        [1, 1, 80, 20, 6],  # after a word
        [90, 6, 1, 6, 1],  # after a space
        [12, 2, 50, 20, 15],  # after another character
    ],
    dtype=np.int64,
)
_CLASS_INCREMENT = 2

LOWER, CAPITAL, UPPER = range(3)
_CASE_PRIORS = np.array([[30, 65, 5], [94, 5, 1]], dtype=np.int64)  # sentence start / inside

_LETTERS = "abcdefghijklmnopqrstuvwxyz'"
_LETTER_END = len(_LETTERS)  # end-of-word symbol of the spelling model
_SENTENCE_END = frozenset(".!?:")
_COMMON_BYTES = b",.-'\"():;!?/0123456789"


@dataclass(frozen=True)
class _EnglishModel:
    words: tuple[str, ...]
    index: dict[str, int]
    counts: NDArray[np.int64]
    word_increment: int
    letter_priors: NDArray[np.int64]  # (previous letter or start, next letter or end)
    byte_priors: NDArray[np.int64]


@lru_cache(maxsize=1)
def english_model() -> _EnglishModel:
    """Load the shipped word table once per process."""
    raw = resources.files("semlink").joinpath("data/english_words.txt.gz").read_bytes()
    words: list[str] = []
    counts: list[int] = []
    for line in gzip.decompress(raw).decode().splitlines():
        word, count = line.split("\t")
        words.append(word)
        counts.append(int(count))
    count_array = np.array(counts, dtype=np.int64)
    # Spelling model for unknown words: letter bigrams over word types (rare words
    # look like the table's rare words, not like "the").
    letters = np.ones((len(_LETTERS) + 1, len(_LETTERS) + 1), dtype=np.int64)
    for word in words:
        previous = len(_LETTERS)  # start row
        for ch in word:
            current = _LETTERS.index(ch)
            letters[previous, current] += 4
            previous = current
        letters[previous, _LETTER_END] += 4
    byte_priors = np.ones(256, dtype=np.int64)
    for b in _COMMON_BYTES:
        byte_priors[b] += 40
    return _EnglishModel(
        words=tuple(words),
        index={w: i for i, w in enumerate(words)},
        counts=count_array,
        word_increment=int(count_array.sum() // 64),
        letter_priors=letters,
        byte_priors=byte_priors,
    )


def _case_of(word: str) -> int | None:
    if word.islower():
        return LOWER
    if word[0].isupper() and (len(word) == 1 or word[1:].islower()):
        return CAPITAL
    if word.isupper():
        return UPPER
    return None  # mixed case: spelled byte by byte


def _apply_case(word: str, case: int) -> str:
    if case == CAPITAL:
        return word[0].upper() + word[1:]
    if case == UPPER:
        return word.upper()
    return word


class _TextModels:
    """All adaptive state shared by encoder and decoder, updated in the same order."""

    def __init__(self) -> None:
        self.english = english_model()
        self.classes = [AdaptiveCategoricalModel(p, _CLASS_INCREMENT) for p in _CLASS_PRIORS]
        self.cases = [AdaptiveCategoricalModel(p, 2) for p in _CASE_PRIORS]
        self.words = AdaptiveCategoricalModel(self.english.counts, self.english.word_increment)
        self.letters = [AdaptiveCategoricalModel(row, 2) for row in self.english.letter_priors]
        self.bytes = AdaptiveCategoricalModel(self.english.byte_priors, 8)
        self.context = _START
        self.sentence_start = True

    def after(self, token_class: int, text: str) -> None:
        self.context = {WORD: _AFTER_WORD, OOV: _AFTER_WORD, SPACE: _AFTER_SPACE}.get(
            token_class, _AFTER_BYTE
        )
        if token_class in (WORD, OOV):
            self.sentence_start = False
        elif token_class == BYTE and text in _SENTENCE_END:
            self.sentence_start = True


def encode_text(text: str) -> bytes:
    """Code ``text`` (any Unicode) losslessly.

    Raises ``ValueError`` for a text over the layer's limits (:data:`MAX_TEXT_SYMBOLS`,
    :data:`MAX_TEXT_BYTES`): the decoder would refuse it.
    """
    return _encode(text, MAX_TEXT_SYMBOLS)


def _encode(text: str, max_symbols: int) -> bytes:
    data = text.encode("utf-8")
    if len(data) > MAX_TEXT_BYTES:
        raise ValueError(f"text is {len(data)} UTF-8 bytes; {_LIMITS}")
    models = _TextModels()
    coder = ArithmeticEncoder()
    symbols = 0

    def put(symbol: int, probabilities: NDArray[np.float64]) -> None:
        nonlocal symbols
        symbols += 1
        if symbols > max_symbols:  # checked as it goes: a long text is refused early
            raise ValueError(f"text codes to more than {max_symbols} symbols; {_LIMITS}")
        coder.encode_symbol(symbol, probabilities)

    def put_class(token_class: int) -> None:
        model = models.classes[models.context]
        put(token_class, model.probabilities())
        model.update(token_class)

    def put_byte(value: int) -> None:
        put_class(BYTE)
        put(value, models.bytes.probabilities())
        models.bytes.update(value)
        models.after(BYTE, chr(value) if value < 128 else "")

    for match in _TOKEN.finditer(text):
        token = match.group()
        case = _case_of(token) if token[0].isascii() and token[0].isalpha() else None
        if case is None:
            if token == " ":
                put_class(SPACE)
                models.after(SPACE, token)
            else:
                for value in token.encode("utf-8"):
                    put_byte(value)
            continue
        lower = token.lower()
        word_id = models.english.index.get(lower)
        put_class(WORD if word_id is not None else OOV)
        case_model = models.cases[0 if models.sentence_start else 1]
        put(case, case_model.probabilities())
        case_model.update(case)
        if word_id is not None:
            put(word_id, models.words.probabilities())
            models.words.update(word_id)
            models.after(WORD, token)
        else:
            previous = len(_LETTERS)
            for ch in [*lower, None]:
                symbol = _LETTER_END if ch is None else _LETTERS.index(ch)
                letter_model = models.letters[previous]
                put(symbol, letter_model.probabilities())
                letter_model.update(symbol)
                previous = symbol
            models.after(OOV, token)
    put_class(END)
    return coder.finish()


def decode_text(payload: bytes) -> str:
    """Inverse of :func:`encode_text`. Raises ``PacketFormatError`` on malformed input,
    after at most :data:`MAX_TEXT_SYMBOLS` symbols whatever the payload."""
    models = _TextModels()
    decoder = ArithmeticDecoder(payload)
    symbols = 0

    def get(probabilities: NDArray[np.float64]) -> int:
        nonlocal symbols
        symbols += 1
        if symbols > MAX_TEXT_SYMBOLS:
            raise PacketFormatError(
                f"text layer codes more than {MAX_TEXT_SYMBOLS} symbols without its end; {_LIMITS}"
            )
        return decoder.decode_symbol(probabilities)

    out = bytearray()
    while True:
        if len(out) > MAX_TEXT_BYTES:
            raise PacketFormatError(f"text layer decodes to more than {MAX_TEXT_BYTES} bytes")
        model = models.classes[models.context]
        token_class = get(model.probabilities())
        model.update(token_class)
        if token_class == END:
            break
        if token_class == SPACE:
            out += b" "
            models.after(SPACE, " ")
        elif token_class == BYTE:
            value = get(models.bytes.probabilities())
            models.bytes.update(value)
            out.append(value)
            models.after(BYTE, chr(value) if value < 128 else "")
        else:
            case_model = models.cases[0 if models.sentence_start else 1]
            case = get(case_model.probabilities())
            case_model.update(case)
            if token_class == WORD:
                word_id = get(models.words.probabilities())
                models.words.update(word_id)
                word = models.english.words[word_id]
            else:
                letters = []
                previous = len(_LETTERS)
                while True:
                    letter_model = models.letters[previous]
                    symbol = get(letter_model.probabilities())
                    letter_model.update(symbol)
                    if symbol == _LETTER_END:
                        break
                    letters.append(_LETTERS[symbol])
                    previous = symbol
                word = "".join(letters)
            out += _apply_case(word, case).encode()
            models.after(token_class, word)
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PacketFormatError(f"text layer does not decode to UTF-8 text: {exc}") from exc
