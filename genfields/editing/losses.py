"""The editing losses of the paper (Eq. 7-11), each a small function, and their weighted sum.

Reductions (the paper writes norms; these are the exact numbers we compute):
- L_id   = mean over the batch of || E_id(I_id) - E_id(I_out) ||_1 (sum over embedding dims);
- L_lnd  = mean over the batch of || lnd(I_attr) - lnd(I_out) ||_2 over the 51 inner landmarks
           (iBUG 18-68) flattened, in pixels of the generator's images;
- L_pose = mean over the batch of || pose(I_attr) - pose(I_out) ||_2 over (yaw, pitch, roll) in
           degrees (so that it and L_lnd have comparable sizes);
- L_rec  = alpha * (1 - MS-SSIM) + (1 - alpha) * mean |I_attr - I_out|, on images mapped to
           [0, 1], only in reconstruction steps (I_attr = I_id), alpha = 0.84.
The Euclidean norms use sqrt(x + eps) so that their gradient is finite when an edit is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch_msssim import ms_ssim

from genfields.errors import ConfigError

from .config import LossConfig
from .regularizer import StyleStatistics, style_nll

INNER_LANDMARKS = slice(17, 68)  # iBUG points 18-68 (0-based 17..67): jaw excluded
MSSSIM_LEVELS = 5  # pytorch-msssim always downsamples 4 times
MAX_WIN = 11
EPS = 1e-8


def _norm(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last dimension with a finite gradient at zero."""
    return (x.square().sum(dim=-1) + EPS).sqrt()


def identity_loss(emb_id: torch.Tensor, emb_out: torch.Tensor) -> torch.Tensor:
    """Eq. 7: L1 distance of identity embeddings, batch mean."""
    return (emb_id - emb_out).abs().sum(dim=1).mean()


def landmark_loss(lnd_attr: torch.Tensor, lnd_out: torch.Tensor) -> torch.Tensor:
    """Eq. 8, L_lnd: L2 distance over the 51 inner landmarks [B, 68, 2], batch mean."""
    diff = (lnd_attr[:, INNER_LANDMARKS] - lnd_out[:, INNER_LANDMARKS]).flatten(1)
    return _norm(diff).mean()


def pose_loss(pose_attr: torch.Tensor, pose_out: torch.Tensor) -> torch.Tensor:
    """Eq. 8, L_pose: L2 distance of the Euler angles [B, 3] (degrees), batch mean."""
    return _norm(pose_attr - pose_out).mean()


def msssim_window(resolution: int, requested: int | None = None) -> int:
    """The Gaussian window of MS-SSIM at a resolution: pytorch-msssim needs res > (win - 1) * 16.

    Default: the largest odd size <= 11 that fits (256 px: 11, 128: 7, 64: 3, below 33 px: 1, a
    pixel-wise SSIM used only by the tiny test configuration).
    """
    fits = [w for w in range(MAX_WIN, 0, -2) if resolution > (w - 1) * 2 ** (MSSSIM_LEVELS - 1)]
    if requested is None:
        return fits[0]
    if requested not in fits:
        raise ConfigError(f"MS-SSIM window {requested} does not fit {resolution} px images (use one of {fits})")
    return requested


def reconstruction_loss(target: torch.Tensor, output: torch.Tensor, alpha: float = 0.84,
                        win_size: int | None = None) -> torch.Tensor:
    """Eq. 9: alpha * (1 - MS-SSIM) + (1 - alpha) * L1, images in [-1, 1] compared in [0, 1]."""
    x, y = (target + 1) / 2, (output + 1) / 2
    win = msssim_window(x.shape[-1], win_size)
    structure = 1 - ms_ssim(x, y, data_range=1.0, win_size=win, size_average=True)
    return alpha * structure + (1 - alpha) * (x - y).abs().mean()


@dataclass
class EditTargets:
    """What an edit is compared with: the identity's embedding and the attribute's landmarks and pose."""

    embedding: torch.Tensor  # E_id(I_id) [B, D]
    landmarks: torch.Tensor  # E_lnd(I_attr) [B, 68, 2]
    pose: torch.Tensor  # E_pose(I_attr) [B, 3]
    image: torch.Tensor | None = None  # I_attr = I_id in reconstruction steps, else None


@dataclass
class EditOutputs:
    """The perception of an edited image and its styles."""

    embedding: torch.Tensor
    landmarks: torch.Tensor
    pose: torch.Tensor
    image: torch.Tensor
    styles: torch.Tensor  # S_out = S_id + dS (or styles of the new w)


class EditingLoss:
    """Eq. 11 plus the style regulariser (-L(S), Eq. 12); terms with weight 0 are skipped."""

    def __init__(self, config: LossConfig, stats: StyleStatistics | None = None):
        if config.style_reg > 0 and stats is None:
            raise ConfigError("the style regulariser needs the S statistics of the generated dataset")
        self.config, self.stats = config, stats

    def __call__(self, out: EditOutputs, target: EditTargets) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and each term's value (unweighted) for logging."""
        cfg, terms = self.config, {}
        total = out.image.new_zeros([])
        if cfg.identity > 0:
            terms["id"] = identity_loss(target.embedding, out.embedding)
            total = total + cfg.identity * terms["id"]
        if cfg.attribute > 0 and cfg.landmarks:
            terms["lnd"] = landmark_loss(target.landmarks, out.landmarks)
            total = total + cfg.attribute * terms["lnd"]
        if cfg.attribute > 0 and cfg.pose:
            terms["pose"] = pose_loss(target.pose, out.pose)
            total = total + cfg.attribute * terms["pose"]
        if cfg.reconstruction > 0 and target.image is not None:
            terms["rec"] = reconstruction_loss(target.image, out.image, cfg.msssim_alpha, cfg.msssim_win)
            total = total + cfg.reconstruction * terms["rec"]
        if cfg.style_reg > 0:
            terms["style_reg"] = style_nll(out.styles, self.stats).mean()
            total = total + cfg.style_reg * terms["style_reg"]
        return total, {k: float(v.detach()) for k, v in terms.items()}
