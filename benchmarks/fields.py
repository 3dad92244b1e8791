"""Field measurement: wall time of `genfields fields --measure` against the goals, and its sizes
against the float64 finite differences it replaced.

    # official-format paper256 and 128x128 pickles with random weights, written by NVIDIA's code:
    .venv/bin/python benchmarks/fields.py --official /path/to/stylegan2-ada-pytorch
    # or pickles you have:
    .venv/bin/python benchmarks/fields.py --pkl128 A.pkl --pkl256 B.pkl
    # the measurement with the Winograd 3x3 convolutions against direct ones only, alternated:
    .venv/bin/python benchmarks/fields.py --winograd A.pkl B.pkl --rounds 2
    # the exact fields' bfloat16 first pass against float32 only, alternated:
    .venv/bin/python benchmarks/fields.py --exact-precision random:paper256 synth64
    # the command against another checkout of genfields (e.g. `git worktree add /tmp/old HEAD~1`), alternated:
    .venv/bin/python benchmarks/fields.py --against /tmp/old --rounds 7 --args "--arch paper256"
    # sizes of every layer, linear response vs float64 finite differences (slow: minutes per model):
    .venv/bin/python benchmarks/fields.py --compare synth64 ../shared/fixtures/stylegan2-ada/nvidia_tiny64.pkl \
        random:paper256 --samples 4 --channels 16

Each timing runs the command line as a user would (`python -m genfields fields ... --measure --json`,
start-up and loading included), then the measurement alone in this process (`field_table` once the
generator is loaded), and prints both next to the goal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genfields.devices import keep_freed_memory  # noqa: E402

GOALS = {"synth64": None, "128x128": 15.0, "paper256": 60.0, "--arch paper256": 3.0}


def time_command(args: list[str], checkout: Path | None = None) -> tuple[float, bytes]:
    """Seconds of `python -m genfields fields ARGS --measure --json` (from `checkout`'s genfields if given) and
    what it printed."""
    env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    isolated = [] if checkout is None else ["-P"]  # no current folder on sys.path: the checkout's genfields is used
    start = time.perf_counter()
    printed = subprocess.run([sys.executable, *isolated, "-m", "genfields", "fields", *args, "--measure", "--json"],
                             check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env).stdout
    return time.perf_counter() - start, printed


def command_against(checkout: Path, args: list[str], rounds: int) -> None:
    """The command from another checkout of genfields and from this one, in turn, round after round; their median
    seconds, the ratio, and whether they printed the same table."""
    if not (checkout / "genfields" / "__init__.py").is_file():
        raise SystemExit(f"{checkout} is not a checkout of genfields (no genfields/__init__.py)")
    here = Path(__file__).resolve().parents[1]
    median, printed = alternated({"other": lambda: time_command(args, checkout)[1],
                                  "this": lambda: time_command(args, here)[1]}, rounds)
    print_alternated(f"fields {' '.join(args)} --measure --json", f"{checkout} against this checkout", rounds,
                     median, printed)


def time_measurement(args: list[str]) -> float:
    """The measurement alone, in this process, once the generator is loaded (what the command adds to start-up)."""
    from genfields.stylegan2.field_measurement import field_table
    from genfields.stylegan2 import Generator, load_generator

    G = Generator.from_arch(args[1], seed=0) if args[0] == "--arch" else load_generator(args[1])
    start = time.perf_counter()
    field_table(G.layout, G, measure=True, effective=args[0] == "--model")
    return time.perf_counter() - start


def alternated(variants: dict, rounds: int) -> tuple[dict[str, float], dict]:
    """Run each variant (name -> callable returning its sizes) in turn, round after round; the median seconds of
    each and the sizes of its last run."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    sizes = {}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            sizes[name] = run()
            times[name].append(time.perf_counter() - start)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}, sizes


def print_alternated(spec: str, what: str, rounds: int, median: dict[str, float], sizes: dict,
                     show_sizes: bool = False) -> None:
    """One line: the two variants' median times, the ratio first / second, and whether their sizes are equal."""
    (a, ta), (b, tb) = median.items()
    equal = "EQUAL" if sizes[a] == sizes[b] else "DIFFERENT"
    print(f"{spec}: {what}, median of {rounds} alternated rounds: {a} {ta:.2f} s, {b} {tb:.2f} s ({ta / tb:.2f}x); "
          f"sizes {equal}" + (f": {sizes[b]}" if show_sizes else ""), flush=True)


def exact_precisions(spec: str, rounds: int) -> None:
    """The exact-field measurement with its first pass in bfloat16 (the default) against float32 only, timed in
    alternation on one generator; the sizes must be equal."""
    import torch

    from genfields.stylegan2.field_measurement import measure_exact_fields
    from genfields.stylegan2 import load_generator

    G = load_generator(spec)

    def sizes(dtype):
        return {k: m.gf_exact_clipped for k, m in measure_exact_fields(G, first_dtype=dtype).items()}

    median, result = alternated({"float32": lambda: sizes(None), "bfloat16 first": lambda: sizes(torch.bfloat16)},
                                rounds)
    print_alternated(spec, "exact fields", rounds, median, result)


