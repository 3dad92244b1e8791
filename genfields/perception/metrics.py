"""Metrics of the perception networks and the Fréchet distance (one implementation for all of genfields)."""

from __future__ import annotations

import numpy as np
import torch


def face_size(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between landmarks 1 and 17 (jaw ends), the face size of docs/design.md, [B]."""
    return (landmarks[:, 0] - landmarks[:, 16]).norm(dim=-1)


def landmark_nme(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean point-to-point error over the 68 points divided by the target's face size, per image [B]."""
    return (pred - target).norm(dim=-1).mean(dim=1) / face_size(target)


def pose_mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of yaw, pitch, roll in degrees, [3]."""
    return (pred - target).abs().mean(dim=0)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (probability that a positive outranks a negative; ties count half)."""
    from scipy.stats import rankdata  # imported here: scipy.stats costs most of a second at start-up

    ranks = rankdata(scores)
    pos = labels.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """The error rate where false accepts equal false rejects (interpolated between thresholds)."""
    order = np.argsort(-scores, kind="stable")
    pos = labels[order].astype(bool)
    tpr = np.concatenate([[0], np.cumsum(pos) / pos.sum()])
    fpr = np.concatenate([[0], np.cumsum(~pos) / (~pos).sum()])
    fnr = 1 - tpr
    k = int(np.argmax(fpr >= fnr))
    if k == 0:
        return float(fpr[0])
    a, b = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]  # a > 0 >= b: the curves cross in between
    t = a / (a - b)
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of features [N, D]."""
    x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _symmetric_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric matrix by eigen-decomposition (negative rounding clipped to 0)."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2): S1 S2 has the same eigenvalues as the
    symmetric PSD matrix S1^(1/2) S2 S1^(1/2), so the trace is the sum of the square roots of
    its eigenvalues (two symmetric eigen-decompositions in float64, a few seconds at 2048-d,
    where scipy's general `sqrtm` takes tens). With InceptionV3 pool features this is FID; with
    any other network call it FD.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"Fréchet distance needs means [D] and covariances [D, D] of one D; got {mu1.shape}, "
                         f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    root1 = _symmetric_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * cross)
