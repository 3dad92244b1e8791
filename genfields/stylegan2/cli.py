"""Typer commands of the generator (registered by `genfields.cli`): thin calls into `genfields.stylegan2`.

    genfields generate --model synth64 --seeds 0-63
    genfields info --model synth64
    torchrun --nproc_per_node=2 -m genfields train-gan --arch synth64 --max-minutes 120
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer

from genfields.errors import (BATCH, EVERY_KIMG, FINITE, KIMG, MINUTES, NON_NEGATIVE, POSITIVE, SEED, ConfigError,
                              check_free_space, check_output_folder, cli_console, given_options, output_folder,
                              parse_seeds, ranged)

console = cli_console()
NOISE_MODES = ("const", "random", "none")

MODEL_HELP = ("A shipped model name (e.g. synth64), random:<arch>[:seed] for random weights, or a path to an "
              "NVIDIA .pkl, a rosinality .pt, or a genfields checkpoint folder/.safetensors.")


GRID_BYTES_MAX = 2_000_000_000  # images `generate` keeps in memory for its grid


def generate(
    model: str = typer.Option(..., help=MODEL_HELP),
    seeds: str = typer.Option("0-7", help="Seeds, e.g. 0-7 or 1,5,9 (z = RandomState(seed).randn(1, z_dim))."),
    trunc: float = typer.Option(1.0, callback=FINITE, help="Truncation psi towards w_avg."),
    noise_mode: str = typer.Option("const", help="const | random | none."),
    outdir: Path = typer.Option(Path("runs/generate"), callback=output_folder, help="Output folder."),
    grid: bool = typer.Option(True, help="Also write grid.png with all seeds."),
    dtype: str = typer.Option("float32", help="Synthesis precision: float32, or bfloat16 (about twice as fast on a "
                              "CPU; its error against float32 is in docs/benchmarks.md)."),
) -> None:
    """Write seedNNNN.png and seedNNNN.npz (z, w, S) per seed, as the official generate.py seeds them."""
    from tqdm import tqdm

    from genfields.imageio import atomic_path, make_grid, save_image
    from genfields.stylegan2 import load_generator
    from genfields.stylegan2.network import SYNTHESIS_DTYPES, seed_to_z

    if dtype not in SYNTHESIS_DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(SYNTHESIS_DTYPES)}, got '{dtype}'")
    seed_list = parse_seeds(seeds)
    if noise_mode not in NOISE_MODES:
        raise ConfigError(f"--noise-mode must be one of {', '.join(NOISE_MODES)}, got '{noise_mode}'")
    G = load_generator(model)
    res = G.config.img_resolution
    per_seed = 2 * (3 * res * res + 4 * (G.z_dim + G.config.w_dim * G.num_ws + G.layout.dim))  # PNG, npz, grid share
    check_free_space(outdir, len(seed_list) * per_seed, f"--seeds {seeds} ({len(seed_list)} images)")
    grid_bytes = len(seed_list) * 3 * res * res * 4  # the images kept in memory for grid.png
    if grid and grid_bytes > GRID_BYTES_MAX:
        raise ConfigError(f"grid.png of {len(seed_list)} images at {res}x{res} would hold {grid_bytes / 1e9:.1f} GB in "
                          "memory; pass --no-grid, or fewer seeds")
    outdir.mkdir(parents=True, exist_ok=True)
    images = []
    with torch.no_grad():
        for s in tqdm(seed_list, desc="generate", unit="image", delay=1.0, leave=False):  # stderr, after a second
            z = seed_to_z(s, G.z_dim)
            w = G.mapping(z, truncation_psi=trunc)
            S = G.styles(w)
            img = G.synthesize(S, w=w, noise_mode=noise_mode, noise_generator=torch.Generator().manual_seed(s),
                               dtype=SYNTHESIS_DTYPES[dtype])
            save_image(img, outdir / f"seed{s:04d}.png")
            with atomic_path(outdir / f"seed{s:04d}.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, z=z.numpy(), w=w.numpy(), S=S.numpy())
            images.append(img)
    if grid:
        save_image(make_grid(torch.cat(images)), outdir / "grid.png")
    note = " (random weights: the images are noise)" if model.startswith("random:") else ""
    count = f"{len(seed_list)} image{'s' if len(seed_list) != 1 else ''}" + (" and grid.png" if grid else "")
    console.print(f"wrote {count} to {outdir}{note}")


def info(
    model: str = typer.Option(..., help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The generator's configuration, parameter counts and style-space layout."""
    from genfields.stylegan2 import load_generator

    G = load_generator(model)
    data = {"config": G.config.to_dict(), "parameters": G.parameter_counts(), "num_ws": G.num_ws,
            "s_dim": G.layout.dim, "layers": [{"name": lay.name, "s_index": lay.s_index, "official_name": lay.official_name,
                                               "channels": lay.channels, "offset": lay.offset} for lay in G.layout]}
    if as_json:
        print(json.dumps(data, indent=1))
        return
    console.print(f"[bold]{model}[/bold]: {G.config.img_resolution}x{G.config.img_resolution}, "
                  f"z_dim {G.config.z_dim}, w_dim {G.config.w_dim}, {G.config.mapping_layers} mapping layers, "
                  f"num_ws {G.num_ws}, conv_clamp {G.config.conv_clamp}")
    console.print("parameters: " + ", ".join(f"{k} {v:,}" for k, v in data["parameters"].items()))
    from rich.table import Table

    table = Table(title=f"Style space S ({G.layout.dim} dims)")
    for c in ("layer", "S layer", "official", "channels", "offset"):
        table.add_column(c, justify="right")
    for lay in G.layout:
        table.add_row(lay.name, f"s{lay.s_index}", lay.official_name, str(lay.channels), str(lay.offset))
    console.print(table)


