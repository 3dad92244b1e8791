"""Editor training speed: the synth64 trainer in float32 against the same trainer under bfloat16
autocast (`train-editor --amp`), alternating in one run, with both runs' loss curves.

    .venv/bin/python benchmarks/editor_training.py --out runs/bench-editor [--rounds 8 --block 25]
    .venv/bin/python benchmarks/editor_training.py --dataset data/edit-synth64 --out runs/bench-editor

Without `--dataset` it first makes a small synth64 set (`--identities`, `--attributes`). Each
variant is its own trainer (same seed, same batches); they run `--block` steps in turn, `--rounds`
times, and steps/s is the median over blocks. Writes `curves.png` and `losses.csv` in `--out`
(both variants' losses, step by step) and prints the table recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import time
from pathlib import Path

import torch

VARIANTS = {"float32": {"amp": False}, "bfloat16 autocast": {"amp": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, help="A synth64 make-dataset folder (default: make a small one).")
    parser.add_argument("--identities", type=int, default=512)
    parser.add_argument("--attributes", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=25, help="Steps per variant per round.")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from genfields.editing import get_preset, make_dataset
    from genfields.editing.dataset import DatasetConfig, GeneratedSet
    from genfields.editing.trainer import EditorTrainer
    from genfields.perception import load_perception
    from genfields.stylegan2 import load_generator
    from genfields.training import Distributed, RunFolder

    preset = get_preset("synth64")
    G = load_generator(preset.generator)
    nets = load_perception(preset.perception)
    dataset = args.dataset
    if dataset is None:
        dataset = args.out / "dataset"
        if not (dataset / "dataset.json").is_file():
            cfg = DatasetConfig(preset="synth64", generator=preset.generator, identities=args.identities,
                                attributes=args.attributes)
            make_dataset(cfg, G, nets, dataset, progress=False)
    data = GeneratedSet(dataset)
    steps = args.rounds * args.block
    trainers = {}
    for name, change in VARIANTS.items():
        cfg = dataclasses.replace(preset.train_config("paper", steps=steps, dataset=str(dataset)), **change)
        trainers[name] = EditorTrainer(cfg, RunFolder(args.out / name.split()[0]), Distributed("cpu"), G, nets, data)
    rates = {name: [] for name in trainers}
    losses = {name: [] for name in trainers}
    for name, trainer in trainers.items():  # warm-up step, not timed (kept in the curves)
        losses[name].append(trainer.train_step())
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(args.block):
                if trainer.step < steps:
                    losses[name].append(trainer.train_step())
            rates[name].append(args.block / (time.perf_counter() - start))
    base = statistics.median(rates["float32"])
    print(f"synth64 editor, batch {trainers['float32'].cfg.batch}, {args.rounds} rounds x {args.block} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'variant':20s} {'steps/s':>8s} {'vs float32':>10s} {'mean loss, last 50 steps':>25s}")
    for name in trainers:
        rate = statistics.median(rates[name])
        tail = statistics.mean(s["loss"] for s in losses[name][-50:])
        print(f"{name:20s} {rate:8.2f} {rate / base:10.2f} {tail:25.4f}")
    write_curves(losses, args.out)


def write_curves(losses: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = sorted({k for rows in losses.values() for r in rows for k in r} - {"stage", "lr"})
    with open(out / "losses.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "step", "stage", *terms])
        for name, rows in losses.items():
            for step, row in enumerate(rows):
                writer.writerow([name, step, row["stage"], *[row.get(t, "") for t in terms]])
    fig, axes = plt.subplots(1, len(terms), figsize=(3.4 * len(terms), 3), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for name, rows in losses.items():  # cross steps only (reconstruction steps have other terms), smoothed
            pts = [(i, r[term]) for i, r in enumerate(rows) if term in r and r["stage"] == "cross"]
            smooth = [sum(v for _, v in pts[max(0, k - 9):k + 1]) / len(pts[max(0, k - 9):k + 1])
                      for k in range(len(pts))]
            ax.plot([p[0] for p in pts], smooth, label=name, lw=1)
        ax.set_title(f"{term} (cross steps, mean of 10)")
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
