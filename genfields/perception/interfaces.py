"""The four perception interfaces the rest of genfields depends on.

Every implementation takes images as float NCHW in [-1, 1] at any resolution (it resizes
internally) and is a torch module; ours are differentiable, so the editing losses can
back-propagate through them. Real-photo backends implement the same methods without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genfields.imageio import check_images

from .metrics import face_size


class LandmarksPose(NamedTuple):
    """Landmarks [B, 68, 2] in pixels of the input image and pose [B, 3] (yaw, pitch, roll) in degrees."""

    landmarks: torch.Tensor
    pose: torch.Tensor


@dataclass
class Detection:
    """One face: landmarks [68, 2] in image pixels, pose (yaw, pitch, roll) in degrees, embedding norm.

    `landmarks` is None when the backend cannot give them (3DDFA_V2 without the BFM) and `embedding_norm`
    when it has no identity network; `note` says why, in one line.
    """

    backend: str
    image_size: tuple[int, int]
    landmarks: Optional[np.ndarray]
    pose: tuple[float, float, float]
    embedding_norm: Optional[float]
    note: str = ""

    @property
    def face_size(self) -> Optional[float]:
        if self.landmarks is None:
            return None
        return float(face_size(torch.as_tensor(self.landmarks)[None])[0])

    def to_dict(self) -> dict:
        yaw, pitch, roll = self.pose
        return {"backend": self.backend, "width": self.image_size[0], "height": self.image_size[1],
                "yaw": yaw, "pitch": pitch, "roll": roll, "face_size": self.face_size,
                "embedding_norm": self.embedding_norm, "note": self.note,
                "landmarks": None if self.landmarks is None else np.round(self.landmarks, 2).tolist()}

    def summary(self) -> str:
        """One line: backend, pose, and face size / embedding norm when the backend gives them."""
        yaw, pitch, roll = self.pose
        parts = [f"{self.backend} backend, yaw {yaw:+.1f} pitch {pitch:+.1f} roll {roll:+.1f} deg"]
        if self.face_size is not None:
            parts.append(f"face size {self.face_size:.1f} px")
        if self.embedding_norm is not None:
            parts.append(f"identity embedding norm {self.embedding_norm:.3f}")
        return ", ".join(parts) + (f" ({self.note})" if self.note else "")


def resize_input(images: torch.Tensor, res: int) -> torch.Tensor:
    """Check a [B, 3, H, W] batch and resize it (antialiased bilinear, differentiable) to res x res."""
    check_images(images)
    if images.shape[-2:] == (res, res):
        return images
    return F.interpolate(images, size=(res, res), mode="bilinear", align_corners=False, antialias=True)


def crop_boxes(images: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear size x size crops of boxes [B, 4] (x0, y0, x1, y1 in continuous pixels: pixel i covers [i, i + 1])
    from images [B, 3, H, W] in [-1, 1]; black (-1) outside the image. Differentiable in the images."""
    h, w = images.shape[-2:]
    box = box.to(images.dtype)
    steps = (torch.arange(size, dtype=images.dtype, device=images.device) + 0.5) / size  # pixel centres
    xs = box[:, :1] + steps * (box[:, 2:3] - box[:, :1])  # [B, size]
    ys = box[:, 1:2] + steps * (box[:, 3:4] - box[:, 1:2])
    grid = torch.stack([(2 * xs / w - 1)[:, None, :].expand(-1, size, -1),
                        (2 * ys / h - 1)[:, :, None].expand(-1, -1, size)], dim=-1)
    # Sample (image + 1) with zero padding, so that outside the image is -1 (black), as face crops pad.
    return F.grid_sample(images + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def image_box(images: torch.Tensor, fractions: tuple[float, ...]) -> torch.Tensor:
    """A box (x0, y0, x1, y1) given as fractions of the image side -> pixel boxes [B, 4] for a batch."""
    h, w = images.shape[-2:]
    return (images.new_tensor(fractions) * images.new_tensor([w, h, w, h])).expand(images.shape[0], 4)


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


@dataclass
class PerceptionSet:
    """The networks of one preset: E_id, E_attr, E_lnd/E_pose and the FD feature network."""

    identity: IdentityEncoder
    attributes: AttributeEncoder
    landmarks: LandmarkPoseEstimator
    features: FeatureNetwork

    def networks(self) -> list[torch.nn.Module]:
        """The four networks (the FD network may share weights with E_attr)."""
        return [self.identity, self.attributes, self.landmarks, self.features]

    def to(self, device: str | torch.device) -> PerceptionSet:
        """Move every network to `device` (in place) and return the set."""
        for net in self.networks():
            net.to(device)
        return self
