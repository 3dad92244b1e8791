"""Typer commands of evaluation and shipping (registered by `genfields.cli`).

    genfields gan-quality --run RUN           # FD and pose/expression coverage of every GAN snapshot
    genfields ship-gan --run RUN --name synth64
    genfields ship-editor --run RUN --name synth64
    genfields reproduce --preset synth64 --quick --out report/
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import torch
import typer
from genfields.devices import DEVICE_HELP, resolve_device
from genfields.errors import (IMAGES, IMAGES_2, POSITIVE, SEED, STEPS, ConfigError, cli_console, output_folder,
                              threads_option)
from genfields.stylegan2.cli import MODEL_HELP

console = cli_console()


def reproduce(
    preset: str = typer.Option("synth64", help="Editing preset (synth64; tiny16 for a smoke run; paper256)."),
    out: Path = typer.Option(Path("report"), "--outdir", "--out", callback=output_folder,
                             help="Report folder: index.md, index.html, PNG figures, JSON."),
    quick: bool = typer.Option(False, "--quick", help="Fewer pairs and tests; fine-tune the missing configurations "
                               "from the paper editor for a few steps instead of requiring trained ones."),
    editors: Optional[Path] = typer.Option(None, help="A directory of train-editor runs named after the "
                                           "configurations: paper, wspace, default, no-concat, style-reg, gf1..gf5 "
                                           "(looked up before the shipped <preset>-<name> editors)."),
    dataset: Optional[Path] = typer.Option(None, help="Generated set for the quick fine-tunes (default: a small one "
                                           "made in OUT/work)."),
    model: Optional[str] = typer.Option(None, help="Generator override for every editor (shipped name, "
                                        "random:<arch>[:seed] or a checkpoint path)."),
    pairs: Optional[int] = typer.Option(None, callback=IMAGES_2, help="Pairs of Tables 1 and 2 (default 1000; "
                                        "quick 150)."),
    tests: Optional[int] = typer.Option(None, callback=IMAGES, help="Tests per Table 3 configuration (default "
                                        "100; quick 40)."),
    steps: Optional[int] = typer.Option(None, callback=STEPS, help="Steps of each quick fine-tune (default 200)."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of identities, attribute images and fine-tunes."),
    threads: Optional[int] = typer.Option(None, callback=threads_option, help="Intra-op threads (at most the CPU "
                                          "count)."),
    plan: bool = typer.Option(False, "--plan", help="Print the commands that train every editor the report needs "
                              "(into --editors), one per line, and exit."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " Editors, edits and quick fine-tunes run "
                               "there; the generative fields are measured on the CPU."),
    compare_with: Optional[Path] = typer.Option(None, "--compare-with", help="A previous report folder (its "
                                                "claims.json and table*.json): index.md gets a section of what "
                                                "changed from it (verdicts, Table 1-3 numbers)."),
) -> None:
    """Every table and figure of the paper's section 4 and appendix, next to the paper's numbers."""
    from .report_editors import dataset_folder, train_editor_command
    from .reproduce import editor_plan, report_sizes
    from .reproduce import reproduce as run

    if threads is not None:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    if plan:
        typer.echo(f"genfields make-dataset --preset {preset} --out {dataset_folder(preset)}")
        for name, layers in editor_plan(preset, model, seed, quick, dev).items():
            typer.echo(train_editor_command(preset, name, editors, layers))
        return
    sizes = report_sizes(preset, quick, pairs=pairs, tests=tests, steps=steps)
    command = "genfields " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else ""
    result = run(preset, out, quick=quick, editors=editors, dataset=dataset, model=model, seed=seed, sizes=sizes,
                 progress=False, command=command, device=dev, compare_with=compare_with)
    typer.echo(f"wrote {out / 'index.md'} and {out / 'index.html'} in {result['total_s']:.0f} s")


def gan_quality_command(
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    run: Optional[Path] = typer.Option(None, help="A train-gan run folder: evaluate every snapshot in it "
                                       "(appends quality.jsonl, draws curves.png)."),
    n: int = typer.Option(2000, callback=IMAGES_2,
                          help="Images per set (GAN samples, renders, and the second render set)."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the GAN samples."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    edit_probe: bool = typer.Option(False, "--edit-probe", help="The edit-readiness probe instead: FD, PPL, a real "
                                    "face detector, and per-pair-optimum edits judged by 3DDFA_V2 and for realism, "
                                    "beside --against measured in the same run (appends edit_probe.jsonl)."),
    against: str = typer.Option("synth64", help="With --edit-probe: the generator measured beside (shipped name or "
                                "folder)."),
    probe_every: float = typer.Option(250.0, callback=POSITIVE, help="With --edit-probe --run: probe the snapshots "
                                      "at multiples of this many kimg not probed yet."),
    edit_pairs: int = typer.Option(200, callback=IMAGES_2, help="With --edit-probe: pairs of the per-pair optimum."),
    optimum_steps: int = typer.Option(60, callback=STEPS, help="With --edit-probe: Adam steps per pair."),
    probe_editor: str = typer.Option("synth64-paper", help="With --edit-probe: the editor whose losses and perception "
                                     "networks the per-pair optimum uses."),
    outdir: Optional[Path] = typer.Option(None, callback=output_folder, help="With --edit-probe --model: where "
                                          "edit_probe.jsonl and the contact sheets go (default runs/edit-probe)."),
) -> None:
    """FD of a generator against rendered faces (with the render-vs-render floor) and pose/expression coverage.

    FD is measured in the synthetic world's feature network (not FID). Coverage is the ratio of
    standard deviations of the pose angles and expression measures that the landmark/pose network
    finds on GAN samples and on renders. With --edit-probe: whether the generator's style space can be
    edited without leaving the face manifold (genfields.evaluation.edit_probe), against --against.
    """
    if edit_probe:
        from genfields.editing.editor import editor_folder
        from genfields.evaluation.edit_probe import EditProbeConfig

        preset = json.loads((editor_folder(probe_editor) / "config.json").read_text()).get("preset", "synth64")
        cfg = EditProbeConfig(samples=n, detector=min(500, n), ppl_pairs=n, edit_pairs=edit_pairs,
                              optimum_steps=optimum_steps, editor=probe_editor, preset=preset, seed=seed)
        _edit_probe(cfg, model, run, against, probe_every, outdir, as_json)
        return
    from tqdm import tqdm

    from genfields.evaluation.gan_quality import gan_quality, render_reference
    from genfields.evaluation.plots import plot_gan_run, read_jsonl
    from genfields.perception import load_perception
    from genfields.stylegan2 import load_generator
    from genfields.stylegan2.train import name_kimg

    if (model is None) == (run is None):
        raise ConfigError("give exactly one of --model or --run")
    nets = load_perception("synth")
    if model:
        _report(gan_quality(load_generator(model), nets, n=n, seed=seed), as_json)
        return
    snapshots = sorted((run / "snapshots").glob("kimg*"))
    if not snapshots:
        raise ConfigError(f"{run}: no snapshots/ to evaluate")
    rows = read_jsonl(run / "quality.jsonl")
    other_n = sorted({q["n"] for q in rows} - {n})
    if other_n:  # FD depends on n (its floor falls like 1/n): one file, one sample size
        raise ConfigError(f"{run / 'quality.jsonl'} holds rows measured with --n {other_n[0]}: "
                          f"pass that --n, or move the file away to measure again with --n {n}")
    done = {q["snapshot"] for q in rows}
    todo = [snap for snap in snapshots if snap.name not in done]
    reference = None
    for snap in tqdm(todo, desc="snapshots", unit="snapshot", disable=as_json or len(todo) < 2):
        G = load_generator(snap)
        reference = reference or render_reference(nets, n, G.config.img_resolution)
        result = {"snapshot": snap.name, "kimg": name_kimg(snap.name), **gan_quality(G, nets, n, seed, reference)}
        with open(run / "quality.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        _report(result, as_json)
    plot_gan_run(run, run / "curves.png")


def _edit_probe(cfg, model: str | None, run: Path | None, against: str, every: float, outdir: Path | None,
                as_json: bool) -> None:
    """`gan-quality --edit-probe`: probe a model, or a run's unprobed snapshots, beside `against`."""
    from genfields.evaluation.edit_probe import PROBE_FILE, probe_goals, run_probe, table_markdown
    from genfields.evaluation.plots import read_jsonl
    from genfields.stylegan2.train import name_kimg

    if (model is None) == (run is None):
        raise ConfigError("give exactly one of --model or --run")
    if run is not None:
        done = {row.get("model") for row in read_jsonl(run / PROBE_FILE)}
        models = {snap.name: str(snap) for snap in sorted((run / "snapshots").glob("kimg*"))
                  if name_kimg(snap.name) % every == 0 and str(snap) not in done}
        if not models:
            console.print(f"{run}: every snapshot at a multiple of {every:g} kimg is probed already")
            return
        outdir = run
    else:
        label = Path(model).name
        models = {label if label != against else f"{label} (probed)": model}
        outdir = outdir or Path("runs/edit-probe")
    rows = run_probe({against: against, **models}, cfg, outdir, progress=not as_json)
    goals = probe_goals(rows, against)
    if as_json:
        print(json.dumps({"rows": rows, "goals": goals}))
        return
    console.print(table_markdown(rows))
    for label, checks in goals.items():
        console.print(f"goals of {label} (against {against} in the same run):")
        for text, value, bound, met in checks:
            verdict = "n/a" if met is None else ("met" if met else "NOT met")
            shown = "n/a" if value is None else f"{value:.4g}"
            console.print(f"  {text}: {shown} against {'n/a' if bound is None else f'{bound:.4g}'} -> {verdict}")
    console.print(f"rows appended to {outdir / PROBE_FILE}; contact sheets in {outdir / 'edit_probe'}")


