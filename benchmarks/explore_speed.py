"""Server time of the explore page's requests: what one update costs on synth64 and on paper256.

    flock /tmp/genfields-heavy.lock .venv/bin/python benchmarks/explore_speed.py [--repeats 10] \
        [--paper-model random:paper256]

Runs `genfields.explore.api.call`, the function each HTTP request runs (everything but the socket),
and prints the median and the maximum over `repeats` requests of each kind. Every timed request
misses the caches, as a user's does: a new seed, a new slider value, a new mask. The paper256 row
uses random weights unless `--paper-model` names NVIDIA's pkl (same operations, same time); it has
no editor (the paper's needs the real perception networks), so its edit row is absent.

The channel ranking is also timed the way it ran before it used the pixel's window (three backward
passes through the full image), interleaved with the new one on the same views, so that their ratio
holds on a machine that other jobs slow down.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genfields.explore import Explorer, View, call


def timed(explorer: Explorer, requests: list[tuple[str, dict]]) -> tuple[float, float]:
    ms = []
    for endpoint, payload in requests:
        out = call(explorer, endpoint, payload)
        if "error" in out:
            raise RuntimeError(f"{endpoint}: {out['error']}")
        ms.append(out["ms"])
    return statistics.median(ms), max(ms)


def full_image_ranking_ms(explorer: Explorer, seed: int, x: int, y: int) -> float:
    """Server time of the channel ranking as it was computed before `genfields.explore.window`: the pixel
    back-propagated three times through the whole image (the baseline of the windowed ranking)."""
    start = time.perf_counter()
    view = View(seed=seed)
    with torch.no_grad():
        ident = explorer._identity(view)
    S = ident.S.detach().clone().requires_grad_(True)
    pixel = explorer._synthesize(S, ident.w, view)[0, :, y, x]
    grads = [torch.autograd.grad(pixel[c], S, retain_graph=c < 2)[0][0] for c in range(3)]
    torch.stack(grads).norm(dim=0)
    return 1000 * (time.perf_counter() - start)


def ranking_against_baseline(explorer: Explorer, repeats: int, pixel: dict) -> dict[str, tuple[float, float]]:
    """The windowed ranking and the full-image one, alternating on the same new views."""
    new, old = [], []
    for i in range(repeats):
        seed = 7000 + i
        old.append(full_image_ranking_ms(explorer, seed, pixel["x"], pixel["y"]))
        explorer._identities.clear()
        out = call(explorer, "rank", {"view": {"seed": seed}, **pixel})
        new.append(out["ms"])
    ratios = sorted(o / n for o, n in zip(old, new))
    return {"click: channel ranking, full image (before)": (statistics.median(old), max(old)),
            "click: channel ranking, pixel window (now)": (statistics.median(new), max(new)),
            "  ratio before / now (median of pairs)": (statistics.median(ratios), max(ratios))}


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
    rows.update(ranking_against_baseline(explorer, repeats, pixel))
    rows["click: feature maps"] = timed(explorer, [("features", {"view": {"seed": seed + 50 + i}, **pixel,
                                                                 "layer": "conv4"}) for i in range(repeats)])
    rows["style mixing (coarse)"] = timed(explorer, [("render", {"view": {"seed": seed, "mix": {
        "seed": 900 + i, "styles": "coarse"}}}) for i in range(repeats)])
    rows["capture PNG"] = timed(explorer, [("capture", {"view": {"seed": seed + i}}) for i in range(repeats)])
    box = [R // 4, R // 2, R // 2, 3 * R // 4]
    rows["drag: region search (16 probes)"] = timed(explorer, [("region", {"view": {"seed": seed + 80 + i},
                                                                           "box": box})
                                                               for i in range(max(2, repeats // 3))])
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
            form = ".2f" if "ratio" in name else ".0f"
            print(f"| {name} | {median:{form}} | {worst:{form}} |")
    print(f"\n# load average after: {os.getloadavg()[0]:.2f} (other processes on this machine slow every row)")


if __name__ == "__main__":
    main()
