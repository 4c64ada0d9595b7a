"""Model backends: safe weight loading with manifests, and the components profiles use."""

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