def ship_gan_command(
    run: Path = typer.Option(..., help="A finished train-gan run folder (with quality.jsonl from gan-quality)."),
    name: str = typer.Option("synth64", help="Name of the shipped model (genfields/models/<name>/)."),
    command: str = typer.Option("scripts/train_synth64.sh", help="The training command, for the model card."),
    notes: Optional[Path] = typer.Option(None, help="A markdown file of what was tried and why; goes into the card."),
    allow_below_bar: bool = typer.Option(False, help="Ship even if the quality bar is not met (the card says so)."),
) -> None:
    """Ship a run's final G_ema (float16) with samples, curves and a model card written from the run's files.

    Refuses a run below the quality bar (pose std ratios within 0.7-1.3, FD falling) unless
    --allow-below-bar.
    """
    from genfields.evaluation.gan_card import ship_gan

    try:
        out = ship_gan(run, name, command, notes=notes.read_text() if notes else "",
                       allow_below_bar=allow_below_bar)
    except (ValueError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    console.print(f"shipped {name} to {out}")


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        console.print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))


def ship_editor(
    run: Path = typer.Option(..., help="A finished train-editor run folder with evaluation.json "
                             "(`genfields evaluate --editor RUN/final --out RUN/evaluation.json`)."),
    name: str = typer.Option("synth64", help="Name of the shipped editor (genfields/models/editing/<name>/)."),
    baseline: Optional[Path] = typer.Option(None, help="The W-space baseline's run folder (with its evaluation.json) "
                                            "for the card's Table 1 comparison."),
    command: str = typer.Option("", help="The training command, for the model card."),
    out_dir: Optional[Path] = typer.Option(None, "--outdir", "--out-dir", callback=output_folder,
                                           help="Where shipped editors live (default: the package's)."),
    notes: Optional[Path] = typer.Option(None, help="A markdown file of what was tried and why; goes into the card."),
) -> None:
    """Ship a run's final editor (float16) with a demo grid, curves and a model card from the run's files."""
    from genfields.editing.editor import EDITORS_DIR
    from genfields.evaluation.editor_card import quality_bar, read_evaluation
    from genfields.evaluation.editor_card import ship_editor as run_ship

    out = run_ship(run, name, command or f"genfields train-editor (see {run / 'config.json'})", baseline,
                   out_dir or EDITORS_DIR, notes=notes.read_text() if notes else "")
    typer.echo(f"shipped {name} to {out}")
    for check in quality_bar(read_evaluation(run)):
        typer.echo("  " + check.describe())