def winograd_against_direct(spec: str, rounds: int) -> None:
    """`fields --measure` (exact and effective) with the Winograd 3x3 convolutions against direct ones only, timed
    in alternation on one generator; the sizes must be equal."""
    from genfields.stylegan2.field_measurement import field_table
    from genfields.stylegan2 import load_generator, ops

    G = load_generator(spec)

    def sizes():
        return [(row["gf_exact_clipped"], row["gf_effective"])
                for row in field_table(G.layout, G, measure=True, effective=True)]

    def direct():
        with ops.without_winograd():
            return sizes()

    median, result = alternated({"direct": direct, "Winograd": sizes}, rounds)
    print_alternated(spec, "fields --measure", rounds, median, result, show_sizes=True)


def compare(spec: str, samples: int, channels: int) -> None:
    """Every layer's exact and effective sizes, fast and reference, for one model."""
    from genfields.stylegan2 import load_generator
    from genfields.stylegan2.field_measurement import (measure_effective_fields, measure_effective_fields_fd,
                                                       measure_exact_fields, measure_exact_fields_fd)

    G = load_generator(spec)
    timed = {}
    for name, fn in (("exact", lambda: {k: m.gf_exact_clipped for k, m in measure_exact_fields(G).items()}),
                     ("exact_fd", lambda: measure_exact_fields_fd(G)),
                     ("effective", lambda: measure_effective_fields(G, samples=samples, channels=channels)),
                     ("effective_fd", lambda: measure_effective_fields_fd(G, samples=samples, channels=channels))):
        start = time.perf_counter()
        timed[name] = (fn(), time.perf_counter() - start)
    print(f"\n{spec} ({samples} samples x {channels} channels)")
    print(f"{'layer':7s} {'exact':>6s} {'exact fd':>9s} {'effective':>10s} {'effective fd':>13s}")
    for layer in G.layout:
        row = [timed[k][0][layer.name] for k in ("exact", "exact_fd", "effective", "effective_fd")]
        print(f"{layer.name:7s} {row[0]:6d} {row[1]:9d} {row[2]:10d} {row[3]:13d}")
    equal = all(timed[k][0] == timed[k + "_fd"][0] for k in ("exact", "effective"))
    seconds = ", ".join(f"{k} {v[1]:.1f}" for k, v in timed.items())
    print(f"seconds: {seconds}; {'EQUAL' if equal else 'DIFFERENT'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path,
                        help="A checkout of NVlabs/stylegan2-ada-pytorch (writes the pickles).")
    parser.add_argument("--pkl128", type=Path, help="An official 128x128 pickle.")
    parser.add_argument("--pkl256", type=Path, help="An official paper256 pickle.")
    parser.add_argument("--compare", nargs="+", help="Models whose sizes to compare with the finite differences.")
    parser.add_argument("--exact-precision", nargs="+", metavar="MODEL",
                        help="Time the exact fields with a bfloat16 first pass against float32 only.")
    parser.add_argument("--winograd", nargs="+", metavar="MODEL",
                        help="Time the measurement with the Winograd convolutions against direct ones only.")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="Time the command (--args) from another checkout of genfields against this one.")
    parser.add_argument("--args", default="--arch paper256", help="The fields command's model arguments for --against.")
    parser.add_argument("--rounds", type=int, default=5,
                        help="Alternated rounds of --against / --exact-precision / --winograd.")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--channels", type=int, default=16)
    args = parser.parse_args()
    keep_freed_memory()  # as the CLI's launcher does, so the in-process measurement matches the command's
    if args.against:
        command_against(args.against, args.args.split(), args.rounds)
        return
    if args.winograd:
        for spec in args.winograd:
            winograd_against_direct(spec, args.rounds)
        return
    if args.exact_precision:
        for spec in args.exact_precision:
            exact_precisions(spec, args.rounds)
        return
    if args.compare:
        for spec in args.compare:
            compare(spec, args.samples, args.channels)
        return
    with tempfile.TemporaryDirectory() as tmp:
        pkl128, pkl256 = args.pkl128, args.pkl256
        if args.official is not None:
            from official import write_random_pickle

            pkl128 = pkl128 or write_random_pickle(args.official, Path(tmp) / "paper128.pkl", 128)
            pkl256 = pkl256 or write_random_pickle(args.official, Path(tmp) / "paper256.pkl", 256)
        runs = [("synth64", ["--model", "synth64"]), ("--arch paper256", ["--arch", "paper256"])]
        runs += [("128x128", ["--model", str(pkl128)])] if pkl128 else []
        runs += [("paper256", ["--model", str(pkl256)])] if pkl256 else []
        print(f"{'model':16s} {'command s':>9s} {'measurement s':>13s} {'goal':>6s}")
        for name, cli in runs:
            seconds, _ = time_command(cli)
            inside = time_measurement(cli)
            goal = GOALS[name]
            print(f"{name:16s} {seconds:9.1f} {inside:13.1f} {'' if goal is None else f'< {goal:g}':>6s}", flush=True)


if __name__ == "__main__":
    main()
