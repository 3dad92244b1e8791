"""FD's render-vs-render floor against the sample size, on raw and on standardised E_attr features.

An FD estimator's floor (two disjoint sets of the same distribution) should fall roughly like 1/n.
This prints it for renders of seed 1 against seed 2, with the raw penultimate features of
synth_attributes and with the shipped per-unit scale (docs/perception.md), and the share of the
raw features' variance held by their largest principal direction.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/fd_floor_by_n.py [--sizes 500 1000 1500 2000]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from genfields.evaluation.gan_quality import render_batches
from genfields.perception import feature_statistics, frechet_distance
from genfields.perception.shipped import load_fd_scale, load_network


@torch.no_grad()
def raw_features(attributes: torch.nn.Module, seed: int, n: int) -> np.ndarray:
    return torch.cat([attributes(x) for x in render_batches(n, 64, seed, batch=200)]).double().numpy()


def fd(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 1500, 2000])
    args = parser.parse_args()
    attributes = load_network("synth_attributes")
    scale = load_fd_scale("synth_attributes")
    scale = np.ones(attributes.feature_dim) if scale is None else scale.double().numpy()
    n = max(args.sizes)
    a, b = raw_features(attributes, 1, n), raw_features(attributes, 2, n)
    eig = np.linalg.eigvalsh(feature_statistics(a)[1])
    print(f"raw features: largest principal direction holds {eig[-1]:.1f} of a trace of {eig.sum():.1f}")
    for name, tf in (("raw", lambda x: x), ("standardised", lambda x: x / scale)):
        floors = ", ".join(f"n={k}: {fd(tf(a[:k]), tf(b[:k])):.3f}" for k in args.sizes)
        print(f"FD floor, {name} features: {floors}")


if __name__ == "__main__":
    main()
