"""Typer commands of the paper's experiments (registered by `genfields.cli`).

    genfields reproduce --preset synth64 --quick --out report/
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import torch
import typer


def reproduce(
    preset: str = typer.Option("synth64", help="Editing preset (synth64; tiny16 for a smoke run; paper256)."),
    out: Path = typer.Option(Path("report"), "--out", help="Report folder: index.md, index.html, PNG figures, JSON."),
    quick: bool = typer.Option(False, "--quick", help="Fewer pairs and tests; fine-tune the missing configurations "
                               "from the paper editor for a few steps instead of requiring trained ones."),
    editors: Optional[Path] = typer.Option(None, help="A directory of train-editor runs named after the "
                                           "configurations: paper, wspace, default, no-concat, style-reg, gf1..gf5."),
    dataset: Optional[Path] = typer.Option(None, help="Generated set for the quick fine-tunes (default: a small one "
                                           "made in OUT/work)."),
    model: Optional[str] = typer.Option(None, help="Generator override for every editor (shipped name, "
                                        "random:<arch>[:seed] or a checkpoint path)."),
    pairs: Optional[int] = typer.Option(None, help="Pairs of Tables 1 and 2 (default 1000; quick 150)."),
    tests: Optional[int] = typer.Option(None, help="Tests per Table 3 configuration (default 100; quick 40)."),
    steps: Optional[int] = typer.Option(None, help="Steps of each quick fine-tune (default 40)."),
    seed: int = typer.Option(0, help="Seed of identities, attribute images and fine-tunes."),
    threads: Optional[int] = typer.Option(None, help="Intra-op threads."),
    plan: bool = typer.Option(False, "--plan", help="Print the commands that train every editor the report needs "
                              "(into --editors), one per line, and exit."),
) -> None:
    """Every table and figure of the paper's section 4 and appendix, next to the paper's numbers."""
    from .report_editors import dataset_folder, train_editor_command
    from .reproduce import editor_plan, report_sizes
    from .reproduce import reproduce as run

    if threads is not None:
        torch.set_num_threads(threads)
    if plan:
        typer.echo(f"genfields make-dataset --preset {preset} --out {dataset_folder(preset)}")
        for name, layers in editor_plan(preset, model, seed, quick).items():
            typer.echo(train_editor_command(preset, name, editors, layers))
        return
    sizes = report_sizes(preset, quick, pairs=pairs, tests=tests, steps=steps)
    command = "genfields " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else ""
    result = run(preset, out, quick=quick, editors=editors, dataset=dataset, model=model, seed=seed, sizes=sizes,
                 progress=False, command=command)
    typer.echo(f"wrote {out / 'index.md'} and {out / 'index.html'} in {result['total_s']:.0f} s")
