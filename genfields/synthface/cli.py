"""Typer command ``genfields synth-data`` (registered by the main app); the work is in :mod:`dataset`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from genfields.errors import IMAGES, SEED, ConfigError, exit_with_error, output_folder, ranged

from .dataset import write_dataset

SHARD_BYTES_MAX = 4_000_000_000  # the rendered pixels of one shard, held in memory until it is written


def synth_data(
    out: Path = typer.Option(..., "--outdir", "--out", callback=output_folder,
                             help="Output directory (created; rerun the same command to resume)."),
    n: int = typer.Option(50000, "--n", callback=IMAGES, help="Number of faces."),
    res: int = typer.Option(64, "--res", callback=ranged(1, 4096), help="Image resolution in pixels."),
    seed: int = typer.Option(0, "--seed", callback=SEED, help="Random seed; the same seed gives the same dataset."),
    shard_size: int = typer.Option(1000, "--shard-size", callback=IMAGES, help="Faces per .npz shard."),
    pose_dist: str = typer.Option("ffhq", "--pose-dist", help="Pose distribution: ffhq, uniform or frontal."),
    supersample: int = typer.Option(2, "--supersample", callback=ranged(1, 16),
                                    help="Rays per pixel along each axis (anti-aliasing)."),
    workers: int = typer.Option(0, "--workers", callback=ranged(0, 1024),
                                help="Worker processes (0 = one per CPU core)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
) -> None:
    """Render a synthetic-face dataset: uint8 images plus exact labels (landmarks, pose, parameters)."""
    shard_bytes = min(shard_size, n) * 3 * res * res
    if shard_bytes > SHARD_BYTES_MAX:
        exit_with_error(ConfigError(f"a shard of {min(shard_size, n)} faces at {res}x{res} would hold "
                                    f"{shard_bytes / 1e9:.1f} GB in memory; lower --shard-size"))
    try:
        summary = write_dataset(out, n=n, res=res, seed=seed, shard_size=shard_size, pose_dist=pose_dist,
                                supersample=supersample, workers=workers or None, progress=not json_out)
    except ValueError as err:
        exit_with_error(err)
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(f"wrote {summary['n']} faces ({summary['rendered']} rendered, {summary['resumed']} already there) "
                   f"in {summary['shards']} shards to {summary['out']}")
