"""Server time of the explore page's requests: what one update costs on synth64 and on paper256.

    flock /tmp/genfields-heavy.lock .venv/bin/python benchmarks/explore_speed.py [--repeats 10] \
        [--paper-model random:paper256]

Runs `genfields.explore.api.call`, the function each HTTP request runs (everything but the socket),
and prints the median and the maximum over `repeats` requests of each kind. Every timed request
misses the caches, as a user's does: a new seed, a new slider value, a new mask. The paper256 row
uses random weights unless `--paper-model` names NVIDIA's pkl (same operations, same time); it has
no editor (the paper's needs the real perception networks), so its edit row is absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genfields.explore import Explorer, call


def timed(explorer: Explorer, requests: list[tuple[str, dict]]) -> tuple[float, float]:
    ms = []
    for endpoint, payload in requests:
        out = call(explorer, endpoint, payload)
        if "error" in out:
            raise RuntimeError(f"{endpoint}: {out['error']}")
        ms.append(out["ms"])
    return statistics.median(ms), max(ms)


def measure(explorer: Explorer, repeats: int, editing: bool) -> dict[str, tuple[float, float]]:
    R = explorer.resolution
    channel = explorer.layout.format_index(explorer.layout.layers[len(explorer.layout) // 2].offset + 3, "stylespace")
    call(explorer, "render", {"view": {"seed": 10_000}})  # warm-up: first-call allocations
    seed = 100
    rows = {}
    rows["new seed"] = timed(explorer, [("render", {"view": {"seed": seed + i}}) for i in range(repeats)])
    rows["channel slider move"] = timed(explorer, [("render", {"view": {"seed": seed, "channels": [
        {"name": channel, "value": 0.5 * (i + 1)}]}}) for i in range(repeats)])
    pixel = {"x": R // 2, "y": int(R * 0.4)}
    rows["click: fields"] = timed(explorer, [("fields", {"x": (R // 2 + i) % R, "y": pixel["y"]})
                                             for i in range(repeats)])
    rows["click: probe"] = timed(explorer, [("probe", {"view": {"seed": seed}, **pixel, "layer": "conv4",
                                                       "amount": 0.5 + i}) for i in range(repeats)])
    rows["click: channel ranking"] = timed(explorer, [("rank", {"view": {"seed": seed + i}, **pixel})
                                                      for i in range(repeats)])
    if editing:
        call(explorer, "edit", {"view": {"seed": seed}, "attribute": "gallery:0"})
        names = [lay.name for lay in explorer.layout]
        rows["edit: mask change"] = timed(explorer, [("edit", {"view": {"seed": seed}, "attribute": "gallery:0",
                                                               "convs": names[:len(names) - 1 - i % (len(names) - 1)]})
                                                     for i in range(repeats)])
        rows["edit: new attribute face"] = timed(explorer, [("edit", {"view": {"seed": seed},
                                                                      "attribute": f"gallery:{i % 8}"})
                                                            for i in range(1, repeats + 1)])
        rows["edit: new seed"] = timed(explorer, [("edit", {"view": {"seed": 500 + i}, "attribute": "gallery:0"})
                                                  for i in range(repeats)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--paper-model", default="random:paper256")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    runs = [("synth64", "synth64", args.repeats), (args.paper_model, None, max(3, args.repeats // 2))]
    for model, editor, repeats in runs:
        start = time.perf_counter()
        explorer = Explorer.load(model, editor)
        print(f"\n{model} (editor {editor}): explorer ready in {time.perf_counter() - start:.1f} s; "
              f"server ms over {repeats} requests")
        print(f"| request | median ms | max ms |\n| --- | --- | --- |")
        for name, (median, worst) in measure(explorer, repeats, editor is not None).items():
            print(f"| {name} | {median:.0f} | {worst:.0f} |")
    print(f"\n# load average after: {os.getloadavg()[0]:.2f} (other processes on this machine slow every row)")


if __name__ == "__main__":
    main()
