"""Typer commands of the editing pipeline (registered by `genfields.cli`): thin calls into the library.

    genfields make-dataset --preset synth64 --out data/edit-synth64
    genfields train-editor --preset synth64 --config paper --dataset data/edit-synth64
    genfields edit --model synth64 --identity-seed 7 --attribute face.png --out edit.png
    genfields evaluate --preset synth64 --pairs 1000 --seed 0 --json

Each takes `--device` (cpu, cuda, cuda:N, mps); make-dataset, train-editor and evaluate also
`--amp` (autocast for the synthesis; see genfields.devices).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer

from genfields.devices import AMP_HELP, DEVICE_HELP, resolve_device
from genfields.errors import (BATCH, FINITE, IMAGES, IMAGES_2, MINUTES, NON_NEGATIVE, POSITIVE, SEED, STEPS, STEPS_MAX,
                              ConfigError, check_memory, given_options, output_file, output_folder, ranged,
                              threads_option)
from genfields.imageio import atomic_write_text
from genfields.stylegan2.cli import MODEL_HELP

DEVICE_OPTION = typer.Option("cpu", "--device", help=DEVICE_HELP)
AMP_OPTION = typer.Option(False, "--amp", help=AMP_HELP + " Off by default.")
DATASET_ROW_FLOATS = 512  # at least what make-dataset records per image besides z (embedding, F_attr, landmarks, pose)


THREADS_OPTION = typer.Option(None, callback=threads_option, help="Intra-op threads (at most the CPU count).")


def _threads(n: Optional[int]) -> None:
    if n is not None:
        torch.set_num_threads(n)


def make_dataset(
    preset: str = typer.Option("synth64", help="Editing preset (synth64, tiny16, paper256, ffhq256)."),
    out: Path = typer.Option(..., "--outdir", "--out", callback=output_folder,
                             help="Output folder (dataset.json, data.safetensors, preview.png)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    identities: Optional[int] = typer.Option(None, callback=IMAGES,
                                             help="Identity images (default: the preset's; synth64 9000)."),
    attributes: Optional[int] = typer.Option(None, callback=IMAGES,
                                             help="Attribute images (default: the preset's; synth64 3000)."),
    truncation: float = typer.Option(1.0, callback=FINITE, help="Truncation psi of the generated set."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the recorded z."),
    threads: Optional[int] = THREADS_OPTION,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the dataset already in --outdir (editor runs "
                                   "that were trained on it resume on the new one)."),
    device: str = DEVICE_OPTION,
    amp: bool = AMP_OPTION,
) -> None:
    """Generate the editor's training set (z recorded, perception targets) and the S statistics."""
    from genfields.perception import load_perception
    from genfields.stylegan2 import load_generator

    from .dataset import DatasetConfig
    from .dataset import make_dataset as run
    from .presets import get_preset

    _threads(threads)
    dev = resolve_device(device)
    if (out / "dataset.json").exists() and not overwrite:
        raise ConfigError(f"{out} holds a dataset (dataset.json); choose another --outdir, or replace it with "
                          "--overwrite")
    p = get_preset(preset)
    if model is None:
        p.require(attribute_images=False)
    cfg = DatasetConfig(preset=p.name, generator=model or p.generator, perception=p.perception,
                        identities=identities or p.identities, attributes=attributes or p.attribute_images,
                        truncation=truncation, seed=seed, amp=amp)
    G = load_generator(cfg.generator, dev)
    rows = cfg.identities + cfg.attributes
    check_memory(rows * (G.z_dim + DATASET_ROW_FLOATS) * 4, f"--identities {cfg.identities} and --attributes "
                 f"{cfg.attributes} ({rows} records)")
    run(cfg, G, load_perception(cfg.perception, dev), out, device=dev, overwrite=overwrite)
    typer.echo(f"wrote {cfg.identities} identity and {cfg.attributes} attribute records with S statistics to {out}")


