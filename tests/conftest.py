"""Shared test fixtures: paths to ../shared and small generators."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
NVIDIA_FIXTURE = SHARED / "fixtures" / "stylegan2-ada"


def require_nvidia_fixture() -> Path:
    """The official-format fixture folder, or skip with the reason."""
    if not (NVIDIA_FIXTURE / "nvidia_tiny64.pkl").is_file():
        pytest.skip(f"NVIDIA fixture not found at {NVIDIA_FIXTURE} (needs ../shared beside the repo)")
    return NVIDIA_FIXTURE


@pytest.fixture
def tiny_generator():
    from genfields.stylegan2 import Generator

    G = Generator.from_arch("tiny16", seed=1)
    with torch.no_grad():  # make every term matter: non-zero biases, noise strengths and w_avg
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(0.1 * torch.randn_like(p))
        G.mapping.w_avg.normal_()
    return G
