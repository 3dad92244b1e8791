"""Shared test fixtures: paths to ../shared and small generators."""

from __future__ import annotations

import subprocess
import sys
import tarfile
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


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """The Obama/Biden test images of the face_recognition 1.3.0 sdist, fetched once with `pip download`."""
    pytest.importorskip("dlib", reason="dlib-bin (extra [real]) not installed")
    folder = tmp_path_factory.getbasetemp().parent / "face_recognition_sdist"
    images = folder / "face_recognition-1.3.0" / "tests" / "test_images"
    if not (images / "obama.jpg").is_file():
        folder.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "face_recognition==1.3.0", "--no-binary", ":all:",
               "--no-deps", "-q", "-d", str(folder)]
        if subprocess.run(cmd, capture_output=True, timeout=120).returncode != 0:
            pytest.skip("could not fetch the face_recognition 1.3.0 sdist (offline?)")
        with tarfile.open(folder / "face_recognition-1.3.0.tar.gz") as tar:
            tar.extractall(folder, members=[m for m in tar.getmembers() if "/tests/test_images/" in m.name],
                           filter="data")
    return images
