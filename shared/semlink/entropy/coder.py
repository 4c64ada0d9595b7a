"""Arithmetic (range) coding with adaptive context models on top of constriction.

The encoder buffers (symbol, probabilities) and codes them in one batch; the decoder
must be sequential because each model depends on what was decoded before.
Compressed 32-bit words are stored big-endian, so the coder's final interval sits
in the last bytes. :meth:`ArithmeticEncoder.finish` then cuts the tail to the
shortest byte string (optionally rounded up by one) that still decodes to the same
symbols, checked by decoding it with the recorded models; the decoder pads a cut
tail with zero bytes. This saves about two bytes per stream, which matters for a
15-byte caption.
"""

from __future__ import annotations

import constriction
import numpy as np
from numpy.typing import NDArray

from semlink.packet.errors import PacketFormatError

_BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)

_MAX_TOTAL = 1 << 10
"""Binary counts are halved past this total: recent statistics count more (non-stationary masks)."""


class AdaptiveBinaryModel:
    """Per-context adaptive bit probabilities from integer counts (Krichevsky-Trofimov style)."""

    def __init__(self, n_contexts: int) -> None:
        # Plain lists: these are touched once per coded bit in Python loops.
        self.zeros = [0] * n_contexts
        self.ones = [0] * n_contexts

    def p_one(self, context: int) -> float:
        """Probability that the next bit in ``context`` is 1."""
        return (2 * self.ones[context] + 1) / (2 * (self.zeros[context] + self.ones[context]) + 2)

    def update(self, context: int, bit: int) -> None:
        if bit:
            self.ones[context] += 1
        else:
            self.zeros[context] += 1
        if self.zeros[context] + self.ones[context] > _MAX_TOTAL:
            self.zeros[context] = (self.zeros[context] + 1) // 2
            self.ones[context] = (self.ones[context] + 1) // 2


class AdaptiveCategoricalModel:
    """Adaptive distribution over ``n`` symbols: integer prior counts plus ``increment`` per use."""

    def __init__(self, prior_counts: NDArray[np.int64], increment: int = 1) -> None:
        if prior_counts.ndim != 1 or len(prior_counts) == 0 or (prior_counts <= 0).any():
            raise ValueError("prior counts must be a non-empty vector of positive integers")
        self.increment = increment
        # The counts as float64 (integers, exact below 2**53) and their running total:
        # dividing them gives the very probabilities ``counts / counts.sum()`` would, at a
        # third of the cost on the text stream's 24,000-word table.
        self._weights = prior_counts.astype(np.float64)
        self._total = int(prior_counts.astype(np.int64).sum())

    def probabilities(self) -> NDArray[np.float64]:
        return self._weights / float(self._total)

    def update(self, symbol: int) -> None:
        self._weights[symbol] += self.increment
        self._total += self.increment


_PAD_WORDS = 2
"""Zero words appended before decoding: the range decoder's 64-bit state reads ahead."""


def _bytes_to_words(data: bytes) -> NDArray[np.uint32]:
    padded = data + b"\x00" * (-len(data) % 4 + 4 * _PAD_WORDS)
    return np.frombuffer(padded, dtype=">u4").astype(np.uint32)


def _round_up(prefix: bytes) -> bytes | None:
    """``prefix`` read as a big-endian number plus one, or None on overflow."""
    if not prefix or prefix == b"\xff" * len(prefix):
        return None
    return (int.from_bytes(prefix, "big") + 1).to_bytes(len(prefix), "big")


class ArithmeticEncoder:
    """Collects symbols with their models; :meth:`finish` returns the compressed bytes."""

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()
        self._bits: list[int] = []
        self._p_ones: list[float] = []
        # What was coded, in order, to check that a shortened tail still decodes.
        self._ops: list[tuple[NDArray[np.int32], NDArray[np.float64] | None]] = []
        self._categoricals: list[NDArray[np.float64]] = []

    def encode_bit(self, bit: int, p_one: float) -> None:
        self._bits.append(bit)
        self._p_ones.append(p_one)

    def encode_symbol(self, symbol: int, probabilities: NDArray[np.float64]) -> None:
        if len(probabilities) == 1:
            return  # a one-symbol alphabet carries no information
        self._flush_bits()
        model = constriction.stream.model.Categorical(probabilities, perfect=False)
        self._coder.encode(np.array([symbol], dtype=np.int32), model)
        self._ops.append((np.array([symbol], dtype=np.int32), None))
        self._categoricals.append(probabilities)

    def _flush_bits(self) -> None:
        if self._bits:
            bits = np.asarray(self._bits, dtype=np.int32)
            p_ones = np.asarray(self._p_ones, dtype=np.float64)
            self._coder.encode(bits, _BERNOULLI, p_ones)
            self._ops.append((bits, p_ones))
            self._bits = []
            self._p_ones = []

    def _decodes(self, data: bytes) -> bool:
        """Whether ``data`` decodes to exactly the recorded symbols."""
        try:
            decoder = constriction.stream.queue.RangeDecoder(_bytes_to_words(data))
            categoricals = iter(self._categoricals)
            for symbols, p_ones in self._ops:
                if p_ones is None:
                    model = constriction.stream.model.Categorical(next(categoricals), perfect=False)
                    if int(decoder.decode(model)) != int(symbols[0]):
                        return False
                elif not np.array_equal(decoder.decode(_BERNOULLI, p_ones), symbols):
                    return False
        except Exception:  # any decoder complaint means this tail is too short
            return False
        return True

    def finish(self) -> bytes:
        """Compressed bytes: the shortest tail that provably decodes to the coded symbols."""
        self._flush_bits()
        best = self._coder.get_compressed().astype(">u4").tobytes()
        for length in range(len(best) - 1, -1, -1):
            candidates = [best[:length], _round_up(best[:length])]
            shorter = next((c for c in candidates if c is not None and self._decodes(c)), None)
            if shorter is None:
                break
            best = shorter
        return best


class ArithmeticDecoder:
    """Sequential counterpart of :class:`ArithmeticEncoder`."""

    def __init__(self, data: bytes) -> None:
        self._coder = constriction.stream.queue.RangeDecoder(_bytes_to_words(data))

    def decode_bit(self, p_one: float) -> int:
        try:
            return int(self._coder.decode(_BERNOULLI, np.array([p_one], dtype=np.float64))[0])
        except (AssertionError, ValueError, RuntimeError) as exc:
            raise _invalid(exc) from exc

    def decode_symbol(self, probabilities: NDArray[np.float64]) -> int:
        if len(probabilities) == 1:
            return 0
        # lazy=True implies perfect=False, the encoder's quantization (constriction says the
        # two codes are the same; only the run time differs): a model used for one symbol
        # need not build its lookup table: a 24,000-symbol decode takes a third less time.
        model = constriction.stream.model.Categorical(probabilities, lazy=True)
        try:
            return int(self._coder.decode(model))
        except (AssertionError, ValueError, RuntimeError) as exc:
            raise _invalid(exc) from exc


def _invalid(exc: Exception) -> PacketFormatError:
    """constriction refuses a code stream no encoder wrote (with an AssertionError): the
    layer was made up or altered behind a valid CRC. Said as a packet error, not a crash."""
    return PacketFormatError(f"arithmetic-coded layer data is not a valid stream ({exc})")