def train_editor(
    ctx: typer.Context,
    preset: str = typer.Option("synth64", help="Editing preset (synth64, tiny16, paper256)."),
    config: str = typer.Option("paper", help="default | no-concat | style-reg | paper (Table 2) | wspace (Table 1) | "
                               "paper+id | paper+ids (beyond the paper: M_ref also sees F_attr(I_id) or S_id)."),
    dataset: Optional[Path] = typer.Option(None, help="A make-dataset folder (required unless --resume)."),
    outdir: Optional[Path] = typer.Option(None, callback=output_folder,
                                          help="Run folder (default runs/train-editor-<preset>-<config>)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    steps: Optional[int] = typer.Option(None, callback=STEPS, help="Training steps (default: the preset's; on "
                                        "--resume: the run's own, or a new length recorded in its history)."),
    batch: int = typer.Option(6, callback=BATCH, help="Global batch (split across torchrun processes)."),
    lr_start: Optional[float] = typer.Option(None, callback=POSITIVE,
                                             help="Initial learning rate (default: the preset's)."),
    lr_end: Optional[float] = typer.Option(None, callback=POSITIVE,
                                           help="Final learning rate (default: the preset's)."),
    layers: Optional[str] = typer.Option(None, help="Control units by conv range, e.g. conv0-conv4."),
    gf: Optional[str] = typer.Option(None, help="Control units by generative field (Eq. 1), e.g. 43-506."),
    mask_mode: str = typer.Option("train", help="train: mask while training and editing; inference: editing only."),
    lambda_id: Optional[float] = typer.Option(None, callback=NON_NEGATIVE,
                                              help="lambda_1, weight of L_id (default: the preset's)."),
    lambda_attr: Optional[float] = typer.Option(None, callback=NON_NEGATIVE,
                                                help="lambda_2, weight of L_lnd + L_pose (default: the preset's)."),
    lambda_rec: Optional[float] = typer.Option(None, callback=NON_NEGATIVE,
                                               help="lambda_3, weight of L_rec (default: the preset's)."),
    style_reg: Optional[float] = typer.Option(None, callback=NON_NEGATIVE, help="Weight of the style regulariser "
                                              "-L(S) (configurations style-reg and paper only; default: the "
                                              "preset's)."),
    adversarial: Optional[float] = typer.Option(None, callback=NON_NEGATIVE, help="wspace: weight of the W "
                                                "discriminator's adversarial term (default: the preset's)."),
    lr_disc: Optional[float] = typer.Option(None, callback=POSITIVE,
                                            help="wspace: learning rate of the W discriminator (default 1e-4)."),
    train_attributes: Optional[bool] = typer.Option(None, "--train-attributes/--frozen-attributes",
                                                    help="Train a copy of E_attr with the network (IDDISEN does; the "
                                                    "default of wspace) or keep E_attr frozen (the default of the "
                                                    "style configurations)."),
    init: Optional[str] = typer.Option(None, help="Start from this trained editor (shipped name or folder) instead "
                                       "of from zero: a fine-tune, e.g. with other loss weights."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the weights and every batch."),
    sample_every: int = typer.Option(500, callback=ranged(0, STEPS_MAX),
                                     help="Write a sample grid every this many steps (0 = never)."),
    threads: Optional[int] = THREADS_OPTION,
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --outdir exactly (its own config; "
                                "only --steps, --max-minutes, --threads and --device may differ)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a folder that holds a run, deleting "
                                   "its checkpoint, metrics, samples and final editor."),
    max_minutes: Optional[float] = typer.Option(None, callback=MINUTES,
                                                help="Save and stop cleanly after this many minutes."),
    checkpoint_minutes: float = typer.Option(10.0, callback=MINUTES, help="Save a checkpoint every this many "
                                             "minutes (the first one after at most 2 minutes, so that a run killed "
                                             "early loses little)."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP + " A run may resume on another device."),
    amp: bool = typer.Option(False, "--amp", help=AMP_HELP + " Off by default; recorded in the run's config "
                             "(a resumed run keeps its setting)."),
) -> None:
    """Train M_ref (or the W-space baseline) on a generated set; the final editor goes to OUTDIR/final."""
    import dataclasses

    from .presets import get_preset
    from .trainer import train_editor as run

    _threads(threads)
    dev = resolve_device(device)
    if overwrite and resume:
        raise ConfigError("--resume and --overwrite contradict each other; choose one")
    keys = {"preset": "preset", "config": "config_name", "dataset": "dataset", "model": "generator",
            "batch": "batch", "lr_start": "lr_start", "lr_end": "lr_end", "layers": "model.layers", "gf": "model.gf",
            "mask_mode": "model.mask_mode", "lambda_id": "loss.identity", "lambda_attr": "loss.attribute",
            "lambda_rec": "loss.reconstruction", "style_reg": "loss.style_reg", "init": "init", "seed": "seed",
            "sample_every": "sample_every", "amp": "amp", "adversarial": "loss.adversarial", "lr_disc": "lr_disc",
            "train_attributes": "model.train_attributes", "checkpoint_minutes": "checkpoint_minutes"}
    given = {keys[name]: (f"--{name.replace('_', '-')}", str(value) if isinstance(value, Path) else value)
             for name, value in given_options(ctx, keys).items()}
    cfg = None
    if not resume:
        if model is None:
            get_preset(preset).require(attribute_images=sample_every > 0)
        cfg = get_preset(preset).train_config(config, generator=model, dataset=str(dataset) if dataset else None,
                                              batch=batch, lr_start=lr_start, lr_end=lr_end, seed=seed,
                                              sample_every=sample_every, amp=amp, init=init, lr_disc=lr_disc)
        model_changes = {"layers": layers, "gf": gf, "mask_mode": mask_mode}
        if train_attributes is not None:
            model_changes["train_attributes"] = train_attributes
        cfg.model = dataclasses.replace(cfg.model, **model_changes)
        cfg.loss = override_loss_weights(cfg.loss, config, lambda_id, lambda_attr, lambda_rec, style_reg, adversarial)
        cfg.checkpoint_minutes = checkpoint_minutes
    outdir = outdir or Path(f"runs/train-editor-{preset}-{config}")
    trainer = run(cfg, outdir, resume=resume, steps=steps, max_minutes=max_minutes, device=dev, overwrite=overwrite,
                  given=given if resume else None)
    if trainer.dist.is_main:
        done = trainer.step >= trainer.cfg.steps
        typer.echo(f"{outdir}: step {trainer.step}/{trainer.cfg.steps}"
                   + (f"; editor in {outdir / 'final'}" if done else "; rerun with --resume to continue"))
    trainer.dist.close()


def override_loss_weights(loss, config: str, lambda_id: Optional[float], lambda_attr: Optional[float],
                          lambda_rec: Optional[float], style_reg: Optional[float], adversarial: Optional[float] = None):
    """The configuration's LossConfig with the weights given on the command line (None: keep)."""
    import dataclasses

    if style_reg is not None and loss.style_reg == 0:
        raise ConfigError(f"--style-reg: configuration '{config}' has no style regulariser (use style-reg or paper)")
    if adversarial is not None and loss.adversarial == 0:
        raise ConfigError(f"--adversarial: configuration '{config}' has no adversarial term (use wspace)")
    given = {"identity": lambda_id, "attribute": lambda_attr, "reconstruction": lambda_rec, "style_reg": style_reg,
             "adversarial": adversarial}
    for name, value in given.items():
        if value is not None and not (value >= 0 and np.isfinite(value)):
            raise ConfigError(f"loss weight {name} must be a finite number >= 0, got {value}")
    return dataclasses.replace(loss, **{k: v for k, v in given.items() if v is not None})


def read_z(path: Path, z_dim: int) -> torch.Tensor:
    """z [1, z_dim] from a .npy or a .npz with key `z` (as `genfields generate` writes)."""
    try:
        data = np.load(path)
        z = data["z"] if isinstance(data, np.lib.npyio.NpzFile) else data
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: cannot read z (a .npy, or a .npz with key 'z': {exc})") from None
    z = np.asarray(z, dtype=np.float32).reshape(-1)
    if z.shape[0] != z_dim:
        raise ConfigError(f"{path}: z must hold {z_dim} numbers, got {z.shape[0]}")
    if not np.isfinite(z).all():
        raise ConfigError(f"{path}: z holds {int((~np.isfinite(z)).sum())} NaN or infinite values; all {z_dim} "
                          "must be finite")
    return torch.from_numpy(z)[None]


def edit(
    attribute: Path = typer.Option(..., help="Attribute image: a photo with one face (found, and aligned FFHQ-style "
                                   "when dlib is installed and it is not an aligned crop yet) or an aligned square "
                                   "face; resized to the generator's resolution."),
    align: bool = typer.Option(True, "--align/--no-align", help="Find and align the face in --attribute first "
                               "(--no-align: use the image as it is; it must be square)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP + " Default: the preset's generator, else synth64."),
    preset: Optional[str] = typer.Option(None, help="Editing preset whose generator and downloads to use (e.g. ffhq256)."),
    editor: Optional[str] = typer.Option(None, help="Shipped editor name or folder (default: the --model name)."),
    identity_seed: Optional[int] = typer.Option(None, callback=SEED, help="Identity z = RandomState(seed).randn(1, z_dim)."),
    identity_z: Optional[Path] = typer.Option(None, help="Identity z from a .npy or .npz (key z)."),
    identity: Optional[Path] = typer.Option(None, help="Identity from your own face: an inversion file "
                                            "(`genfields invert`) or a photo, inverted here with invert's defaults "
                                            "(cached by the photo, the generator and the settings)."),
    layers: Optional[str] = typer.Option(None, help="Apply dS only to these conv layers, e.g. conv0-conv4."),
    gf: Optional[str] = typer.Option(None, help="Apply dS only to layers with these generative fields, e.g. 43-506."),
    out: Path = typer.Option(Path("edit.png"), "--out", callback=output_file(".png", ".jpg", ".jpeg"),
                             help="I_out (.png, or .jpg for JPEG); the panel goes beside it as <name>_panel.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    device: str = DEVICE_OPTION,
) -> None:
    """Give a generated identity the head pose and expression of an attribute image."""
    from genfields.imageio import save_image
    from genfields.perception.alignment import photo_for_generator
    from genfields.stylegan2 import seed_to_z

    from .editor import load_editor
    from .evaluate import result_metrics
    from .panel import edit_panel

    if sum(x is not None for x in (identity_seed, identity_z, identity)) != 1:
        raise ConfigError("give exactly one of --identity-seed, --identity-z or --identity")
    dev = resolve_device(device)
    if preset is not None:
        from .presets import get_preset

        p = get_preset(preset)
        if model is None:
            model = p.generator
            p.require(attribute_images=False)
    model = model or "synth64"
    ed = load_editor(editor or model, model=model, device=dev)
    photo, note = photo_for_generator(attribute, ed.G.config.img_resolution, align=align)
    if identity is not None:
        inversion = identity_inversion(identity, ed.G, align)
        result = ed.edit_prepared(ed.prepare_codes(*inversion.codes(), photo), layers=layers, gf=gf).cpu()
    else:
        z = seed_to_z(identity_seed, ed.G.z_dim) if identity_z is None else read_z(identity_z, ed.G.z_dim)
        result = ed.edit(z, photo, layers=layers, gf=gf).cpu()
    metrics = {side: {k: float(v[0]) for k, v in m.items()} for side, m in result_metrics(result).items()}
    panel = out.with_name(out.stem + "_panel.png")
    save_image(result.image, out)
    m = metrics["method"]
    save_image(edit_panel(result, captions=("identity", "attribute", f"output id {m['identity']:.2f}")), panel)
    if as_json:
        typer.echo(json.dumps({"output": str(out), "panel": str(panel), "attribute": note, **metrics}))
    else:
        typer.echo(f"attribute {attribute}: {note}")
        typer.echo(f"wrote {out} and {panel}: identity similarity {m['identity']:.3f}, landmark distance "
                   f"{m['expression']:.4f} (unedited {metrics['unedited']['expression']:.4f}), pose MSE "
                   f"{m['pose']:.2f} deg^2 (unedited {metrics['unedited']['pose']:.2f})")


def identity_inversion(path: Path, G, align: bool):
    """`edit --identity`: an inversion file made with G, or a photo inverted with invert's defaults (cached)."""
    from genfields.perception import load_perception
    from genfields.perception.alignment import photo_for_generator

    from .inversion import InversionConfig, cached_inversion_path, invert, load_inversion, save_inversion

    if path.suffix == ".safetensors":
        return load_inversion(path, G)
    photo, _ = photo_for_generator(path, G.config.img_resolution, align=align)
    cfg = InversionConfig()
    cached = cached_inversion_path(photo, G, cfg)
    if cached.is_file():
        return load_inversion(cached, G)
    inversion = invert(G, load_perception("synth"), photo, cfg)
    inversion.meta.update(source=str(path))
    save_inversion(inversion, cached)
    return inversion


def evaluate(
    preset: str = typer.Option("synth64", help="Editing preset: its attribute images and real set."),
    editor: Optional[str] = typer.Option(None, help="Shipped editor name or folder (default: the preset name)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    pairs: int = typer.Option(1000, callback=IMAGES_2, help="Identity/attribute pairs (FD needs at least 2)."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the identities and of the attribute renders."),
    batch: int = typer.Option(50, callback=BATCH, help="Pairs per batch."),
    layers: Optional[str] = typer.Option(None, help="Apply dS only to these conv layers."),
    gf: Optional[str] = typer.Option(None, help="Apply dS only to layers with these generative fields."),
    threads: Optional[int] = THREADS_OPTION,
    out: Optional[Path] = typer.Option(None, "--out", callback=output_file(".json"),
                                       help="Also write the results as JSON here (checked before the work starts), "
                                       "and every per-pair value beside it in <stem>.pairs.npz."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    judges: Optional[bool] = typer.Option(None, "--judges/--no-judges", help="Score with the judges (networks "
                                          "nothing is trained against) and report the loss networks' scores as "
                                          "*_loss_net; --no-judges: the loss networks only. Default: judges when the "
                                          "perception preset has them (synth)."),
    per_pair_steps: int = typer.Option(0, callback=ranged(0, STEPS_MAX), help="Score the per-pair optimum instead "
                                       "of the "
                                       "editor: dS optimised "
                                       "for each pair from zero by this many Adam steps with the editor's losses "
                                       "(beyond the paper; slow). 0: the editor itself."),
    per_pair_store: Optional[Path] = typer.Option(None, help="With --per-pair-steps: keep each pair's optimum in "
                                                  "this .safetensors file, rewritten after every batch; a rerun "
                                                  "resumes from it, and `genfields reproduce` reads the shipped one "
                                                  "(genfields/models/editing/<editor>/pair_optimum.safetensors)."),
    identities: Optional[Path] = typer.Option(None, help="Identities from a folder of inversion files (`genfields "
                                              "invert`, made with this generator) instead of seeds: pair i edits "
                                              "the i-th file by name; --pairs at most the number of files."),
    pose_judge: Optional[str] = typer.Option(None, help="The pose judge beside the synthetic one (a name registered "
                                             "in genfields.perception.judges.POSE_JUDGES): adds pose_<name>. Default "
                                             "with judges: 3ddfa, the real 3DDFA_V2, read first; 'none': no extra "
                                             "pose judge."),
    device: str = DEVICE_OPTION,
    amp: bool = typer.Option(False, "--amp", help=AMP_HELP + " The FD features always run in float32. Off by "
                             "default."),
) -> None:
    """Identity, expression, pose and FD of edits, and of the unedited identities as a baseline; by the judges
    and by the loss networks, with the pose-leak regression (b_attr, b_id per angle)."""
    from genfields.perception.judges import PRIMARY_POSE_JUDGE, judges_available, load_judges
    from genfields.perception.realism_net import shipped_realism_network

    from .editor import load_editor
    from .evaluate import evaluate_pairs, pairs_path
    from .presets import get_preset

    _threads(threads)
    if pairs < 2:
        raise ConfigError("--pairs must be at least 2 (FD needs a covariance)")
    dev = resolve_device(device)
    p = get_preset(preset)
    if model is None:
        p.require()
    if per_pair_store is not None and not per_pair_steps:
        raise ConfigError("--per-pair-store keeps the per-pair optima: give --per-pair-steps too")
    if per_pair_store is not None and per_pair_store.suffix != ".safetensors":
        raise ConfigError(f"--per-pair-store: give a .safetensors file, got {per_pair_store}")
    ed = load_editor(editor or preset, model=model, device=dev, amp=amp)
    if per_pair_steps:
        from .pair_optimum import PairOptimumConfig, PairOptimumEditor, SolvedPairs

        ed = PairOptimumEditor(ed, PairOptimumConfig(steps=per_pair_steps))
        if per_pair_store is not None:
            key = ed.store_key(p.name, seed, layers, gf)
            ed.solved = (SolvedPairs.load(per_pair_store, key) if per_pair_store.is_file()
                         else SolvedPairs.empty(key, per_pair_store))
    perception = ed.meta.get("perception", p.perception)
    use_judges = (judges_available(perception) or pose_judge not in (None, "none")) if judges is None else judges
    pose_name = PRIMARY_POSE_JUDGE if pose_judge is None else (None if pose_judge == "none" else pose_judge)
    referees = load_judges(perception, dev, pose_name) if use_judges else None
    realism_net = shipped_realism_network() if use_judges and perception == "synth" else None
    codes = None
    if identities is not None:
        from .inversion import inverted_identities

        w_plus, S, _ = inverted_identities(identities, ed.G)
        codes = (w_plus, S)
    results, values = evaluate_pairs(ed, p, pairs, seed, batch, layers, gf, progress=not as_json, judges=referees,
                                     realism_net=realism_net, identities=codes)
    results["intervals"] = values.intervals(seed=seed)
    if out is not None:  # with how it was measured, and every per-pair value beside it
        values.meta |= {"editor": editor or preset, "layers": layers, "gf": gf, "per_pair_steps": per_pair_steps}
        values.save(pairs_path(out))
        atomic_write_text(out, json.dumps({**results, "pairs": pairs, "seed": seed,
                                           "pairs_file": pairs_path(out).name}, indent=1) + "\n")
    if as_json:
        typer.echo(json.dumps(results))
        return
    for side in ("method", "unedited"):
        r, ci = results[side], results["intervals"][side]
        line = (f"{side:9s} identity {r['identity']:.3f}  expression {r['expression']:.4f}  pose {r['pose']:.2f}  "
                f"FD {r['fd']:.2f} [{ci['fd']['lo']:.2f}, {ci['fd']['hi']:.2f}]  KID {r['kid']:.4f}")
        if "fd_realism" in r:
            line += f"  realism net: FD {r['fd_realism']:.2f}  KID {r['kid_realism']:.4f}"
        line += "".join(f"  pose {k[5:]} {r[k]:.2f}" for k in r if k.startswith("pose_") and k != "pose_loss_net")
        if "identity_loss_net" in r:
            line += (f"  | loss nets: identity {r['identity_loss_net']:.3f}  expression "
                     f"{r['expression_loss_net']:.4f}  pose {r['pose_loss_net']:.2f}")
        if "pose_leak" in results:
            leak = results["pose_leak"][side]
            line += "  | b_id " + "/".join(f"{leak[a]['b_id']:.2f}" for a in ("yaw", "pitch", "roll"))
        if "landmark_disagreement" in r:
            line += f"  | landmarks judge vs loss net {r['landmark_disagreement']:.4f}"
        typer.echo(line)
    if "tearing" in results["method"]:
        typer.echo(f"tearing (landmark disagreement of the outputs minus the unedited images'): "
                   f"{results['method']['tearing']:+.4f}; on the attribute images "
                   f"{results['landmark_disagreement_attribute']:.4f}")
    typer.echo(f"judged by: {results['judged_by']}; [lo, hi]: 95% bootstrap intervals (pairs resampled), every "
               f"interval in --json's `intervals`" + (f"; per-pair values in {pairs_path(out)}" if out else ""))


def invert(
    images: list[Path] = typer.Argument(..., help="Photos (one face each: found and aligned FFHQ-style as `edit` does) "
                                        "or aligned square face crops."),
    model: str = typer.Option("synth64", help=MODEL_HELP),
    outdir: Path = typer.Option(Path("runs/invert"), callback=output_folder,
                                help="Writes <name>.safetensors (w, w+, S, settings, the generator's digest) and "
                                "<name>.png (the reconstruction) per image."),
    space: str = typer.Option("s", help="The last stage: w (NVIDIA's projector's space), wplus, or s (W -> W+ -> S)."),
    steps: int = typer.Option(300, callback=STEPS, help="Adam steps in all, shared among the stages."),
    align: bool = typer.Option(True, "--align/--no-align", help="Find and align the face first (--no-align: the "
                               "image is used as it is; it must be square)."),
    perceptual: float = typer.Option(0.0, callback=NON_NEGATIVE, help="Weight of the perceptual term (the landmark "
                                     "loss network's stages; off by default, see docs/inversion.md)."),
    identity_weight: float = typer.Option(0.0, "--identity-weight", callback=NON_NEGATIVE,
                                          help="Weight of the identity loss network's term (off by default)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per image with its reconstruction measures."),
) -> None:
    """Invert photos into a generator's W, W+ and S, so that they can be edited (`edit --identity FILE`)."""
    import time

    from tqdm import tqdm

    from genfields.imageio import save_image
    from genfields.perception import load_judges, load_perception
    from genfields.perception.alignment import photo_for_generator
    from genfields.perception.judges import judges_available
    from genfields.stylegan2 import load_generator

    from .inversion import (STATS_SAMPLES, STATS_SEED, InversionConfig, reconstruct, reconstruction_measures,
                            save_inversion)
    from .inversion import invert as invert_image
    from .regularizer import mapped_statistics

    cfg = InversionConfig(space=space, steps=steps, perceptual=perceptual, identity=identity_weight)
    names = [p.stem for p in images]
    clashing = sorted({n for n in names if names.count(n) > 1})
    if clashing:
        raise ConfigError(f"two inputs would write {clashing[0]}.safetensors: give photos with different names")
    G = load_generator(model)
    photos = [photo_for_generator(p, G.config.img_resolution, align=align) for p in images]  # refuse bad inputs first
    nets = load_perception("synth")
    judges = load_judges("synth") if judges_available("synth") else None
    stats = mapped_statistics(G, STATS_SAMPLES, STATS_SEED)
    outdir.mkdir(parents=True, exist_ok=True)
    for path, (photo, note) in zip(images, photos):
        start = time.monotonic()
        with tqdm(total=steps, desc=path.name, unit="step", disable=as_json, leave=False) as bar:
            inversion = invert_image(G, nets, photo, cfg, stats, progress=lambda parts: bar.update(1))
        inversion.meta.update(source=str(path), model=model, alignment=note)
        save_inversion(inversion, outdir / f"{path.stem}.safetensors")
        image = reconstruct(G, inversion)
        save_image(image, outdir / f"{path.stem}.png")
        measures = {**reconstruction_measures(photo, image, judges), "seconds": round(time.monotonic() - start, 2)}
        if as_json:
            typer.echo(json.dumps({"image": str(path), "inversion": str(outdir / f"{path.stem}.safetensors"),
                                   "space": space, **measures}))
        else:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in measures.items())
            typer.echo(f"{path}: {note}; wrote {outdir / path.stem}.safetensors and .png ({shown})")
