"""NVIDIA's official code for the benchmarks, run from a checkout that the user provides.

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /somewhere/stylegan2-ada-pytorch
    .venv/bin/python benchmarks/synthesis.py --official /somewhere/stylegan2-ada-pytorch

Nothing of that code is copied into this project: it is imported from the user's checkout at run
time (it is licensed for non-commercial use). It writes official-format pickles with random weights
(`write_random_pickle`, the paper's configuration at any resolution) and loads a pickle into the
official networks (`load_official_generator`), so that both implementations run the same weights.
"""

from __future__ import annotations

import copy
import pickle
import sys
import types
from pathlib import Path

import torch


def import_official(checkout: Path) -> None:
    """Put the checkout on sys.path (dnnlib imports `requests` only for downloads: a stub stands in if absent)."""
    checkout = Path(checkout).resolve()
    if not (checkout / "training" / "networks.py").is_file():
        raise SystemExit(f"--official {checkout}: not a checkout of NVlabs/stylegan2-ada-pytorch "
                         "(no training/networks.py)")
    try:
        import requests  # noqa: F401
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))


def write_random_pickle(checkout: Path, path: Path, resolution: int = 256, seed: int = 0) -> Path:
    """An official-format snapshot (G, G_ema, D=None) of the paper256 configuration at `resolution`,
    random weights with non-zero biases, noise strengths and w_avg, written by the official code."""
    import_official(checkout)
    from training.networks import Generator

    torch.manual_seed(seed)
    G = Generator(z_dim=512, w_dim=512, c_dim=0, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=8),
                  synthesis_kwargs=dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256)).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(0.1 * torch.randn_like(p))
        G.mapping.w_avg.normal_()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(dict(G=G, G_ema=copy.deepcopy(G), D=None, augment_pipe=None, training_set_kwargs=None), f)
    return path


def load_official_generator(checkout: Path, path: Path):
    """G_ema of an official pickle, loaded by the official code (float32 on the CPU, eval mode)."""
    import_official(checkout)
    import torch_utils.persistence  # noqa: F401  (the official unpickling of its own classes)

    with open(path, "rb") as f:
        return pickle.load(f)["G_ema"].eval().requires_grad_(False)
