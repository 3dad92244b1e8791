"""Synthesis speed: our non-fused synthesis against the per-sample-weight reference, same run.

    .venv/bin/python benchmarks/synthesis.py [--archs paper256 synth64] [--batches 1 8] [--seconds 6] [--threads N]

The reference (`genfields.stylegan2.reference`) is the fused formulation that NVIDIA's code runs
at inference (per-sample modulated weights, one grouped convolution per layer). Both run from
the same S and w with random weights, float32, no_grad, on the CPU. Prints images/s and the
ratio ours / reference; the numbers recorded in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from genfields.stylegan2 import Generator
from genfields.stylegan2.reference import reference_synthesize


def images_per_second(fn, batch: int, seconds: float) -> float:
    fn()  # warm-up (allocations, kernel selection)
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 2:
            return n * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["paper256", "synth64"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--seconds", type=float, default=6.0, help="Minimum timed seconds per measurement.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'arch':10s} {'batch':>5s} {'reference img/s':>16s} {'ours img/s':>11s} {'ours/ref':>9s}")
    for arch in args.archs:
        G = Generator.from_arch(arch, seed=0)
        for batch in args.batches:
            with torch.no_grad():
                w = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)))
                S = G.styles(w)
                ref = images_per_second(lambda: reference_synthesize(G, S, w), batch, args.seconds)
                ours = images_per_second(lambda: G.synthesize(S, w=w), batch, args.seconds)
            print(f"{arch:10s} {batch:5d} {ref:16.2f} {ours:11.2f} {ours / ref:9.2f}", flush=True)


if __name__ == "__main__":
    main()
