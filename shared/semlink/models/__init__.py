"""Model backends: safe weight loading with manifests, the catalogue of backends, and the
components profiles use (which of them a profile holds is :mod:`semlink.resolver`'s choice)."""

from semlink.models.weights import (
    KeyMismatchError,
    TamperedWeightsError,
    WeightsError,
    load_state_dict,
    load_strict,
    sha256_of,
    verify_manifest,
    write_manifest,
)

__all__ = [
    "KeyMismatchError",
    "TamperedWeightsError",
    "WeightsError",
    "load_state_dict",
    "load_strict",
    "sha256_of",
    "verify_manifest",
    "write_manifest",
]
