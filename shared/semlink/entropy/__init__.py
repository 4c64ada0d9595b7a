"""Entropy coding shared by the streams.

Range coding comes from ``constriction`` (Rust, fixed-point arithmetic); the models
here only produce probabilities from integer counts with plain IEEE arithmetic, so
encoder and decoder compute bit-identical models on every machine. Golden-bitstream
tests pin the output.
"""

from semlink.entropy.coder import (
    AdaptiveBinaryModel,
    AdaptiveCategoricalModel,
    ArithmeticDecoder,
    ArithmeticEncoder,
)

__all__ = [
    "AdaptiveBinaryModel",
    "AdaptiveCategoricalModel",
    "ArithmeticDecoder",
    "ArithmeticEncoder",
]
