"""The `genfields` command line: thin commands over the library.

Every command reports user errors (missing file, bad checkpoint, bad argument) as one line on
stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from genfields.errors import ConfigError, GenfieldsError, exit_with_error

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="StyleGAN2 generative fields and style-space face editing.")
console = Console()

MODEL_HELP = ("A shipped model name (e.g. synth64), random:<arch>[:seed] for random weights, or a path to an "
              "NVIDIA .pkl, a rosinality .pt, or a genfields checkpoint folder/.safetensors.")


def parse_seeds(spec: str) -> list[int]:
    """'0-7' -> [0..7]; '1,5,9' -> [1, 5, 9]; mixed '0-3,10'."""
    seeds: list[int] = []
    try:
        for part in spec.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                seeds += list(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(f"cannot read seeds '{spec}': use e.g. 0-7 or 1,5,9") from None
    if not seeds or min(seeds) < 0 or max(seeds) >= 2 ** 32:
        raise ConfigError(f"seeds must be in 0..2^32-1, got '{spec}'")
    return seeds


@app.command()
def fields(
    arch: Optional[str] = typer.Option(None, help="A named architecture (paper256, synth64, ...); no weights needed."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    measure: bool = typer.Option(False, "--measure", help="Also measure the exact field on the network "
                                 "and (with --model) the effective field."),
    share: float = typer.Option(0.9, help="Energy share that defines the effective field."),
    samples: int = typer.Option(4, help="Samples averaged for the effective field."),
    channels: int = typer.Option(16, help="Random channels per layer averaged for the effective field."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per conv layer (a JSON list)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
    plot: Optional[Path] = typer.Option(None, help="Write the Figure 2 analogue (fields over a generated image)."),
    plot_layers: Optional[str] = typer.Option(None, help="Layers drawn by --plot, e.g. conv2,conv6,conv10 "
                                              "(default: those, scaled to the generator's depth)."),
    seed: int = typer.Option(0, help="Seed for the sample image and the measurements."),
) -> None:
    """Generative fields of every conv layer: the paper's Eq. 1, and measured exact/effective sizes.

    Eq. 1 needs only the architecture. The exact field is the extent of the output pixels that an
    impulse at the centre of a layer's input reaches through the real ops (FIR filters, toRGB
    skips); the effective field is the centred square that holds 90% of the response energy of
    a trained model. See docs/generative-fields.md.
    """
    from genfields.fields import field_table, figure2_layers, plot_generative_fields
    from genfields.stylegan2 import Generator, StyleLayout, load_generator

    if (arch is None) == (model is None):
        raise ConfigError("give exactly one of --arch or --model")
    G = load_generator(model) if model else (Generator.from_arch(arch, seed=seed) if measure or plot else None)
    layout = G.layout if G is not None else StyleLayout.from_arch(arch)
    rows = field_table(layout, G, measure=measure, effective=model is not None and not model.startswith("random:"),
                       share=share, samples=samples, channels=channels, seed=seed)
    if plot:
        from genfields.stylegan2.network import seed_to_z

        with torch.no_grad():
            img = G(seed_to_z(seed, G.z_dim))[0]
        label = "random weights (not a trained model)" if model is None or model.startswith("random:") else model
        names = plot_layers.split(",") if plot_layers else figure2_layers(layout)
        plot_generative_fields(img, rows, [layout.layer(n.strip()).name for n in names], plot,
                               title=f"{arch or model}: {label}")
    if as_json:
        print(json.dumps(rows, indent=1))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_fields_table(rows, arch or model, measure)


_SHORT_HEADERS = {"name": "layer", "s_index": "S", "in_resolution": "in res", "resolution": "res", "channels": "ch",
                  "gf": "Eq.1", "gf_paper": "paper", "gf_exact": "exact", "gf_exact_clipped": "in image",
                  "gf_effective": "effective"}


def _print_fields_table(rows: list[dict], name: str, measure: bool) -> None:
    table = Table(title=f"Generative fields: {name}")
    cols = ["name", "s_index", "in_resolution", "resolution", "stride", "channels", "offset", "gf"]
    if any("gf_paper" in r for r in rows):
        cols.append("gf_paper")
    if measure:
        cols += ["gf_exact", "gf_exact_clipped", "gf_effective"]
    for c in cols:
        table.add_column(_SHORT_HEADERS.get(c, c), justify="right")
    for r in rows:
        table.add_row(*["" if r.get(c) is None else (f"s{r[c]}" if c == "s_index" else str(r[c])) for c in cols])
    console.print(table)
    console.print(f"S dim {sum(r['channels'] for r in rows)}. Eq.1: the paper's formula; paper: the appendix's "
                  "printed value where it differs; exact: measured support of an impulse (unclipped); in image: "
                  "the same clipped to the image; effective: centred square with 90% of the response energy.")


@app.command()
def generate(
    model: str = typer.Option(..., help=MODEL_HELP),
    seeds: str = typer.Option("0-7", help="Seeds, e.g. 0-7 or 1,5,9 (z = RandomState(seed).randn(1, z_dim))."),
    trunc: float = typer.Option(1.0, help="Truncation psi towards w_avg."),
    noise_mode: str = typer.Option("const", help="const | random | none."),
    outdir: Path = typer.Option(Path("runs/generate"), help="Output folder."),
    grid: bool = typer.Option(True, help="Also write grid.png with all seeds."),
) -> None:
    """Write seedNNNN.png and seedNNNN.npz (z, w, S) per seed, as the official generate.py seeds them."""
    from genfields.imageio import make_grid, save_image
    from genfields.stylegan2 import load_generator
    from genfields.stylegan2.network import seed_to_z

    G = load_generator(model)
    seed_list = parse_seeds(seeds)
    outdir.mkdir(parents=True, exist_ok=True)
    images = []
    with torch.no_grad():
        for s in seed_list:
            z = seed_to_z(s, G.z_dim)
            w = G.mapping(z, truncation_psi=trunc)
            S = G.styles(w)
            img = G.synthesize(S, w=w, noise_mode=noise_mode, noise_generator=torch.Generator().manual_seed(s))
            save_image(img, outdir / f"seed{s:04d}.png")
            np.savez(outdir / f"seed{s:04d}.npz", z=z.numpy(), w=w.numpy(), S=S.numpy())
            images.append(img)
    if grid:
        save_image(make_grid(torch.cat(images)), outdir / "grid.png")
    note = " (random weights: the images are noise)" if model.startswith("random:") else ""
    console.print(f"wrote {len(seed_list)} images to {outdir}{note}")


@app.command()
def info(
    model: str = typer.Option(..., help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The generator's configuration, parameter counts and style-space layout."""
    from genfields.stylegan2 import load_generator

    G = load_generator(model)
    data = {"config": G.config.to_dict(), "parameters": G.parameter_counts(), "num_ws": G.num_ws,
            "s_dim": G.layout.dim, "layers": [{"name": l.name, "s_index": l.s_index, "official_name": l.official_name,
                                               "channels": l.channels, "offset": l.offset} for l in G.layout]}
    if as_json:
        print(json.dumps(data, indent=1))
        return
    console.print(f"[bold]{model}[/bold]: {G.config.img_resolution}x{G.config.img_resolution}, "
                  f"z_dim {G.config.z_dim}, w_dim {G.config.w_dim}, {G.config.mapping_layers} mapping layers, "
                  f"num_ws {G.num_ws}, conv_clamp {G.config.conv_clamp}")
    console.print("parameters: " + ", ".join(f"{k} {v:,}" for k, v in data["parameters"].items()))
    table = Table(title=f"Style space S ({G.layout.dim} dims)")
    for c in ("layer", "S layer", "official", "channels", "offset"):
        table.add_column(c, justify="right")
    for l in G.layout:
        table.add_row(l.name, f"s{l.s_index}", l.official_name, str(l.channels), str(l.offset))
    console.print(table)


