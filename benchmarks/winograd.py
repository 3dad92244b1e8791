"""The Winograd F(4x4, 3x3) convolution against oneDNN's direct one, per layer shape, in alternation.

    .venv/bin/python benchmarks/winograd.py [--channels 128 256 512] [--sizes 8 16 32 64 128] [--batches 1 8 16]
    .venv/bin/python benchmarks/winograd.py --rule-on paper256.pkl [--batch 1] [--rounds 8]

For each shape (batch, channels in = out, square map) both compute the same 'same' 3x3 convolution of
float32 channels-last input, alternated round after round in one process with the CLI's allocator setting;
prints the ratio direct / Winograd of the median times (above 1: Winograd faster) and the largest error of
each against float64. The filter transform is made once and kept with the weights (`ops.derived`), as at
inference. `genfields.stylegan2.ops.WINOGRAD_MIN_CHANNELS` and `WINOGRAD_MIN_PIXELS` are read off this table.
`--rule-on MODEL` times MODEL's synthesis under the rule (channels x pixels >= 256 x 2,048) against the
earlier one (2,048 pixels at every width), alternated in one process.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from genfields.devices import keep_freed_memory
from genfields.stylegan2 import ops
from synthesis import seconds_per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--sizes", nargs="+", type=int, default=[8, 16, 32, 64, 128])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 16])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-elements", type=int, default=16 * 512 * 64 * 64, help="Skip larger inputs.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rule-on", metavar="MODEL", help="Time MODEL's synthesis under the rule and the earlier one.")
    parser.add_argument("--batch", type=int, default=1, help="Batch of --rule-on.")
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    if args.rule_on:
        rule_against_the_earlier_one(args.rule_on, args.batch, args.rounds)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; direct / Winograd (median of "
          f"{args.rounds}); worst relative error against float64: direct, Winograd")
    print(f"{'channels':>8s} {'size':>5s} " + " ".join(f"{f'batch {b}':>9s}" for b in args.batches))
    worst = {"direct": 0.0, "winograd": 0.0}
    for c in args.channels:
        for size in args.sizes:
            cells = []
            for batch in args.batches:
                if batch * c * size * size > args.max_elements:
                    cells.append(f"{'-':>9s}")
                    continue
                gen = torch.Generator().manual_seed(batch * size + c)
                x = torch.randn(batch, c, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
                weight = (torch.randn(c, c, 3, 3, generator=gen) / (9 * c) ** 0.5)
                weight_cl = weight.contiguous(memory_format=torch.channels_last)
                direct = lambda: F.conv2d(x, weight_cl, padding=1)  # noqa: E731
                winograd = lambda: ops.winograd_conv3x3(x, weight)  # noqa: E731
                direct(), winograd()  # warm-up
                times = {"direct": [], "winograd": []}
                for _ in range(args.rounds):
                    times["direct"].append(seconds_per_call(direct))
                    times["winograd"].append(seconds_per_call(winograd))
                ratio = statistics.median(times["direct"]) / statistics.median(times["winograd"])
                cells.append(f"{ratio:9.2f}")
                exact = F.conv2d(x.double(), weight.double(), padding=1)
                scale = float(exact.abs().max())
                for name, fn in (("direct", direct), ("winograd", winograd)):
                    worst[name] = max(worst[name], float((fn().double() - exact).abs().max()) / scale)
            print(f"{c:8d} {size:5d} " + " ".join(cells), flush=True)
    print(f"worst error / largest output: direct {worst['direct']:.1e}, Winograd {worst['winograd']:.1e}")


def rule_against_the_earlier_one(model: str, batch: int, rounds: int) -> None:
    """Images/s of `model`'s synthesis under `ops._winograd_pays` and under it with 2,048 pixels required at every
    width (the rule before 512-channel layers were taken from 1,024 pixels), alternated; medians."""
    from genfields.stylegan2 import load_generator

    G = load_generator(model).eval()
    rule = ops._winograd_pays

    def earlier(x, weight):
        return rule(x, weight) and x.shape[0] * x.shape[2] * x.shape[3] >= 2048

    with torch.no_grad():
        w = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)))
        S = G.styles(w)
        rates = {"rule": [], "earlier rule": []}
        try:
            for _ in range(rounds):
                for name, pays in (("rule", rule), ("earlier rule", earlier)):
                    ops._winograd_pays = pays
                    G.synthesize(S, w)  # warm-up
                    rates[name].append(4 * batch / sum(seconds_per_call(lambda: G.synthesize(S, w)) for _ in range(4)))
        finally:
            ops._winograd_pays = rule
    median = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{model}, batch {batch}, median of {rounds} alternated rounds of 4: rule {median['rule']:.2f} images/s, "
          f"earlier rule {median['earlier rule']:.2f} ({median['rule'] / median['earlier rule']:.3f}x)")


if __name__ == "__main__":
    main()
