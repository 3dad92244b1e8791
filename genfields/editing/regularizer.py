"""Regularisers that keep an edit on the generator's manifold.

- The style regulariser of the paper (Sec. 3.4, Eq. 12): every channel of S is modelled as an
  independent Gaussian with the mean and standard deviation measured on the generated dataset,
  and -L(S) = sum_i (s_i - mu_i)^2 / (2 sigma_i^2) is added to the loss.
- The adversarial W regulariser of the IDDISEN-like baseline: a small discriminator tells the
  mapper's w from mapping(z) samples (non-saturating logistic losses, as in StyleGAN2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MIN_STD = 1e-6


@dataclass
class StyleStatistics:
    """Per-channel mean and standard deviation of S (and of w) over the generated dataset."""

    style_mean: torch.Tensor  # [dim S]
    style_std: torch.Tensor
    w_mean: torch.Tensor  # [w_dim]
    w_std: torch.Tensor

    def __post_init__(self) -> None:
        self.style_std = self.style_std.clamp_min(MIN_STD)
        self.w_std = self.w_std.clamp_min(MIN_STD)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"style_mean": self.style_mean, "style_std": self.style_std, "w_mean": self.w_mean, "w_std": self.w_std}

    def to(self, device: str | torch.device) -> StyleStatistics:
        """The same statistics on `device`."""
        return StyleStatistics(*(t.to(device) for t in self.tensors().values()))

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "StyleStatistics":
        return cls(t["style_mean"], t["style_std"], t["w_mean"], t["w_std"])


def style_nll(S: torch.Tensor, stats: StyleStatistics) -> torch.Tensor:
    """-L(S) of Eq. 12 per sample [B]: sum over channels of (s_i - mu_i)^2 / (2 sigma_i^2)."""
    return ((S - stats.style_mean) / stats.style_std).square().sum(dim=1) / 2


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Logistic loss of the W discriminator: mapping(z) is real, the mapper's w is fake."""
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def adversarial_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating loss of the mapper: make its w look like mapping(z)."""
    return F.softplus(-logits_fake).mean()


@torch.no_grad()
def mapped_statistics(G, n: int, seed: int, truncation: float = 1.0) -> StyleStatistics:
    """Per-channel mean and std of S and w over n mapped z of generator G (no synthesis needed)."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    w = G.mapping(z.to(G.mapping.w_avg.device), truncation_psi=truncation)
    S = G.styles(w).double()
    w = w[:, 0].double()
    return StyleStatistics(S.mean(0).float(), S.std(0).float(), w.mean(0).float(), w.std(0).float())
