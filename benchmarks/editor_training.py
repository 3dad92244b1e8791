"""Editor training speed: the trainer as it ran before against today's, launched as users launch it, same run.

    .venv/bin/python benchmarks/editor_training.py --dataset data/edit-synth64 --out runs/bench-editor
    .venv/bin/python benchmarks/editor_training.py --out runs/bench-editor --rounds 4 --chunk 250

Each variant is a real `genfields train-editor` run (the synth64 preset's `paper` configuration,
same seed, batch 6), launched as a user launches it: two single-threaded processes under
`torch.distributed.run` (each takes half the batch; what scripts/train_editors.sh did before), or
one process of two threads (what it does now). The variants take turns: every round runs `--chunk`
steps of each (a new run, then `--resume` with a longer `--steps`), so load on the machine falls on
all of them alike; each variant's steps/s is the median over its chunks, read from the run's own
`metrics.jsonl` (start-up and loading not counted). Variants:

- `before: 2 processes, float32, glibc allocator`: the trainer as it ran before this round
  (`GENFIELDS_KEEP_FREED_MEMORY=0`: without genfields.devices.keep_freed_memory);
- `2 processes, float32`: the same launch with the CLI's allocator setting;
- `1 process x 2 threads, float32`: the launch scripts/train_editors.sh now uses;
- `1 process x 2 threads, --amp`: with the synthesis under bfloat16 autocast.
- with `--against CHECKOUT`, first: the trainer of that checkout (e.g. the code before issue 14's work,
  `git worktree add /tmp/old 4301bb6`), launched as scripts/train_editors.sh launched it then (two
  single-threaded processes, float32, glibc's allocator); it is then the baseline of `vs before`.

`--split STEPS` instead times the parts of one step in this process (one process of two threads, float32 and
`--amp`, STEPS steps each after 5 of warm-up): the synthesis forward passes, perception, M_ref, the loss, and
the backward pass with Adam; then the share of the step spent in convolutions (forward and backward, under
`torch.profiler`), which is what bounds the speed-up.

Without `--dataset` it first makes a small synth64 set. Writes `curves.png` and `losses.csv` in
`--out` (every variant's logged losses) and prints the table recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# name -> (train-editor flags, environment, processes, threads per process)
VARIANTS: dict[str, tuple[list[str], dict[str, str], int, int]] = {
    "before: 2 processes, float32, glibc allocator": ([], {"GENFIELDS_KEEP_FREED_MEMORY": "0"}, 2, 1),
    "2 processes, float32": ([], {}, 2, 1),
    "1 process x 2 threads, float32": ([], {}, 1, 2),
    "1 process x 2 threads, --amp": (["--amp"], {}, 1, 2),
}


def folder_name(variant: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in variant).strip("-")


def launch(args: list[str], env: dict[str, str], procs: int, threads: int, log: Path) -> None:
    """`genfields ARGS` in one process, or under torch.distributed.run with `procs` (output to `log`).

    genfields is imported from this checkout, or from the one in `env`'s PYTHONPATH; the processes run in
    `log`'s folder, so that no genfields folder in the current directory shadows it."""
    launcher = ["-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_port=29637"] if procs > 1 else []
    cmd = [sys.executable, *launcher, "-m", "genfields", *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO), **env}
    with open(log, "a") as f:
        subprocess.run(cmd, env=full_env, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=log.parent)


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def chunk_rate(rows: list[dict], first: int, last: int) -> float:
    """Steps/s between the first and the last log row of steps (first, last]: one process's clock."""
    chunk = [r for r in rows if first < r["step"] <= last]
    return (chunk[-1]["step"] - chunk[0]["step"]) / (chunk[-1]["time_s"] - chunk[0]["time_s"])


def make_small_dataset(out: Path, identities: int, attributes: int) -> Path:
    dataset = out / "dataset"
    if not (dataset / "dataset.json").is_file():
        subprocess.run([sys.executable, "-m", "genfields", "make-dataset", "--preset", "synth64", "--identities",
                        str(identities), "--attributes", str(attributes), "--outdir", str(dataset)], check=True)
    return dataset


