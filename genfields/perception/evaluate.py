"""Held-out evaluation of the synthetic perception networks, on clean and degraded renders."""

from __future__ import annotations

import numpy as np
import torch

from .augment import degrade
from .data import FACE_CODES, ViewSet
from .metrics import equal_error_rate, landmark_nme, pose_mae, roc_auc
from .networks import NUM_LANDMARKS, SynthAttributeEncoder, SynthIdentityEncoder, SynthLandmarkPose, decode_landmarks_pose

DEGRADE_SEED = 20_240
DEGRADED = {"p": 0.75, "amount": 1.0}  # each degradation on 3 images in 4, at full training strength
IMPOSTOR_PAIRS = 20_000


def images_of(views: ViewSet, degraded: bool, chunk: int = 256):
    """Yield (index, images) over the set in order, degraded with a fixed generator if asked."""
    gen = torch.Generator().manual_seed(DEGRADE_SEED)
    for start in range(0, len(views), chunk):
        index = torch.arange(start, min(start + chunk, len(views)))
        images = views.batch(index)["images"]
        yield index, (degrade(images, gen, **DEGRADED) if degraded else images)


@torch.no_grad()
def run_model(fn, views: ViewSet, degraded: bool) -> torch.Tensor:
    """Concatenated outputs of `fn(images)` over the whole set."""
    return torch.cat([fn(images) for _, images in images_of(views, degraded)])


def landmark_pose_metrics(lm: torch.Tensor, pose: torch.Tensor, views: ViewSet) -> dict:
    nme = landmark_nme(lm, torch.from_numpy(views.landmarks))
    mae = pose_mae(pose, torch.from_numpy(views.pose))
    return {"nme": float(nme.mean()), "nme_p95": float(nme.quantile(0.95)),
            "yaw_mae": float(mae[0]), "pitch_mae": float(mae[1]), "roll_mae": float(mae[2])}


def evaluate_landmarks(model: SynthLandmarkPose, views: ViewSet, degraded: bool = False) -> dict:
    out = run_model(model.raw, views, degraded)
    return landmark_pose_metrics(*decode_landmarks_pose(out, views.images.shape[1]), views)


def verification_pairs(person: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All same-person pairs plus IMPOSTOR_PAIRS random different-person pairs: (a, b, is_same)."""
    a, b = np.triu_indices(len(person), k=1)
    same = person[a] == person[b]
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(person), (2, 3 * IMPOSTOR_PAIRS))
    keep = np.flatnonzero(person[i] != person[j])[:IMPOSTOR_PAIRS]
    a = np.concatenate([a[same], i[keep]])
    b = np.concatenate([b[same], j[keep]])
    return a, b, np.concatenate([np.ones(same.sum(), bool), np.zeros(len(keep), bool)])


def evaluate_identity(model: SynthIdentityEncoder, views: ViewSet, degraded: bool = False) -> dict:
    emb = run_model(model, views, degraded)
    a, b, same = verification_pairs(views.person)
    scores = model.similarity(emb[a], emb[b]).numpy()
    return {"eer": equal_error_rate(scores, same), "roc_auc": roc_auc(scores, same),
            "genuine_similarity": float(scores[same].mean()), "impostor_similarity": float(scores[~same].mean()),
            "pairs_genuine": int(same.sum()), "pairs_impostor": int((~same).sum())}


def evaluate_attributes(model: SynthAttributeEncoder, views: ViewSet, degraded: bool = False) -> dict:
    """How well the attribute network predicts the parameters (R^2 per group; pose and landmarks as above)."""
    out = run_model(model.raw, views, degraded)
    n_id, n_ex = views.identity.shape[1], views.expression.shape[1]
    groups = {"identity": (slice(0, n_id), views.identity[:, list(FACE_CODES)], list(FACE_CODES)),
              "expression": (slice(n_id, n_id + n_ex), views.expression, None)}
    result = {}
    for name, (cols, target, pick) in groups.items():
        pred = out[:, cols].numpy()
        pred = pred[:, pick] if pick is not None else pred
        result[f"{name}_r2"] = float(np.mean(1 - ((pred - target) ** 2).mean(0) / target.var(0)))
    lm_pose = out[:, out.shape[1] - 2 * NUM_LANDMARKS - 3:]
    result.update(landmark_pose_metrics(*decode_landmarks_pose(lm_pose, views.images.shape[1]), views))
    return result


def evaluate_network(model: torch.nn.Module, views: ViewSet) -> dict:
    """Clean and degraded held-out metrics of a network (put in eval mode, float32)."""
    fn = {SynthLandmarkPose: evaluate_landmarks, SynthIdentityEncoder: evaluate_identity,
          SynthAttributeEncoder: evaluate_attributes}[type(model)]
    model = model.eval().float()
    return {"clean": fn(model, views, False), "degraded": fn(model, views, True),
            "heldout_images": len(views), "heldout_people": int(len(np.unique(views.person)))}
