"""Predict the size of lite's VVC payload from the picture itself, without encoding it.

The rate control needs a first guess of the scale at which the budget lands. An encode
that only measures (a ``faster`` probe) costs ~0.2 s of a Kodak encode's ~1 s and still
misses the real encode by ~8% (its size ratio to the sent preset varies per picture). A
transform-coding estimate comes close (~12%) in milliseconds: the picture's luma in 8x8
orthonormal DCT blocks, and for each of three thresholds ``T`` (scaled with the QP's
quantizer step, x2 every 6 QPs) the sum over AC coefficients of ``log2(1 + |c| / T)``,
a proxy for the bits a transform coder spends on them. The log payload is linear in
``log1p`` of those sums, the QP and the log pixel count (:data:`COEFFICIENTS`, fitted by
``semlink train size-model``: least squares over real encodes of BSDS500 train + test
photos at random scales and QPs 44-47, never Kodak).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.fft import dctn

from semlink import calls

REFERENCE_QP = 45
"""The QP the thresholds are given at."""
THRESHOLDS = (16.0, 64.0, 256.0)
"""DCT magnitude thresholds at :data:`REFERENCE_QP` (8-bit luma units, orthonormal DCT)."""
COEFFICIENTS = (4.2659, 0.0027, 0.4495, -9.5703, 12.9731, -2.9206)
"""log(payload bytes) = c0 + c1 (QP - 45) + c2 log(pixels) + sum c3.. log1p(feature_T):
fitted by ``semlink train size-model`` (1200 encodes in VVC configuration 3 of BSDS500
train + test photos, scales 0.75-1.5x around lite's, QPs 44-47): cross-validated error
11.6% (sd of log size, 5 folds by photo). On 40 BSDS500 val photos at 0.02, 0.03 and 0.05
bpp the fit needed 4.97 encodes instead of 6.52 with the two ``faster`` probes it replaced
(probes included), median 0.61 s instead of 0.70 s (configuration 2)."""


BAND_ROWS = 1024
"""Rows of the picture the features look at at once (a multiple of 8): a large picture
costs one band's float copies, not the whole picture's, and the call's deadline is
checked between bands. Pictures of at most this many rows take one band."""


def features(picture: NDArray[np.uint8], qp: float) -> NDArray[np.float64]:
    """The regressors of :data:`COEFFICIENTS` for ``picture`` (RGB, the size vvenc codes)
    coded at ``qp``: 1, QP - 45, log pixels, log1p of each threshold's log-magnitude sum."""
    height, width = (picture.shape[0] // 8) * 8, (picture.shape[1] // 8) * 8
    out = [1.0, qp - REFERENCE_QP, math.log(max(1, picture.shape[0] * picture.shape[1]))]
    if height == 0 or width == 0:
        return np.array(out + [0.0] * len(THRESHOLDS))
    step = 2 ** ((qp - REFERENCE_QP) / 6)
    sums = [0.0] * len(THRESHOLDS)
    for top in range(0, height, BAND_ROWS):
        calls.check()
        rgb = picture[top : min(height, top + BAND_ROWS), :width].astype(np.float64)
        # (the encoder's choices follow: the same arithmetic on every CPU)
        y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        rows = y.shape[0]
        blocks = y.reshape(rows // 8, 8, width // 8, 8).transpose(0, 2, 1, 3)
        ac = np.abs(dctn(blocks, axes=(2, 3), norm="ortho"))
        ac[:, :, 0, 0] = 0
        for index, threshold in enumerate(THRESHOLDS):
            sums[index] += float(np.log2(1 + ac / (threshold * step)).sum())
    return np.array(out + [math.log1p(total) for total in sums])


def predicted_size(
    picture: NDArray[np.uint8], qp: float, coefficients: tuple[float, ...] = COEFFICIENTS
) -> float:
    """Predicted payload bytes of ``picture`` coded at ``qp`` in lite's configuration."""
    return math.exp(float(features(picture, qp) @ np.asarray(coefficients)))
