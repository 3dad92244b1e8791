"""Synthetic-face renderer throughput at 64x64: batched vs per-image, one process vs one per core.

    python benchmarks/synthface_speed.py [--n 256] [--res 64] [--seconds 3] [--dataset-n 16384]

Sets glibc malloc tunables for itself (a launcher's job, see docs/design.md) before importing torch.
"""

from __future__ import annotations

import argparse
import os
import sys

_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_TOP_PAD_": "67108864"}
if any(os.environ.get(k) != v for k, v in _MALLOC.items()):
    os.environ.update(_MALLOC)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from genfields.synthface import FaceRenderer, sample_params  # noqa: E402
from genfields.synthface.dataset import write_dataset  # noqa: E402


def rate(fn, images: int, seconds: float) -> float:
    fn()  # warm-up
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        count += images
    return count / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=256, help="images per batched call")
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--dataset-n", type=int, default=16384,
                    help="images written by the synth-data measurement (large enough that worker start-up, ~3 s, "
                         "does not dominate, as in a real dataset job)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    renderer = FaceRenderer(args.res)
    params = sample_params(args.n, seed=0)
    results = {"res": args.res, "supersample": renderer.supersample, "cpus": os.cpu_count()}
    results["per_image"] = rate(lambda: [renderer.render(params[i:i + 1]) for i in range(16)], 16, args.seconds)
    results["batched_1_process"] = rate(lambda: renderer.render(params), args.n, args.seconds)
    workers = os.cpu_count() or 1
    n_ds = args.dataset_n
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_dataset(tmp, n=n_ds, res=args.res, seed=0, shard_size=256, workers=workers, progress=False)
        results[f"synth_data_{workers}_workers"] = n_ds / (time.perf_counter() - t0)
    results["speedup_batched_vs_per_image"] = results["batched_1_process"] / results["per_image"]
    if args.json:
        print(json.dumps(results))
        return
    print(f"synthface {args.res}x{args.res} (supersample {renderer.supersample}), torch {torch.__version__}, {workers} CPUs")
    print(f"  per-image calls (baseline)          {results['per_image']:8.1f} images/s")
    print(f"  batched, 1 process                  {results['batched_1_process']:8.1f} images/s  "
          f"({results['speedup_batched_vs_per_image']:.1f}x baseline)")
    print(f"  synth-data, {workers} worker processes     {results[f'synth_data_{workers}_workers']:8.1f} images/s  "
          f"(incl. uint8 conversion and .npz writing; "
          f"{results[f'synth_data_{workers}_workers'] / results['per_image']:.1f}x baseline)")


if __name__ == "__main__":
    mp.freeze_support()
    main()
