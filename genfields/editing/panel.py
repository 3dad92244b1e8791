"""Pictures of edits: the three-image panel of `genfields edit` and the training sample grid."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from genfields.imageio import make_grid
from genfields.perception import LandmarksPose
from genfields.perception.detection import draw_detection
from genfields.perception.interfaces import Detection

from .editor import EditResult

CAPTION_HEIGHT = 16


def _annotated(image: torch.Tensor, found: LandmarksPose, i: int) -> np.ndarray:
    """Image i of a batch with its landmarks and angles drawn (perception's detect drawing)."""
    det = Detection("synth", (image.shape[-1], image.shape[-2]), found.landmarks[i].numpy(),
                    tuple(float(v) for v in found.pose[i]), 1.0)
    return draw_detection(image[i:i + 1], det)


def edit_panel(result: EditResult, i: int = 0, captions: tuple[str, str, str] | None = None) -> np.ndarray:
    """Identity, attribute and output of edit i side by side, each with landmarks and angles (uint8 HWC)."""
    tiles = [_annotated(result.identity_image, result.identity_pose, i),
             _annotated(result.attribute_image, result.attribute, i),
             _annotated(result.image, result.output, i)]
    captions = captions or ("identity", "attribute", "output")
    h, w = tiles[0].shape[:2]
    canvas = Image.new("RGB", (3 * w + 8, h + CAPTION_HEIGHT + 4), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (tile, caption) in enumerate(zip(tiles, captions)):
        canvas.paste(Image.fromarray(tile), (k * (w + 4), 0))
        draw.text((k * (w + 4) + 4, h + 2), caption, fill=(0, 0, 0))
    return np.asarray(canvas)


def edit_grid(identities: torch.Tensor, attributes: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """A grid: attributes along the top, identities down the left, output (r, c) in row r, column c.

    `outputs` is [R * C, 3, H, W] in row-major order for R identities and C attributes.
    """
    rows, cols = identities.shape[0], attributes.shape[0]
    blank = torch.ones_like(attributes[:1])
    tiles = [blank, attributes]
    for r in range(rows):
        tiles += [identities[r:r + 1], outputs[r * cols:(r + 1) * cols]]
    return make_grid(torch.cat(tiles), cols=cols + 1)
