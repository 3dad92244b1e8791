"""Typer commands `genfields train-perception`, `detect`, `align`, `fd-scale` and `train-realism-net` (registered by
the main app).

`python -m genfields.perception.cli ...` runs them standalone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from genfields.errors import (BATCH_2, IMAGES, IMAGES_2, MINUTES, POSITIVE, SEED, STEPS, ConfigError, GenfieldsError,
                              given_options, one_line_group, output_file, output_folder, ranged, threads_option)
from genfields.errors import exit_with_error as fail


def train_perception(
    ctx: typer.Context,
    net: str = typer.Option(..., "--net", help="Which network: lnd (landmarks+pose), id (identity), attr (attributes)."),
    out: Path = typer.Option(..., "--outdir", "--out", callback=output_folder,
                             help="Run folder (config, metrics.jsonl, checkpoint, final/)."),
    steps: int = typer.Option(6000, callback=STEPS, help="Training steps."),
    batch: int = typer.Option(64, callback=BATCH_2, help="Batch size (identity: pairs of views of batch/2 people)."),
    lr: float = typer.Option(3e-3, callback=POSITIVE, help="Peak AdamW learning rate."),
    ids: int = typer.Option(5000, callback=IMAGES, help="People in the training renders."),
    views: int = typer.Option(5, callback=ranged(1, 1000), help="Views per person in the training renders."),
    heldout_ids: int = typer.Option(400, callback=IMAGES, help="Unseen people in the held-out renders."),
    width: int = typer.Option(32, callback=ranged(1, 1024), help="Channels of the first CNN stage."),
    depth: int = typer.Option(2, callback=ranged(1, 64), help="Conv layers per CNN stage (the first one strides)."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the training renders, initial weights and batches."),
    threads: int = typer.Option(1, callback=threads_option, help="Intra-op threads (at most the CPU count)."),
    cache: Optional[Path] = typer.Option(None, help="Folder for the cached renders (default ~/.cache/genfields)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --outdir from its checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a folder that holds a run "
                                   "(deletes its checkpoint, metrics and final/)."),
    max_minutes: Optional[float] = typer.Option(None, callback=MINUTES,
                                                help="Stop (and checkpoint) after this many minutes."),
    as_json: bool = typer.Option(False, "--json", help="Print the held-out results as JSON."),
) -> None:
    """Train a synthetic-world perception network on renders; evaluate it and export it to OUT/final."""
    from .train import PerceptionTrainConfig
    from .train import train_perception as run_training

    try:
        cfg = PerceptionTrainConfig(net=net, steps=steps, batch=batch, lr=lr, ids=ids, views=views,
                                    heldout_ids=heldout_ids, width=width, depth=depth, seed=seed, threads=threads,
                                    cache=str(cache or ""))
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite contradict each other; choose one")
        kept = ("batch", "lr", "ids", "views", "heldout_ids", "width", "depth", "seed")  # a resumed run keeps these
        given = {name: (f"--{name.replace('_', '-')}", value) for name, value in given_options(ctx, kept).items()}
        trainer = run_training(cfg, out, resume=resume, max_minutes=max_minutes, progress=not as_json,
                               overwrite=overwrite, given=given if resume else None)
    except GenfieldsError as err:
        fail(err)
    done = trainer.step >= trainer.cfg.steps
    results = json.loads((out / "eval.json").read_text()) if done else {}
    if as_json:
        typer.echo(json.dumps({"step": trainer.step, "done": done, "results": results}))
    else:
        typer.echo(f"step {trainer.step}/{trainer.cfg.steps}" + (f"; held-out: {json.dumps(results)}" if done
                                                                   else "; rerun with --resume to continue"))


def detect(
    image: Path = typer.Argument(..., help="An RGB image of one face. The synth backend finds and aligns the face "
                                 "first (with dlib installed; see --no-align)."),
    backend: str = typer.Option("synth", help="synth (shipped synthetic-world networks), dlib (real photos) or "
                                              "3ddfa (real photos: dlib's box, 3DDFA_V2's pose)."),
    align: bool = typer.Option(True, "--align/--no-align", help="synth backend: find the face and align the photo "
                               "FFHQ-style first unless it is an aligned crop (--no-align: use the image as it is, "
                               "centre-cropped to a square)."),
    out: Optional[Path] = typer.Option(None, "--out", callback=output_file(".png", ".jpg", ".jpeg"),
                                       help="Write the image with landmarks and pose drawn on it."),
    as_json: bool = typer.Option(False, "--json", help="Print the detection as JSON."),
) -> None:
    """Landmarks, head pose and identity-embedding norm of a face image."""
    from .alignment import photo_for_generator
    from .detection import detect, detect_file, draw_detection

    note = ""
    try:
        if backend == "synth" and align:  # the synthetic networks expect an aligned crop: find the face first
            from .shipped import load_network

            img, note = photo_for_generator(image, None, native=load_network("synth_landmarks").config.input_res)
            found = detect(img, backend)
        else:
            img, found = detect_file(image, backend)
    except GenfieldsError as err:
        fail(err)
    if out is not None:
        from genfields.imageio import save_image

        save_image(draw_detection(img, found), out)
    if as_json:
        typer.echo(json.dumps({**found.to_dict(), **({"image": note} if note else {})}))
    else:
        if note:
            typer.echo(f"{image}: {note}")
        typer.echo(f"{image}: {found.summary()}" + (f"; wrote {out}" if out else ""))


def _aligned_output(ctx, param, value: Path) -> Path:
    """align --out: a .png file (one photo) or a folder, checked before any photo is read."""
    from genfields.imageio import IMAGE_SUFFIXES

    if value.suffix.lower() in IMAGE_SUFFIXES:
        return output_file(".png")(ctx, param, value)
    return output_folder(ctx, param, value)


def align(
    source: Path = typer.Argument(..., help="A photo, or a folder of photos (PNG, JPEG, BMP, WebP)."),
    out: Path = typer.Option(..., "--out", callback=_aligned_output,
                             help="Output: a .png file for one photo, else a folder (<name>.png each)."),
    size: int = typer.Option(256, callback=ranged(16, 4096),
                             help="Side of the aligned square (FFHQ: 1024; the paper's generator: 256)."),
) -> None:
    """Align in-the-wild photos FFHQ-style (dlib's 68 landmarks), so that they can serve as attribute images."""
    from .alignment import align_images

    try:
        written, failed = align_images(source, out, size)
    except GenfieldsError as err:
        fail(err)
    typer.echo(f"aligned {len(written)} photo(s) to {size}x{size} in {out if source.is_dir() else written[0]}")
    if failed:
        fail(GenfieldsError(f"{len(failed)} photo(s) not aligned: "
                            + "; ".join(f"{p.name}: {why}" for p, why in failed.items())))


def fd_scale(
    net: str = typer.Option("synth_attributes", help="A shipped attribute network name or its folder."),
    n: int = typer.Option(4096, callback=IMAGES_2, help="Renders to measure the per-feature std on."),
) -> None:
    """Measure and store the per-feature std that standardises FD features (fd_scale.safetensors)."""
    from .shipped import FD_SCALE_SEED, write_fd_scale

    try:
        path = write_fd_scale(net, n=n)
    except GenfieldsError as err:
        fail(err)
    typer.echo(f"wrote {path} ({n} renders of seed {FD_SCALE_SEED})")


def train_realism_net(
    out: Path = typer.Option(..., "--outdir", "--out", callback=output_folder, help="Run folder (final/ is written)."),
    steps: int = typer.Option(3000, callback=STEPS, help="Training steps (fresh renders each step)."),
    batch: int = typer.Option(64, callback=BATCH_2, help="Renders per step, each with a random artifact."),
    lr: float = typer.Option(2e-3, callback=POSITIVE, help="Peak AdamW learning rate (one-cycle schedule)."),
    heldout: int = typer.Option(256, callback=IMAGES, help="Held-out renders for the card's accuracy."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --outdir from its checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a folder that holds a run."),
    max_minutes: Optional[float] = typer.Option(None, callback=MINUTES,
                                                help="Stop (and checkpoint) after this many minutes."),
    as_json: bool = typer.Option(False, "--json", help="Print the held-out results as JSON."),
) -> None:
    """Train the independent realism network (an artifact classifier on renders; its features score FD and KID,
    it is never a loss or an input) and export it with its card to OUT/final."""
    from .realism_net import RealismTrainConfig, train_realism_network

    try:
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite contradict each other; choose one")
        cfg = RealismTrainConfig(steps=steps, batch=batch, lr=lr, heldout=heldout)
        final = train_realism_network(cfg, out, resume=resume, max_minutes=max_minutes, progress=not as_json,
                                      overwrite=overwrite,
                                      command=f"genfields train-realism-net --out {out} --steps {steps} --batch "
                                              f"{batch} --lr {lr}")
    except GenfieldsError as err:
        fail(err)
    if final is None:
        typer.echo(json.dumps({"done": False}) if as_json else "stopped and checkpointed; rerun with --resume")
        return
    results = json.loads((final / "config.json").read_text())["results"]
    typer.echo(json.dumps(results) if as_json else f"wrote {final}: held-out artifact accuracy "
                                                   f"{results['accuracy']:.3f} (card: {final / 'MODEL_CARD.md'})")


def _standalone() -> typer.Typer:
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      cls=one_line_group())
    app.command("train-perception")(train_perception)
    app.command("detect")(detect)
    app.command("align")(align)
    app.command("fd-scale")(fd_scale)
    app.command("train-realism-net")(train_realism_net)
    return app


if __name__ == "__main__":
    _standalone()()