def step_parts(dataset: Path, out: Path, steps: int) -> None:
    """Milliseconds per step of each part of `EditorTrainer.train_step`, float32 and --amp, and the convolutions'
    share of the step."""
    import time

    import torch
    from torch.profiler import profile

    from genfields.devices import keep_freed_memory
    from genfields.editing.presets import get_preset
    from genfields.editing.trainer import train_editor

    keep_freed_memory()  # as the CLI runs
    torch.set_num_threads(2)
    print(f"synth64 paper editor, batch 6, one process of 2 threads; ms per step, mean of {steps} steps")
    for amp in (False, True):
        cfg = get_preset("synth64").train_config("paper", dataset=str(dataset), steps=5, batch=6, amp=amp,
                                                 sample_every=0)
        trainer = train_editor(cfg, out / f"split-{'amp' if amp else 'float32'}", progress=False, overwrite=True)
        parts: dict[str, float] = {}

        def timed(name, fn):
            def run(*a, **k):
                start = time.perf_counter()
                result = fn(*a, **k)
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
                return result
            return run

        editor = trainer.editor
        editor.synthesize = timed("synthesis, forward (I_out; I_id in reconstruction steps)", editor.synthesize)
        editor.identity_styles = timed("mapping and styles of z_id", editor.identity_styles)
        editor.edit_styles = timed("M_ref, forward", editor.edit_styles)
        trainer._perceive = timed("perception of I_out, forward", trainer._perceive)
        trainer.loss = timed("losses", trainer.loss)
        trainer._update = timed("backward, gradient all-reduce, Adam", trainer._update)
        for _ in range(5):
            trainer.train_step()
        parts.clear()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        total = (time.perf_counter() - start) / steps
        timed_parts = dict(parts)
        with profile() as prof:
            for _ in range(min(steps, 10)):
                trainer.train_step()
        events = prof.key_averages()
        conv = sum(e.self_cpu_time_total for e in events if "conv" in e.key)
        share = conv / sum(e.self_cpu_time_total for e in events)
        print(f"{'--amp' if amp else 'float32'}: {1 / total:.2f} steps/s, {total * 1e3:.1f} ms per step; "
              f"convolutions {share:.0%} of the profiled step")
        for name, seconds in timed_parts.items():
            print(f"  {name:58s} {seconds / steps * 1e3:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, help="A synth64 make-dataset folder (default: make a small one).")
    parser.add_argument("--identities", type=int, default=512)
    parser.add_argument("--attributes", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=250, help="Steps per variant per round.")
    parser.add_argument("--split", type=int, metavar="STEPS", help="Time the parts of a step instead (see above).")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT", help="Also (first, the baseline of the ratios) "
                        "the trainer of another genfields checkout, launched as scripts/train_editors.sh launched it "
                        "before issue 14: 2 single-threaded processes, float32 (e.g. `git worktree add /tmp/old 4301bb6`).")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = (args.dataset or make_small_dataset(args.out, args.identities, args.attributes)).resolve()
    if args.split:
        step_parts(dataset, args.out, args.split)
        return

    variants = dict(VARIANTS)
    if args.against:
        checkout = args.against.resolve()
        if not (checkout / "genfields" / "__init__.py").is_file():
            sys.exit(f"--against {checkout}: not a genfields checkout")
        variants = {f"{checkout} (2 processes, float32)": ([], {"PYTHONPATH": str(checkout)}, 2, 1), **variants}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        steps = (r + 1) * args.chunk
        for name, (flags, env, procs, threads) in variants.items():
            run = args.out / folder_name(name)
            if r == 0:
                shutil.rmtree(run, ignore_errors=True)  # a new run (older checkouts have no --overwrite)
                cmd = ["train-editor", "--preset", "synth64", "--config", "paper", "--dataset", str(dataset),
                       "--outdir", str(run), "--sample-every", "0", *flags]
            else:
                cmd = ["train-editor", "--outdir", str(run), "--resume"]
            launch([*cmd, "--steps", str(steps)], env, procs, threads, args.out / "train.log")
            rates[name].append(chunk_rate(read_log(run), steps - args.chunk, steps))
            print(f"round {r + 1}/{args.rounds} {name}: {rates[name][-1]:.2f} steps/s", flush=True)

    base = statistics.median(rates[next(iter(variants))])
    logs = {name: read_log(args.out / folder_name(name)) for name in variants}
    print(f"synth64 paper editor, batch 6, {args.rounds} rounds x {args.chunk} steps")
    print(f"{'variant':46s} {'steps/s':>8s} {'vs before':>10s} {'mean loss, last 200 steps':>26s}")
    for name in variants:
        rate = statistics.median(rates[name])
        tail = [row["loss"] for row in logs[name] if row["step"] > logs[name][-1]["step"] - 200]
        print(f"{name:46s} {rate:8.2f} {rate / base:10.2f} {statistics.mean(tail):26.4f}")
    write_curves(logs, args.out)


def write_curves(logs: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = sorted({k for rows in logs.values() for row in rows for k in row} - {"stage", "lr", "step", "time_s"})
    with open(out / "losses.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "step", "stage", *terms])
        for name, rows in logs.items():
            for row in rows:
                writer.writerow([name, row["step"], row["stage"], *[row.get(t, "") for t in terms]])
    fig, axes = plt.subplots(1, len(terms), figsize=(3.4 * len(terms), 3), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for name, rows in logs.items():  # cross steps only (reconstruction steps have other terms), smoothed
            pts = [(row["step"], row[term]) for row in rows if term in row and row["stage"] == "cross"]
            smooth = [statistics.mean(v for _, v in pts[max(0, k - 4):k + 1]) for k in range(len(pts))]
            ax.plot([p[0] for p in pts], smooth, label=name, lw=1)
        ax.set_title(f"{term} (cross steps, mean of 5 logs)", fontsize=8)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