@app.command()
def demo(
    outdir: Path = typer.Option(Path("runs/demo"), help="Output folder."),
    seed: int = typer.Option(0, help="Seed of the first identity."),
) -> None:
    """The main job on the embedded default: edits of generated faces towards rendered ones, and the fields.

    With the shipped synth64 generator and editor: a panel of identities x attribute faces with
    their edits, and the mean identity/expression/pose metrics. Until those ship, the generative
    fields of the paper's model and a grid from a randomly initialised synth64 generator, labelled
    as such (its images are noise).
    """
    from genfields.editing.editor import shipped_editors
    from genfields.fields import field_table
    from genfields.imageio import make_grid, save_image
    from genfields.stylegan2 import Generator, StyleLayout, load_generator, shipped_models
    from genfields.stylegan2.network import seed_to_z

    outdir.mkdir(parents=True, exist_ok=True)
    rows = field_table(StyleLayout.from_arch("paper256"))
    _print_fields_table(rows, "paper256 (the paper's model)", measure=False)
    (outdir / "fields_paper256.json").write_text(json.dumps(rows, indent=1))
    if "synth64" in shipped_editors() and "synth64" in shipped_models():
        from genfields.editing.demo import run_demo

        summary = run_demo(outdir, seed=seed)
        console.print(f"wrote {summary['panel']}: identities x rendered attribute faces, edited by the shipped "
                      "synth64 editor")
        _report({k: v for k, v in summary.items() if k != "panel"}, as_json=True)
        return
    if "synth64" in shipped_models():
        G, label = load_generator("synth64"), "synth64 (no shipped editor yet)"
    else:
        G, label = Generator.from_arch("synth64", seed=seed), "RANDOMLY INITIALISED synth64 (untrained: noise)"
    with torch.no_grad():
        images = torch.cat([G(seed_to_z(s, G.z_dim)) for s in range(seed, seed + 16)])
    grid = save_image(make_grid(images, cols=4), outdir / "grid.png")
    console.print(f"wrote {grid}: 16 images from {label}; fields table in {outdir / 'fields_paper256.json'}")


