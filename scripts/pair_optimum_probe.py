"""How far the per-pair optimum of dS gets, and how fast, on a few synth64 pairs (sizing the report's row).

    OMP_NUM_THREADS=1 flock /tmp/genfields-heavy.lock .venv/bin/python scripts/pair_optimum_probe.py [--pairs 8]

Prints seconds per pair and step, and the mean identity / expression / pose (loss networks) of the
shipped editor and of the per-pair optimum at a few (lr, steps).
"""

from __future__ import annotations

import argparse
import time

import torch

from genfields.editing import load_editor
from genfields.editing.dataset import attribute_images
from genfields.editing.evaluate import result_metrics
from genfields.editing.pair_optimum import PairOptimumConfig, PairOptimumEditor


def mean_metrics(result) -> dict:
    return {k: round(float(v.mean()), 4) for k, v in result_metrics(result)["method"].items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--editor", default="synth64")
    args = parser.parse_args()
    torch.set_num_threads(1)
    editor = load_editor(args.editor)
    z = torch.randn(args.pairs, editor.G.z_dim, generator=torch.Generator().manual_seed(1))
    attrs = attribute_images("synthface", args.pairs, editor.G.config.img_resolution, 20000)
    print("editor", mean_metrics(editor.edit(z, attrs)))
    for lr, steps in ((0.05, 60), (0.1, 60), (0.1, 120)):
        start = time.perf_counter()
        result = PairOptimumEditor(editor, PairOptimumConfig(steps=steps, lr=lr)).edit(z, attrs)
        per = (time.perf_counter() - start) / (args.pairs * steps)
        print(f"per-pair optimum lr {lr} steps {steps}: {mean_metrics(result)}, {per:.3f} s per pair and step")


if __name__ == "__main__":
    main()
