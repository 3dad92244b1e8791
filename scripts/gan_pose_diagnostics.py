"""Why does a GAN under-cover a pose angle? Two measurements on a train-gan run (docs/gan-training.md).

1. Does D reward the angle?  D's mean logit on the third of renders with the smallest |angle|
   against the third with the largest, and the correlation of |angle| with D's logit. If D gives
   tilted real faces no more "realness" than upright ones, nothing pushes G towards tilting.
2. What G makes: percentiles of each angle (by the shipped pose network) on G_ema samples of a
   snapshot against renders.
3. With `--project-roll DEG`: can G represent a rolled face at all? Six G_ema samples are rotated
   in-plane by DEG and W+ is optimised (150 Adam steps from their own w) to reproduce them; the
   roll of the projections against the targets' says whether the missing roll is a matter of
   capacity or of where the mapping puts its mass (a few minutes on one thread).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/gan_pose_diagnostics.py RUN [--snapshot kimg000250] [--project-roll 12]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genfields.evaluation.gan_quality import render_batches
from genfields.stylegan2.network import generator_batches
from genfields.perception.shipped import load_network
from genfields.stylegan2 import load_generator
from genfields.stylegan2.discriminator import Discriminator
from genfields.stylegan2.train import GANTrainConfig
from genfields.training import RunFolder, load_module_tensors

ANGLES = ("yaw", "pitch", "roll")
PERCENTILES = (5, 25, 50, 75, 95)


def load_discriminator(run: Path) -> Discriminator:
    """The D of the run's latest checkpoint, in eval mode."""
    folder = RunFolder(run, is_main=True)
    cfg = GANTrainConfig.from_dict(folder.read_config())
    D = Discriminator(cfg.generator_config(), mbstd_group_size=cfg.mbstd_group).eval()
    tensors, state = folder.load_checkpoint()
    load_module_tensors("D", D, tensors)
    print(f"D of the checkpoint at {state['images_seen']:,} images (mbstd group {cfg.mbstd_group})")
    return D


@torch.no_grad()
def poses(images: list[torch.Tensor]) -> np.ndarray:
    net = load_network("synth_landmarks")
    return torch.cat([net(x).pose for x in images]).numpy()


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """In-plane rotation about the image centre (border pixels repeat)."""
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=images.dtype)
    grid = F.affine_grid(theta.expand(images.shape[0], 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def project_rolled(G, degrees: float, count: int = 6, steps: int = 150) -> None:
    """Optimise W+ to reproduce rotated G samples and compare the roll of targets and projections."""
    net = load_network("synth_landmarks")
    G.requires_grad_(False)
    with torch.no_grad():
        w = G.mapping(torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(0)))
        target = rotate(G.synthesize(G.styles(w), w), degrees)
    w_plus = w.clone().requires_grad_(True)
    opt = torch.optim.Adam([w_plus], lr=0.02)
    for _ in range(steps):
        out = G.synthesize(G.styles(w_plus), w_plus)
        loss = F.mse_loss(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        roll_target, roll_out = net(target).pose[:, 2], net(out.detach()).pose[:, 2]
    print(f"W+ projection of samples rolled by {degrees:+g} deg: MSE {loss.item():.4f}, roll of targets "
          f"{roll_target.mean():+.1f}, of projections {roll_out.mean():+.1f} deg (mean over {count})")


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--snapshot", help="snapshot for the G_ema samples (default: the latest)")
    parser.add_argument("--n", type=int, default=960, help="renders (and GAN samples)")
    parser.add_argument("--project-roll", type=float, default=None, metavar="DEG",
                        help="also test whether G can represent faces rolled by DEG (W+ projection)")
    args = parser.parse_args()
    renders = list(render_batches(args.n, 64, seed=777, batch=48))
    real_pose = poses(renders)
    D = load_discriminator(args.run)
    logits = torch.cat([D(x) for x in renders]).flatten().numpy()
    third = args.n // 3
    for k, angle in enumerate(ANGLES):
        order = np.argsort(np.abs(real_pose[:, k]))
        corr = np.corrcoef(np.abs(real_pose[:, k]), logits)[0, 1]
        print(f"D on renders, {angle}: smallest third {logits[order[:third]].mean():+.3f}, "
              f"largest third {logits[order[-third:]].mean():+.3f}, corr(|{angle}|, logit) {corr:+.3f}")
    snapshot = args.snapshot or sorted((args.run / "snapshots").glob("kimg*"))[-1].name
    G = load_generator(args.run / "snapshots" / snapshot)
    fake_pose = poses(list(generator_batches(G, args.n, seed=1, batch=48)))
    for k, angle in enumerate(ANGLES):
        print(f"{angle} percentiles {PERCENTILES}: {snapshot} {np.percentile(fake_pose[:, k], PERCENTILES).round(1)} "
              f"(std {fake_pose[:, k].std():.2f}), renders {np.percentile(real_pose[:, k], PERCENTILES).round(1)} "
              f"(std {real_pose[:, k].std():.2f})")
    if args.project_roll is not None:
        with torch.enable_grad():
            project_rolled(G, args.project_roll)


if __name__ == "__main__":
    main()