def train_gan_command(
    ctx: typer.Context,
    arch: str = typer.Option("synth64", help="Generator architecture (paper256, synth64, tiny16, ...)."),
    outdir: Optional[Path] = typer.Option(None, callback=output_folder,
                                          help="Run folder (default runs/train-gan-<arch>-seed<seed>)."),
    kimg: Optional[float] = typer.Option(None, callback=KIMG, help="Total training length in thousands of "
                                         "real images shown (default 300; on --resume: the run's own)."),
    batch: int = typer.Option(32, callback=BATCH, help="Global batch size (split across torchrun processes)."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the weights, the data order and every random draw."),
    data: str = typer.Option("render", help="'render' (synthetic faces on the fly) or a synth-data folder."),
    r1_gamma: float = typer.Option(0.1, callback=NON_NEGATIVE, help="R1 regularisation weight."),
    lr: float = typer.Option(0.0025, callback=POSITIVE, help="Learning rate of G and D."),
    pl_weight: float = typer.Option(0.0, callback=NON_NEGATIVE, help="Path-length regularisation weight (0 = off; "
                                    "StyleGAN2 uses 2, every 4 steps on half the batch)."),
    lr_mapping_scale: float = typer.Option(1.0, callback=POSITIVE, help="Multiplies the mapping network's learning "
                                           "rate (on top of its 0.01 equalised-lr multiplier)."),
    mbstd_group: int = typer.Option(4, callback=BATCH, help="Minibatch-std group size of D."),
    mapping_layers: Optional[int] = typer.Option(None, callback=ranged(1, 64), help="Override the mapping depth."),
    bf16: bool = typer.Option(True, help="bfloat16 autocast for the main passes (CPU)."),
    sample_kimg: float = typer.Option(5.0, callback=EVERY_KIMG, help="Write a sample grid every this many kimg "
                                      "(0 = never)."),
    snapshot_kimg: float = typer.Option(25.0, callback=EVERY_KIMG, help="Write a G_ema snapshot every this many "
                                        "kimg (0 = never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --outdir from its checkpoint, exactly "
                                "(its stored configuration; only --kimg, --change and --max-minutes may differ)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a folder that holds a run, "
                                   "deleting its checkpoint, metrics, samples and snapshots."),
    max_minutes: Optional[float] = typer.Option(None, callback=MINUTES,
                                                help="Save and stop cleanly after this many minutes."),
    checkpoint_minutes: float = typer.Option(10.0, callback=MINUTES, help="Save a checkpoint every this many "
                                             "minutes (the first one after at most 2 minutes, so that a run killed "
                                             "early loses little; on --resume: --change checkpoint_minutes=N)."),
    change: Optional[list[str]] = typer.Option(None, help="With --resume: change the recipe from here on, e.g. "
                                               "--change r1_gamma=0.2 --change bf16=false (recorded in config.json's "
                                               "history; lr_g, lr_d, r1_gamma, pl_weight, style_mixing, ema_kimg, "
                                               "bf16, mbstd_group and the output intervals)."),
) -> None:
    """Train a StyleGAN2 generator on synthetic faces (resumable; multi-process with torchrun).

    Example: torchrun --nproc_per_node=2 -m genfields train-gan --arch synth64 --max-minutes 120
    """
    from genfields.stylegan2.train import GANTrainConfig, train_gan

    generator = {} if mapping_layers is None else {"mapping_layers": mapping_layers}
    cfg = GANTrainConfig(arch=arch, generator=generator, batch=batch, total_kimg=300.0 if kimg is None else kimg,
                         seed=seed, data=data, r1_gamma=r1_gamma, lr_g=lr, lr_d=lr, pl_weight=pl_weight, bf16=bf16,
                         lr_mapping_scale=lr_mapping_scale, mbstd_group=mbstd_group,
                         sample_kimg=sample_kimg, snapshot_kimg=snapshot_kimg, checkpoint_minutes=checkpoint_minutes)
    outdir = check_output_folder(outdir or Path(f"runs/train-gan-{arch}-seed{seed}"))
    changes = {}
    for item in change or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--change {item!r}: expected NAME=VALUE, e.g. r1_gamma=0.2")
        changes[key.strip()] = value.strip()
    keys = {"arch": "arch", "batch": "batch", "kimg": "total_kimg", "seed": "seed", "data": "data",
            "r1_gamma": "r1_gamma", "pl_weight": "pl_weight", "lr_mapping_scale": "lr_mapping_scale",
            "mbstd_group": "mbstd_group", "mapping_layers": "generator.mapping_layers",
            "bf16": "bf16", "sample_kimg": "sample_kimg", "snapshot_kimg": "snapshot_kimg",
            "checkpoint_minutes": "checkpoint_minutes"}
    given = {key: (f"--{name.replace('_', '-')}", value)
             for name, value in given_options(ctx, keys).items() for key in [keys[name]]}
    if "lr" in given_options(ctx, ["lr"]):
        given.update({"lr_g": ("--lr", lr), "lr_d": ("--lr", lr)})
    if overwrite and resume:
        raise ConfigError("--resume and --overwrite contradict each other; choose one")
    trainer = train_gan(cfg, outdir, resume=resume, max_minutes=max_minutes, changes=changes, overwrite=overwrite,
                        given=given)
    if trainer.dist.is_main:
        console.print(f"{outdir}: {trainer.images_seen / 1000:g} of {trainer.cfg.total_kimg:g} kimg")
    trainer.dist.close()
