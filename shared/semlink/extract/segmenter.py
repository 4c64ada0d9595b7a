"""Object masks from boxes with segment-anything's ``SamPredictor``.

SEDIC grounds each object name to a box, then SAM turns the box into a mask; the mask
stream carries it at H/8 x W/8. Real deployments load an official checkpoint (vit_b,
vit_l, vit_h) as a plain state dict (``weights_only=True``, strict keys); tests and
``--tiny`` demos build the same classes tiny.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from numpy.typing import NDArray
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from semlink.models.catalog import SAM_VARIANT, SamVariant
from semlink.models.weights import (
    WeightsError,
    load_error,
    load_state_dict,
    load_strict,
    verify_if_local,
)

Box = tuple[float, float, float, float]
"""x0, y0, x1, y1 in pixels of the original image."""


def tiny_sam(seed: int = 0) -> Sam:
    """SAM's architecture at toy size (CPU tests): 64-pixel input, one ViT block."""
    torch.manual_seed(seed)
    img_size, patch, dim = 64, 16, 16
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size,
            patch_size=patch,
            embed_dim=32,
            depth=1,
            num_heads=2,
            out_chans=dim,
            window_size=0,
            global_attn_indexes=(),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(img_size // patch, img_size // patch),
            input_image_size=(img_size, img_size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer_dim=dim,
            iou_head_depth=1,
            iou_head_hidden_dim=16,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=32, num_heads=2),
        ),
    ).eval()


def _official(variant: str) -> Callable[[], Sam]:
    def build() -> Sam:
        return sam_model_registry[variant](checkpoint=None)

    return build


BUILDERS: dict[str, Callable[[], Sam]] = {
    "tiny": tiny_sam,
    **{variant: _official(variant) for variant in get_args(SamVariant)},
}


class SamSegmenter:
    def __init__(self, sam: Sam) -> None:
        self.predictor = SamPredictor(sam.eval())

    @classmethod
    def from_checkpoint(cls, path: Path, variant: str = SAM_VARIANT) -> SamSegmenter:
        """An official SAM checkpoint (state dict), loaded without pickles and with strict keys
        and shapes; a ``manifest.json`` beside it (``semlink weights synth`` writes one) is
        checked first."""
        if variant not in BUILDERS:
            raise ValueError(f"unknown SAM variant {variant!r}; known: {', '.join(BUILDERS)}")
        if not path.is_file():
            raise WeightsError(f"SAM checkpoint {path} not found (SEMLINK_SAM_CHECKPOINT)")
        verify_if_local(path.parent)
        sam = BUILDERS[variant]()
        try:
            state = load_state_dict(path)
        except (RuntimeError, OSError, EOFError) as exc:
            raise load_error(f"SAM {variant} checkpoint {path}", exc) from exc
        load_strict(sam, state, what=f"SAM {variant} ({path})")
        return cls(sam)

    @torch.no_grad()
    def masks(self, image: NDArray[np.uint8], boxes: Sequence[Box]) -> list[NDArray[np.bool_]]:
        """One full-resolution mask per box (the best of SAM's single-mask output)."""
        if not boxes:
            return []
        self.predictor.set_image(np.ascontiguousarray(image))
        out = []
        for box in boxes:
            masks, _, _ = self.predictor.predict(
                box=np.asarray(box, dtype=np.float32), multimask_output=False
            )
            out.append(masks[0].astype(bool))
        return out
