"""Why does a GAN under-cover a pose angle? Two measurements on a train-gan run (docs/gan-training.md).

1. Does D reward the angle?  D's mean logit on the third of renders with the smallest |angle|
   against the third with the largest, and the correlation of |angle| with D's logit. If D gives
   tilted real faces no more "realness" than upright ones, nothing pushes G towards tilting.
2. What G makes: percentiles of each angle (by the shipped pose network) on G_ema samples of a
   snapshot against renders.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/gan_pose_diagnostics.py RUN [--snapshot kimg000250]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from genfields.evaluation.gan_quality import generator_batches, render_batches
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


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--snapshot", help="snapshot for the G_ema samples (default: the latest)")
    parser.add_argument("--n", type=int, default=960, help="renders (and GAN samples)")
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


if __name__ == "__main__":
    main()
