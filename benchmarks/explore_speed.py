"""Server time of the explore page's requests: what one update costs on synth64 and on paper256.

    flock /tmp/genfields-heavy.lock .venv/bin/python benchmarks/explore_speed.py [--repeats 10] \
        [--paper-model random:paper256]

Runs `genfields.explore.api.call`, the function each HTTP request runs (everything but the socket),
and prints the median and the maximum over `repeats` requests of each kind. Every timed request
misses the caches, as a user's does: a new seed, a new slider value, a new mask. The paper256 row
uses random weights unless `--paper-model` names NVIDIA's pkl (same operations, same time); it has
no editor (the paper's needs the real perception networks), so its edit row is absent.

The channel ranking is also timed the way it ran before it used the pixel's window (three backward
passes through the full image), interleaved with the new one on the same views, each after its view
was rendered (as on the page, where a click follows the image), so that their ratio holds on a
machine that other jobs slow down. The last column, the CPU time of the process, is what other jobs
on the machine change least; run with `--threads 1` to compare it across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genfields.explore import Explorer, View, call


def timed(explorer: Explorer, requests: list[tuple[str, dict]]) -> tuple[float, float, float]:
    """(median server ms, max server ms, median CPU ms of this process) over the requests."""
    ms, cpu = [], []
    for endpoint, payload in requests:
        start = time.process_time()
        out = call(explorer, endpoint, payload)
        cpu.append(1000 * (time.process_time() - start))
        if "error" in out:
            raise RuntimeError(f"{endpoint}: {out['error']}")
        ms.append(out["ms"])
    return statistics.median(ms), max(ms), statistics.median(cpu)


def full_image_ranking(explorer: Explorer, seed: int, x: int, y: int) -> tuple[float, float]:
    """(wall ms, CPU ms) of the channel ranking as it was computed before `genfields.explore.window`: the pixel
    back-propagated three times through the whole image (the baseline of the windowed ranking)."""
    start, cpu = time.perf_counter(), time.process_time()
    view = View(seed=seed)
    with torch.no_grad():
        ident = explorer._identity(view)
    S = ident.S.detach().clone().requires_grad_(True)
    pixel = explorer._synthesize(S, ident.w, view)[0, :, y, x]
    grads = [torch.autograd.grad(pixel[c], S, retain_graph=c < 2)[0][0] for c in range(3)]
    torch.stack(grads).norm(dim=0)
    return 1000 * (time.perf_counter() - start), 1000 * (time.process_time() - cpu)


def ranking_against_baseline(explorer: Explorer, repeats: int, pixel: dict) -> dict[str, tuple[float, ...]]:
    """The windowed ranking and the full-image one, alternating on the same new views, each after the view's
    image was rendered (as on the page, where a click follows the image); the last row is the median ratio of
    their CPU times, pair by pair (what other processes on the machine change least)."""
    old, new = [], []
    for i in range(repeats):
        seed = 7000 + i
        call(explorer, "render", {"view": {"seed": seed}})
        old.append(full_image_ranking(explorer, seed, pixel["x"], pixel["y"]))
        start = time.process_time()
        out = call(explorer, "rank", {"view": {"seed": seed}, **pixel})
        new.append((out["ms"], 1000 * (time.process_time() - start)))
    ratio = statistics.median(o[1] / n[1] for o, n in zip(old, new))

    def row(pairs):
        return statistics.median(p[0] for p in pairs), max(p[0] for p in pairs), statistics.median(p[1] for p in pairs)

    return {"click: channel ranking, full image (before)": row(old),
            "click: channel ranking, pixel window (now)": row(new),
            f"ranking CPU time, before / now: {ratio:.2f}x": None}


def measure(explorer: Explorer, repeats: int, editing: bool,
            region_everywhere: bool = False) -> dict[str, tuple[float, ...] | None]:
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
    rows.update(ranking_against_baseline(explorer, repeats, pixel))
    rows["click: feature maps"] = timed(explorer, [("features", {"view": {"seed": seed + 50 + i}, **pixel,
                                                                 "layer": "conv4"}) for i in range(repeats)])
    rows["style mixing (coarse)"] = timed(explorer, [("render", {"view": {"seed": seed, "mix": {
        "seed": 900 + i, "styles": "coarse"}}}) for i in range(repeats)])
    rows["capture PNG"] = timed(explorer, [("capture", {"view": {"seed": seed + i}}) for i in range(repeats)])
    if R <= 64 or region_everywhere:  # on 256x256 the search runs minutes on a CPU
        box = [R // 4, R // 2, R // 2, 3 * R // 4]
        rows["drag: region search (16 probes)"] = timed(explorer, [("region", {"view": {"seed": seed + 80 + i},
                                                                               "box": box})
                                                                   for i in range(max(2, repeats // 3))])
    if editing:
        rows.update(edit_rows(explorer, repeats, seed))
    return rows


def edit_rows(explorer: Explorer, repeats: int, seed: int) -> dict[str, tuple[float, float, float]]:
    """Edits towards the gallery's faces: a new mask, a new face, a new identity."""
    call(explorer, "edit", {"view": {"seed": seed}, "attribute": "gallery:0"})
    names = [lay.name for lay in explorer.layout]
    return {
        "edit: mask change": timed(explorer, [("edit", {"view": {"seed": seed}, "attribute": "gallery:0",
                                                        "convs": names[:len(names) - 1 - i % (len(names) - 1)]})
                                              for i in range(repeats)]),
        "edit: new attribute face": timed(explorer, [("edit", {"view": {"seed": seed}, "attribute": f"gallery:{i % 8}"})
                                                     for i in range(1, repeats + 1)]),
        "edit: new seed": timed(explorer, [("edit", {"view": {"seed": 500 + i}, "attribute": "gallery:0"})
                                           for i in range(repeats)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--paper-model", default="random:paper256")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--ranking-only", action="store_true", help="only the channel ranking against its baseline.")
    parser.add_argument("--region-everywhere", action="store_true",
                        help="time the region search on paper256 too (minutes on a CPU).")
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
        print("| request | median ms | max ms | median CPU ms |\n| --- | --- | --- | --- |")
        R = explorer.resolution
        rows = (ranking_against_baseline(explorer, repeats, {"x": R // 2, "y": int(R * 0.4)}) if args.ranking_only
                else measure(explorer, repeats, editor is not None, args.region_everywhere))
        for name, values in rows.items():
            cells = " | ".join(f"{v:.0f}" for v in values) if values else "| |"
            print(f"| {name} | {cells} |")
    print(f"\n# load average after: {os.getloadavg()[0]:.2f} (other processes on this machine slow every row)")


if __name__ == "__main__":
    main()
