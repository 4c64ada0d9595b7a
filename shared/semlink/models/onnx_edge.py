"""The edge's networks in ONNX: export the learned codec's analysis transform, run it in
onnxruntime.

An edge device often has an NPU or a small GPU with an onnxruntime provider and no
PyTorch. The analysis transform (``g_a``, ``h_a``) is the only network the encoder runs;
the entropy coding after it is integer arithmetic on tables both ends derive from the
weights. :func:`use_onnx` swaps the PyTorch analysis for an onnxruntime session, and the
packets stay the same bytes (tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from semlink.models.learned_codec import PAD, Analysis, AnalysisRunner, LearnedCodec

OPSET = 17


def export_analysis(codec: LearnedCodec, path: Path) -> Path:
    """Write ``codec``'s analysis transform as ONNX with dynamic height and width."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 2 * PAD, 2 * PAD)
    spatial = {2: "height", 3: "width"}
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(codec, example, path, spatial)
    return path


def _export(codec: LearnedCodec, example: torch.Tensor, path: Path, spatial: dict) -> None:
    torch.onnx.export(
        Analysis(codec.model).eval(),
        (example,),
        str(path),
        input_names=["x"],
        output_names=["y", "z"],
        dynamic_axes={"x": spatial, "y": spatial, "z": spatial},
        opset_version=OPSET,
        dynamo=False,
    )


def default_providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    preferred = ["CUDAExecutionProvider"] if torch.cuda.is_available() else []
    return [p for p in preferred if p in available] + ["CPUExecutionProvider"]


def onnx_runner(path: Path, providers: Sequence[str] | None = None) -> AnalysisRunner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(path), options, providers=list(providers or default_providers())
    )

    def run(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        y, z = session.run(["y", "z"], {"x": x})
        return np.asarray(y, np.float32), np.asarray(z, np.float32)

    return run


def use_onnx(codec: LearnedCodec, path: Path, providers: Sequence[str] | None = None) -> None:
    """Run ``codec``'s analysis transform from the ONNX file at ``path`` from now on."""
    codec.analysis_runner = onnx_runner(path, providers)
