"""Synthesis speed: ours against NVIDIA's official code, or against the per-sample-weight reference, same run.

    .venv/bin/python benchmarks/synthesis.py --official /path/to/stylegan2-ada-pytorch [--pkl paper256.pkl] [--keep-freed-memory]
    .venv/bin/python benchmarks/synthesis.py [--archs paper256 synth64] [--batches 1 8] [--seconds 6] [--threads N]
    .venv/bin/python benchmarks/synthesis.py --bfloat16-errors synth64 [MODEL ...]

With `--official` (a checkout of NVlabs/stylegan2-ada-pytorch that you provide; see
benchmarks/official.py), both implementations load the same official pickle (`--pkl`, or a random
paper256 one written by the official code), synthesise the same w (the official mapping's, noise
'const', the official code with `force_fp32=True` on its CPU reference ops), and are timed in
alternation, round after round; the script prints images/s, the ratio and the largest image error
of ours (float32 and each `--dtypes`) against the official float32 images.

The reference (`genfields.stylegan2.reference`) is the fused formulation that NVIDIA's code runs
at inference (per-sample modulated weights, one grouped convolution per layer). Both run from
the same S and w with random weights, float32, no_grad, on the CPU. Prints images/s and the
ratio ours / reference; the numbers recorded in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from genfields.devices import keep_freed_memory
from genfields.stylegan2 import Generator, load_generator, ops
from genfields.stylegan2.reference import reference_synthesize

sys.path.insert(0, str(Path(__file__).resolve().parent))


def images_per_second(fn, batch: int, seconds: float) -> float:
    fn()  # warm-up (allocations, kernel selection)
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 2:
            return n * batch / elapsed


def seconds_per_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ours(G: Generator, S: torch.Tensor, w: torch.Tensor, name: str) -> torch.Tensor:
    """Our synthesis in dtype `name`; `float32-direct` is float32 with every 3x3 convolution direct (oneDNN), the
    baseline of the Winograd convolutions' gain."""
    if name == "float32-direct":
        with ops.without_winograd():
            return G.synthesize(S, w=w, dtype=torch.float32)
    return G.synthesize(S, w=w, dtype=getattr(torch, name))


def against_official(args) -> None:
    from official import load_official_generator, write_random_pickle

    with tempfile.TemporaryDirectory() as tmp:
        pkl = args.pkl or write_random_pickle(args.official, Path(tmp) / "paper256.pkl", 256)
        G_nv = load_official_generator(args.official, pkl)
        G = load_generator(str(pkl))
    print(f"{pkl}: {G.config.img_resolution}x{G.config.img_resolution}, {args.rounds} alternating rounds, "
          "median images/s")
    print(f"{'batch':>5s} {'dtype':>14s} {'official':>9s} {'ours':>8s} {'ratio':>6s} {'max |error|':>12s} "
          f"{'mean |error|':>13s}")
    for batch in args.batches:
        z = torch.from_numpy(__import__("numpy").random.RandomState(batch).randn(batch, G.z_dim)).float()
        with torch.no_grad():
            w = G_nv.mapping(z, None)
            S = G.styles(w)
            official = G_nv.synthesis(w, noise_mode="const", force_fp32=True)
            runs = {"official": lambda: G_nv.synthesis(w, noise_mode="const", force_fp32=True)}
            for dtype in args.dtypes:
                runs[dtype] = (lambda d: lambda: ours(G, S, w, d))(dtype)
            times = {name: [] for name in runs}
            for fn in runs.values():
                fn()  # warm-up
            for _ in range(args.rounds):
                for name, fn in runs.items():
                    times[name].append(seconds_per_call(fn))
            rate = {name: batch / statistics.median(t) for name, t in times.items()}
            for dtype in args.dtypes:
                err = (runs[dtype]() - official).abs()
                print(f"{batch:5d} {dtype:>14s} {rate['official']:9.2f} {rate[dtype]:8.2f} "
                      f"{rate[dtype] / rate['official']:6.2f} {float(err.max()):12.2e} {float(err.mean()):13.2e}",
                      flush=True)


def bfloat16_errors(models: list[str]) -> None:
    """bfloat16 against float32 synthesis of the same 8 w per model (seed 0)."""
    print(f"{'model':24s} {'max |err|':>10s} {'mean |err|':>11s} {'mean err / mean |img|':>22s} {'uint8 levels':>13s}")
    for spec in models:
        G = load_generator(spec)
        with torch.no_grad():
            w = G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(0)))
            S = G.styles(w)
            img = G.synthesize(S, w=w)
            err = (G.synthesize(S, w=w, dtype=torch.bfloat16) - img).abs()
        print(f"{Path(spec).name:24s} {float(err.max()):10.3f} {float(err.mean()):11.4f} "
              f"{float(err.mean() / img.abs().mean()):22.4f} {float(err.mean()) * 127.5:13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["paper256", "synth64"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--seconds", type=float, default=6.0, help="Minimum timed seconds per measurement.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--official", type=Path, help="A checkout of NVlabs/stylegan2-ada-pytorch to compare with.")
    parser.add_argument("--pkl", type=Path, help="With --official: the official pickle both load (default: a "
                        "random paper256 one written by the official code).")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], help="With --official: our dtypes "
                        "(float32-direct: float32 without the Winograd convolutions).")
    parser.add_argument("--rounds", type=int, default=5, help="With --official: alternating rounds.")
    parser.add_argument("--keep-freed-memory", action="store_true", help="Set glibc's allocator as the genfields CLI "
                        "does (genfields.devices.keep_freed_memory), for every implementation in this process.")
    parser.add_argument("--bfloat16-errors", nargs="+", metavar="MODEL",
                        help="Only print bfloat16's error against float32 for these models.")
    args = parser.parse_args()
    if args.keep_freed_memory and not keep_freed_memory():
        sys.exit("--keep-freed-memory: not a glibc system")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.bfloat16_errors:
        bfloat16_errors(args.bfloat16_errors)
        return
    if args.official:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"allocator {'kept freed memory' if args.keep_freed_memory else 'glibc default'}")
        against_official(args)
        return
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
