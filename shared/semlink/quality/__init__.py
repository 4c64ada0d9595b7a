"""Image quality metrics (full-reference and no-reference)."""

from semlink.quality.metrics import all_metrics, psnr
from semlink.quality.niqe import MissingWeightsError, niqe

__all__ = ["MissingWeightsError", "all_metrics", "niqe", "psnr"]
