"""How good is a generator of synthetic faces: FD against renders, and pose/expression coverage.

FD is the Fréchet distance in the synthetic world's feature network (never called FID). Its
floor is the FD between two disjoint sets of renders of the same size. Coverage compares the
spread of what the landmark/pose network sees on GAN samples with what it sees on renders:
the ratio of standard deviations of yaw, pitch, roll and of four expression measures taken
from the landmarks (1 means the generator varies as much as the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from genfields.perception import PerceptionSet, feature_statistics, frechet_distance
from genfields.perception.metrics import face_size
from genfields.stylegan2.network import Generator, generator_batches

POSE_NAMES = ("yaw", "pitch", "roll")
EXPRESSION_NAMES = ("mouth_open", "mouth_width", "brow_height", "eye_open")


@dataclass
class Described:
    """What the perception networks see in a set of images."""

    features: np.ndarray  # [N, F]
    pose: np.ndarray  # [N, 3] degrees
    expression: np.ndarray  # [N, 4], fractions of the face size


def expression_measures(landmarks: torch.Tensor) -> torch.Tensor:
    """[B, 68, 2] iBUG landmarks -> [B, 4]: mouth opening, mouth width, brow height above the eyes,
    eye opening, each divided by the face size (landmarks 1-17)."""
    lm = landmarks
    size = face_size(lm)
    dist = lambda a, b: (lm[:, a] - lm[:, b]).norm(dim=-1)  # noqa: E731 (0-based indices)
    mouth_open = dist(62, 66)
    mouth_width = dist(48, 54)
    brow_height = (lm[:, 36:48, 1].mean(dim=1) - lm[:, 17:27, 1].mean(dim=1)).abs()
    eye_open = (dist(37, 41) + dist(38, 40) + dist(43, 47) + dist(44, 46)) / 4
    return torch.stack([mouth_open, mouth_width, brow_height, eye_open], dim=1) / size[:, None]


@torch.no_grad()
def describe(batches: Iterator[torch.Tensor], nets: PerceptionSet) -> Described:
    feats, poses, exprs = [], [], []
    for images in batches:
        feats.append(nets.features(images))
        found = nets.landmarks(images)
        poses.append(found.pose)
        exprs.append(expression_measures(found.landmarks))
    return Described(torch.cat(feats).numpy(), torch.cat(poses).numpy(), torch.cat(exprs).numpy())




def render_batches(n: int, res: int, seed: int, batch: int = 100, pose_dist: str = "ffhq"):
    """n rendered faces of `seed` (sample indices 0..n-1)."""
    from genfields.synthface import FaceRenderer, sample_params

    renderer = FaceRenderer(res)
    for start in range(0, n, batch):
        params = sample_params(min(batch, n - start), seed=seed, start_index=start, pose_dist=pose_dist)
        yield renderer.render(params).images.clone()


def fd(a: Described, b: Described) -> float:
    return frechet_distance(*feature_statistics(a.features), *feature_statistics(b.features))


def coverage(generated: Described, data: Described) -> dict[str, float]:
    """Std of each pose angle and expression measure on generated images / on data."""
    ratios = generated.pose.std(axis=0) / data.pose.std(axis=0)
    expr = generated.expression.std(axis=0) / data.expression.std(axis=0)
    return {**{f"{k}_std_ratio": float(v) for k, v in zip(POSE_NAMES, ratios)},
            **{f"{k}_std_ratio": float(v) for k, v in zip(EXPRESSION_NAMES, expr)}}


def render_reference(nets: PerceptionSet, n: int, res: int, seed: int = 1) -> tuple[Described, Described]:
    """Two disjoint render sets of size n: the reference, and the second one for the FD floor."""
    ref = describe(render_batches(n, res, seed), nets)
    other = describe(render_batches(n, res, seed + 1), nets)
    return ref, other


def gan_quality(G: Generator, nets: PerceptionSet, n: int = 2000, seed: int = 0,
                reference: tuple[Described, Described] | None = None) -> dict[str, float]:
    """FD against renders, its render-vs-render floor, and coverage ratios, at sample size n."""
    res = G.config.img_resolution
    ref, other = reference or render_reference(nets, n, res)
    generated = describe(generator_batches(G, n, seed), nets)
    return {"n": n, "fd": fd(generated, ref), "fd_floor": fd(other, ref), **coverage(generated, ref)}
