"""Library exceptions -> gRPC status codes (the table below; README, "Services", lists them)."""

from __future__ import annotations

import grpc

from semlink.errors import BudgetError, WeightsError
from semlink.packet import (
    EntropyMismatchError,
    FingerprintMismatchError,
    PacketFormatError,
    PacketIntegrityError,
    PacketLimitError,
    PacketVersionError,
)

_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (WeightsError, grpc.StatusCode.FAILED_PRECONDITION),  # models missing or tampered
    (PacketIntegrityError, grpc.StatusCode.DATA_LOSS),
    (EntropyMismatchError, grpc.StatusCode.DATA_LOSS),  # learned layer, other arithmetic
    (PacketVersionError, grpc.StatusCode.FAILED_PRECONDITION),
    (FingerprintMismatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (PacketFormatError, grpc.StatusCode.INVALID_ARGUMENT),
    (PacketLimitError, grpc.StatusCode.INVALID_ARGUMENT),
    (BudgetError, grpc.StatusCode.INVALID_ARGUMENT),
    (KeyError, grpc.StatusCode.INVALID_ARGUMENT),  # unknown profile names
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status a library exception maps to; None for unexpected errors (-> INTERNAL)."""
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            return code
    return None


def message_of(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
