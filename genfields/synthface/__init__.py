"""The synthetic face world: a procedural 3D face renderer with exact labels.

>>> from genfields.synthface import render_batch
>>> batch = render_batch(8, res=64, seed=0)          # images [8, 3, 64, 64] in [-1, 1]
>>> batch.landmarks.shape, batch.pose.shape
(torch.Size([8, 68, 2]), torch.Size([8, 3]))
"""

from .params import (EXPRESSION, IDENTITY, LIGHT, POSE, POSE_DISTRIBUTIONS, FaceParams, ParameterRangeError,
                     neutral_params, sample_params)
from .render import FaceBatch, FaceRenderer, iterate_batches, render_batch

__all__ = [
    "EXPRESSION", "IDENTITY", "LIGHT", "POSE", "POSE_DISTRIBUTIONS", "FaceParams", "ParameterRangeError",
    "neutral_params", "sample_params", "FaceBatch", "FaceRenderer", "iterate_batches", "render_batch",
]
