"""Benchmark harness: lite against classical codecs at equal real bytes on real images."""

from semlink.eval.harness import EvalConfig, run_eval

__all__ = ["EvalConfig", "run_eval"]
