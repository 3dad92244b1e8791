"""Synthesis speed: ours against NVIDIA's official code, or against the per-sample-weight reference, same run.

    .venv/bin/python benchmarks/synthesis.py --official /path/to/stylegan2-ada-pytorch [--pkl paper256.pkl] [--keep-freed-memory]
    .venv/bin/python benchmarks/synthesis.py [--archs paper256 synth64] [--batches 1 8] [--seconds 6] [--threads N]
    .venv/bin/python benchmarks/synthesis.py --bfloat16-errors synth64 [MODEL ...]
    .venv/bin/python benchmarks/synthesis.py --layers [--pkl paper256.pkl | --archs paper256] [--batches 8] [--keep-freed-memory]

With `--official` (a checkout of NVlabs/stylegan2-ada-pytorch that you provide; see
benchmarks/official.py), both implementations load the same official pickle (`--pkl`, or a random
paper256 one written by the official code), synthesise the same w (the official mapping's, noise
'const', the official code with `force_fp32=True` on its CPU reference ops), and are timed in
alternation, round after round; the script prints images/s, the ratio and the largest image error
of ours (float32 and each `--dtypes`) against the official float32 images.

`--dtypes` also takes `compiled-float32` / `compiled-bfloat16` (ours under `torch.compile`) and the
variants of the plain PyTorch recipe of early planning (docs/design.md; benchmarks/plain_recipe.py:
`plain-float32`, `plain-bfloat16` under autocast, and both under `torch.compile`), each timed in the same
alternation and checked against the official images like ours.

`--layers` prints each layer's time and arithmetic rate (float32 and bfloat16, alternated) beside this
machine's rates for a large matrix product and oneDNN's direct 3x3 convolution, and the images/s the
whole network would reach if every convolution ran at that direct rate: the bound behind the goals.

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


PLAIN_VARIANTS = ("plain-float32", "plain-bfloat16", "plain-compiled-float32", "plain-compiled-bfloat16")
COMPILED_VARIANTS = ("compiled-float32", "compiled-bfloat16")


def runner(G: Generator, S: torch.Tensor, w: torch.Tensor, name: str):
    """A no-argument callable synthesising S's images: ours in dtype `name`, `float32-direct` (ours in float32
    with every 3x3 convolution direct, the baseline of the Winograd convolutions' gain), one of
    COMPILED_VARIANTS (ours under `torch.compile`), or one of PLAIN_VARIANTS (the plain PyTorch recipe of
    docs/design.md, benchmarks/plain_recipe.py). Compilation happens at the first call (the warm-up)."""
    if name in COMPILED_VARIANTS:
        synthesize = torch.compile(G.synthesize, dynamic=False)
        dtype = getattr(torch, name.removeprefix("compiled-"))
        return lambda: synthesize(S, w, dtype=dtype)
    if name.startswith("plain-"):
        from plain_recipe import plain_runner

        dtype = torch.bfloat16 if name.endswith("bfloat16") else torch.float32
        return plain_runner(G, S, w, dtype, compile="compiled" in name)
    if name == "float32-direct":
        def direct() -> torch.Tensor:
            with ops.without_winograd():
                return G.synthesize(S, w=w, dtype=torch.float32)
        return direct
    return lambda: G.synthesize(S, w=w, dtype=getattr(torch, name))


def against_official(args) -> None:
    from official import load_official_generator, write_random_pickle

    with tempfile.TemporaryDirectory() as tmp:
        pkl = args.pkl or write_random_pickle(args.official, Path(tmp) / "paper256.pkl", 256)
        G_nv = load_official_generator(args.official, pkl)
        G = load_generator(str(pkl))
    print(f"{pkl}: {G.config.img_resolution}x{G.config.img_resolution}, {args.rounds} alternating rounds, "
          "median images/s")
    print(f"{'batch':>5s} {'dtype':>23s} {'official':>9s} {'ours':>8s} {'ratio':>6s} {'max |error|':>12s} "
          f"{'mean |error|':>13s}")
    for batch in args.batches:
        z = torch.from_numpy(__import__("numpy").random.RandomState(batch).randn(batch, G.z_dim)).float()
        with torch.no_grad():
            w = G_nv.mapping(z, None)
            S = G.styles(w)
            official = G_nv.synthesis(w, noise_mode="const", force_fp32=True)
            runs = {"official": lambda: G_nv.synthesis(w, noise_mode="const", force_fp32=True)}
            for dtype in args.dtypes:
                runs[dtype] = runner(G, S, w, dtype)
            times = {name: [] for name in runs}
            for fn in runs.values():
                fn()  # warm-up
            for _ in range(args.rounds):
                for name, fn in runs.items():
                    times[name].append(seconds_per_call(fn))
            rate = {name: batch / statistics.median(t) for name, t in times.items()}
            for dtype in args.dtypes:
                err = (runs[dtype]() - official).abs()
                print(f"{batch:5d} {dtype:>23s} {rate['official']:9.2f} {rate[dtype]:8.2f} "
                      f"{rate[dtype] / rate['official']:6.2f} {float(err.max()):12.2e} {float(err.mean()):13.2e}",
                      flush=True)


def bfloat16_errors(models: list[str]) -> None:
    """bfloat16 against float32 synthesis of the same 8 w per model (seed 0): our bfloat16 path
    (`synthesize(dtype=torch.bfloat16)`) and the same float32 synthesis under bfloat16 autocast (`--amp`)."""
    print(f"{'model':24s} {'path':9s} {'max |err|':>10s} {'mean |err|':>11s} {'mean err / mean |img|':>22s} "
          f"{'uint8 levels':>13s}")
    for spec in models:
        G = load_generator(spec)
        with torch.no_grad():
            w = G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(0)))
            S = G.styles(w)
            img = G.synthesize(S, w=w)
            low = {"bfloat16": G.synthesize(S, w=w, dtype=torch.bfloat16)}
            with torch.autocast("cpu", torch.bfloat16):
                low["autocast"] = G.synthesize(S, w=w).float()
        for path, image in low.items():
            err = (image - img).abs()
            print(f"{Path(spec).name:24s} {path:9s} {float(err.max()):10.3f} {float(err.mean()):11.4f} "
                  f"{float(err.mean() / img.abs().mean()):22.4f} {float(err.mean()) * 127.5:13.2f}")


def synthesis_layers(G: Generator) -> dict[str, tuple[torch.nn.Module, int]]:
    """Every conv and toRGB layer by name (`b64.conv0`), with the multiply-adds per image of its convolution
    computed directly (an upsampling layer's transposed convolution runs on its input grid; the FIR filters and
    elementwise ops are not counted)."""
    layers = {}
    for block in G.synthesis.blocks:
        names = ("conv0", "conv1")[-len(block.convs):]
        for name, layer in (*zip(names, block.convs), ("torgb", block.torgb)):
            out_channels, in_channels, k, _ = layer.weight.shape
            side = block.resolution // getattr(layer, "up", 1)
            layers[f"b{block.resolution}.{name}"] = (layer, out_channels * in_channels * k * k * side * side)
    return layers


def ceiling_gflops(dtype: torch.dtype, rounds: int) -> dict[str, float]:
    """This machine's rates, GFLOP/s: a 2048^3 matrix product, and oneDNN's direct 3x3 convolution at
    paper256's 32x32 shape (batch 8, 512 channels)."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2048, 2048, generator=gen).to(dtype) for _ in range(2))
    x = torch.randn(8, 512, 32, 32, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    k = torch.randn(512, 512, 3, 3, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        matmul = min(seconds_per_call(lambda: a @ b) for _ in range(rounds + 1))
        conv = min(seconds_per_call(lambda: torch.nn.functional.conv2d(x, k, padding=1)) for _ in range(rounds + 1))
    return {"matmul": 2 * 2048 ** 3 / matmul / 1e9, "conv": 2 * 8 * 512 * 512 * 9 * 32 * 32 / conv / 1e9}


def layer_rates(args) -> None:
    """Each synthesis layer's time and arithmetic rate, float32 and bfloat16, against the machine's ceiling."""
    G = load_generator(str(args.pkl)) if args.pkl else Generator.from_arch(args.archs[0], seed=0)
    batch = args.batches[0]
    layers = synthesis_layers(G)
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    times = {d: {name: [] for name in layers} for d in dtypes}
    timing = {"dtype": None}  # the dtype whose round is running; None during warm-up

    def start(module, _):
        module._bench_start = time.perf_counter()

    def stop(module, _, __):
        if timing["dtype"] is not None:
            times[timing["dtype"]][module._bench_name].append(time.perf_counter() - module._bench_start)

    for name, (layer, _) in layers.items():
        layer._bench_name = name
        layer.register_forward_pre_hook(start)
        layer.register_forward_hook(stop)
    w = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)))
    S = G.styles(w)
    totals = {d: [] for d in dtypes}
    with torch.no_grad():
        for dtype in dtypes.values():
            G.synthesize(S, w=w, dtype=dtype)  # warm-up
        for _ in range(args.rounds):  # the dtypes alternate round by round
            for d, dtype in dtypes.items():
                timing["dtype"] = d
                totals[d].append(seconds_per_call(lambda: G.synthesize(S, w=w, dtype=dtype)))
    ceilings = {d: ceiling_gflops(dtype, args.rounds) for d, dtype in dtypes.items()}
    res = G.config.img_resolution
    print(f"{res}x{res} synthesis, batch {batch}, median of {args.rounds} alternated rounds; GFLOP/s = 2 x the direct "
          "convolution's multiply-adds / time (Winograd layers do fewer, so they can exceed the direct ceiling)")
    print(f"{'layer':12s} {'GMAC/img':>9s} " + " ".join(f"{d + ' ms':>13s} {'GFLOP/s':>8s}" for d in dtypes))
    macs_total = 0
    for name, (_, macs) in layers.items():
        macs_total += macs
        cells = []
        for d in dtypes:
            t = statistics.median(times[d][name])
            cells.append(f"{t * 1e3:13.1f} {2 * macs * batch / t / 1e9:8.0f}")
        print(f"{name:12s} {macs / 1e9:9.3f} " + " ".join(cells))
    cells = [f"{statistics.median(totals[d]) * 1e3:13.1f} {2 * macs_total * batch / statistics.median(totals[d]) / 1e9:8.0f}"
             for d in dtypes]
    print(f"{'whole':12s} {macs_total / 1e9:9.3f} " + " ".join(cells))
    for d in dtypes:
        rate = batch / statistics.median(totals[d])
        c = ceilings[d]
        print(f"{d}: {rate:.2f} images/s; ceiling here: matmul {c['matmul']:.0f} GFLOP/s, direct 3x3 convolution "
              f"{c['conv']:.0f} GFLOP/s; the whole network at the direct convolution's rate: "
              f"{c['conv'] * 1e9 / (2 * macs_total):.2f} images/s")


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
                        "(float32-direct: float32 without the Winograd convolutions; "
                        f"{', '.join(COMPILED_VARIANTS)}: under torch.compile) and the plain recipe's "
                        f"variants ({', '.join(PLAIN_VARIANTS)}).")
    parser.add_argument("--rounds", type=int, default=5, help="With --official: alternating rounds.")
    parser.add_argument("--keep-freed-memory", action="store_true", help="Set glibc's allocator as the genfields CLI "
                        "does (genfields.devices.keep_freed_memory), for every implementation in this process.")
    parser.add_argument("--layers", action="store_true", help="Each layer's time and GFLOP/s (float32, bfloat16) "
                        "against this machine's matmul and direct-convolution rates (--pkl or --archs' first, "
                        "--batches' first, --rounds).")
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
    if args.layers:
        layer_rates(args)
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