@app.command("train-gan")
def train_gan_command(
    arch: str = typer.Option("synth64", help="Generator architecture (paper256, synth64, tiny16, ...)."),
    outdir: Optional[Path] = typer.Option(None, help="Run folder (default runs/train-gan-<arch>-seed<seed>)."),
    kimg: float = typer.Option(300.0, help="Total training length in thousands of real images shown."),
    batch: int = typer.Option(32, help="Global batch size (split across torchrun processes)."),
    seed: int = typer.Option(0, help="Seed of the weights, the data order and every random draw."),
    data: str = typer.Option("render", help="'render' (synthetic faces on the fly) or a synth-data folder."),
    r1_gamma: float = typer.Option(0.1, help="R1 regularisation weight."),
    lr: float = typer.Option(0.0025, help="Learning rate of G and D."),
    pl_weight: float = typer.Option(0.0, help="Path-length regularisation weight (0 = off)."),
    mapping_layers: Optional[int] = typer.Option(None, help="Override the mapping depth."),
    bf16: bool = typer.Option(True, help="bfloat16 autocast for the main passes (CPU)."),
    sample_kimg: float = typer.Option(5.0, help="Write a sample grid every this many kimg."),
    snapshot_kimg: float = typer.Option(25.0, help="Write a G_ema snapshot every this many kimg."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --outdir from its checkpoint, exactly."),
    max_minutes: Optional[float] = typer.Option(None, help="Save and stop cleanly after this many minutes."),
) -> None:
    """Train a StyleGAN2 generator on synthetic faces (resumable; multi-process with torchrun).

    Example: torchrun --nproc_per_node=2 -m genfields train-gan --arch synth64 --max-minutes 120
    """
    from genfields.stylegan2.train import GANTrainConfig, train_gan

    generator = {} if mapping_layers is None else {"mapping_layers": mapping_layers}
    cfg = GANTrainConfig(arch=arch, generator=generator, batch=batch, total_kimg=kimg, seed=seed, data=data,
                         r1_gamma=r1_gamma, lr_g=lr, lr_d=lr, pl_weight=pl_weight, bf16=bf16,
                         sample_kimg=sample_kimg, snapshot_kimg=snapshot_kimg)
    outdir = outdir or Path(f"runs/train-gan-{arch}-seed{seed}")
    trainer = train_gan(cfg, outdir, resume=resume, max_minutes=max_minutes)
    if trainer.dist.is_main:
        console.print(f"{outdir}: {trainer.images_seen / 1000:.1f} of {trainer.cfg.total_kimg:g} kimg")
    trainer.dist.close()


@app.command("gan-quality")
def gan_quality_command(
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    run: Optional[Path] = typer.Option(None, help="A train-gan run folder: evaluate every snapshot in it "
                                       "(appends quality.jsonl, draws curves.png)."),
    n: int = typer.Option(2000, help="Images per set (GAN samples, renders, and the second render set)."),
    seed: int = typer.Option(0, help="Seed of the GAN samples."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """FD of a generator against rendered faces (with the render-vs-render floor) and pose/expression coverage.

    FD is measured in the synthetic world's feature network (not FID). Coverage is the ratio of
    standard deviations of the pose angles and expression measures that the landmark/pose network
    finds on GAN samples and on renders.
    """
    from genfields.evaluation.gan_quality import gan_quality, render_reference
    from genfields.evaluation.plots import plot_gan_run, read_jsonl
    from genfields.perception import load_perception
    from genfields.stylegan2 import load_generator

    if (model is None) == (run is None):
        raise ConfigError("give exactly one of --model or --run")
    nets = load_perception("synth")
    if model:
        _report(gan_quality(load_generator(model), nets, n=n, seed=seed), as_json)
        return
    snapshots = sorted((run / "snapshots").glob("kimg*"))
    if not snapshots:
        raise ConfigError(f"{run}: no snapshots/ to evaluate")
    done = {q["snapshot"] for q in read_jsonl(run / "quality.jsonl")}
    reference = None
    for snap in snapshots:
        if snap.name in done:
            continue
        G = load_generator(snap)
        reference = reference or render_reference(nets, n, G.config.img_resolution)
        result = {"snapshot": snap.name, "kimg": int(snap.name[4:]), **gan_quality(G, nets, n, seed, reference)}
        with open(run / "quality.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        _report(result, as_json)
    plot_gan_run(run, run / "curves.png")


@app.command("ship-gan")
def ship_gan_command(
    run: Path = typer.Option(..., help="A finished train-gan run folder (with quality.jsonl from gan-quality)."),
    name: str = typer.Option("synth64", help="Name of the shipped model (genfields/models/<name>/)."),
    command: str = typer.Option("scripts/train_synth64.sh", help="The training command, for the model card."),
) -> None:
    """Ship a run's final G_ema (float16) with samples, curves and a model card written from the run's files."""
    from genfields.evaluation.gan_card import ship_gan

    try:
        out = ship_gan(run, name, command)
    except (ValueError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    console.print(f"shipped {name} to {out}")


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        console.print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))


def _register_package_commands() -> None:
    """Commands whose code lives with the package they drive (synthface, perception, editing, evaluation)."""
    from genfields.downloads_cli import download
    from genfields.editing.cli import edit, evaluate, make_dataset, ship_editor, train_editor
    from genfields.evaluation.cli import reproduce
    from genfields.perception.cli import align, detect, train_perception
    from genfields.synthface.cli import synth_data

    app.command("make-dataset")(make_dataset)
    app.command("train-editor")(train_editor)
    app.command("edit")(edit)
    app.command("evaluate")(evaluate)
    app.command("ship-editor")(ship_editor)
    app.command("synth-data")(synth_data)
    app.command("train-perception")(train_perception)
    app.command("detect")(detect)
    app.command("align")(align)
    app.command("download")(download)
    app.command("reproduce")(reproduce)


_register_package_commands()


def main() -> None:
    try:
        app()
    except GenfieldsError as exc:
        exit_with_error(exc)


if __name__ == "__main__":
    main()
