"""The four perception interfaces the rest of genfields depends on.

Every implementation takes images as float NCHW in [-1, 1] at any resolution (it resizes
internally) and is a torch module; ours are differentiable, so the editing losses can
back-propagate through them. Real-photo backends implement the same methods without gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from genfields.imageio import check_images


class LandmarksPose(NamedTuple):
    """Landmarks [B, 68, 2] in pixels of the input image and pose [B, 3] (yaw, pitch, roll) in degrees."""

    landmarks: torch.Tensor
    pose: torch.Tensor


def resize_input(images: torch.Tensor, res: int) -> torch.Tensor:
    """Check a [B, 3, H, W] batch and resize it (antialiased bilinear, differentiable) to res x res."""
    check_images(images)
    if images.shape[-2:] == (res, res):
        return images
    return F.interpolate(images, size=(res, res), mode="bilinear", align_corners=False, antialias=True)


class IdentityEncoder(nn.Module):
    """Image -> identity embedding [B, D]; two images show the same person when `similarity` is high."""

    embedding_dim: int

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of embeddings [B, D] x [B, D] -> [B] (the paper's identity metric)."""
        return F.cosine_similarity(a, b, dim=-1)


class AttributeEncoder(nn.Module):
    """Image -> attribute features F_attr [B, D], the input of the editor's mapping network M_ref."""

    feature_dim: int

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LandmarkPoseEstimator(nn.Module):
    """Image -> 68 iBUG landmarks in input pixels and yaw/pitch/roll in degrees (synthface conventions)."""

    def forward(self, images: torch.Tensor) -> LandmarksPose:
        raise NotImplementedError

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:
        return self(images).landmarks

    def pose(self, images: torch.Tensor) -> torch.Tensor:
        return self(images).pose


class FeatureNetwork(nn.Module):
    """Image -> features [B, D] whose Gaussian statistics give a Fréchet distance (FD; FID only with InceptionV3)."""

    feature_dim: int

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
