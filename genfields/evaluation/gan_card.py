"""Ship a trained GAN: its final G_ema as float16 safetensors, a sample grid, curves and a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from genfields.evaluation.plots import plot_gan_run, read_jsonl
from genfields.evaluation.quality_bar import gan_quality_bar, what_was_tried
from genfields.stylegan2.field_measurement import field_table
from genfields.imageio import make_grid, save_image
from genfields.models import MODELS_DIR
from genfields.stylegan2 import load_generator, save_generator
from genfields.stylegan2.network import seed_to_z

FIELDS_FILE = "fields.json"  # `genfields fields --model NAME --measure --json` at ship time


def ship_gan(run: str | Path, name: str, command: str, models_dir: Path = MODELS_DIR, notes: str = "",
             allow_below_bar: bool = False) -> Path:
    """Copy `run`'s final G_ema into `models_dir/name` (float16) with samples, curves and MODEL_CARD.md.

    The card's numbers are read from the run's config.json, status.json and quality.jsonl (write
    that with `genfields gan-quality --run RUN` first): nothing is typed in by hand. A run below
    the quality bar is refused unless `allow_below_bar`, and its card then says so at the top.
    `notes` (markdown: what was tried and why) goes into the card as written.
    """
    run = Path(run)
    status = json.loads((run / "status.json").read_text())
    if not status.get("done"):
        raise ValueError(f"{run} has not finished training ({status.get('images_seen', 0)} images seen)")
    quality = read_jsonl(run / "quality.jsonl")
    if not quality:
        raise ValueError(f"{run}: no quality.jsonl; run `genfields gan-quality --run {run}` first")
    failed = [c.describe() for c in gan_quality_bar(quality) if not c.passed]
    if failed and not allow_below_bar:
        raise ValueError(f"{run} is below the quality bar: {'; '.join(failed)}")
    G = load_generator(run / "final")
    out = save_generator(G, Path(models_dir) / name, dtype=torch.float16,
                         extra={"images_seen": str(status["images_seen"])})
    with torch.no_grad():
        grid = torch.cat([G(seed_to_z(s, G.z_dim)) for s in range(64)])
    save_image(make_grid(grid, cols=8), out / "samples.png")
    # the measured fields, stored with the weights: `demo` and `explore` show them without measuring
    (out / FIELDS_FILE).write_text(json.dumps(field_table(G.layout, G, measure=True), indent=1) + "\n")
    plot_gan_run(run, out / "curves.png")
    (out / "MODEL_CARD.md").write_text(model_card(name, run, status, quality, command, notes))
    shutil.copy(run / "config.json", out / "train_config.json")
    return out


def model_card(name: str, run: Path, status: dict, quality: list[dict], command: str, notes: str = "") -> str:
    cfg = json.loads((run / "config.json").read_text())
    last = quality[-1]
    rows = "\n".join(f"| {q['kimg']:g} | {q['fd']:.2f} | {q['fd_floor']:.2f} | {q['yaw_std_ratio']:.2f} | "
                     f"{q['pitch_std_ratio']:.2f} | {q['roll_std_ratio']:.2f} |" for q in quality)
    expr = ", ".join(f"{k.removesuffix('_std_ratio')} {v:.2f}" for k, v in last.items()
                     if k.endswith("_std_ratio") and not k.startswith(("yaw", "pitch", "roll")))
    changes = "; ".join(f"from {h['images_seen']:,} images: " + ", ".join(f"{k} = {v}" for k, v in h["set"].items())
                        for h in cfg.get("history", [])) or "none"
    checks = gan_quality_bar(quality)
    verdict = ("meets the quality bar" if all(c.passed for c in checks)
               else "**is below the quality bar** (shipped with `--allow-below-bar`)")
    bar = "\n".join(f"- {c.describe()}" for c in checks)
    tried = what_was_tried(notes)
    return f"""# {name}: StyleGAN2 trained on synthetic faces

This model {verdict}: every pose angle's std ratio within 0.7-1.3 and FD falling through training.

- **Architecture**: `{cfg['arch']}` (overrides: {cfg.get('generator') or 'none'}), G_ema stored as float16
  safetensors; loads with `genfields.load_generator("{name}")`.
- **Data**: synthetic faces rendered on the fly (`genfields.synthface`, seed {cfg['seed']}, pose
  distribution `{cfg['pose_dist']}`), {status['images_seen']:,} images seen.
- **Recipe**: batch {cfg['batch']}, Adam lr G {cfg['lr_g']} / D {cfg['lr_d']}, betas ({cfg['beta1']}, {cfg['beta2']}),
  R1 gamma {cfg['r1_gamma']} every {cfg['r1_interval']} steps, path-length weight {cfg['pl_weight']},
  style mixing {cfg['style_mixing']}, EMA {cfg['ema_kimg']} kimg, bfloat16 autocast {cfg['bf16']}
  (the values at the end of training).
- **Recipe changes during training** (`train-gan --resume --change`): {changes}
- **Command**: `{command}`
- **Quality** (`genfields gan-quality --run RUN --n {last['n']}`; FD in the synthetic feature network,
  not FID; the floor is FD between two disjoint render sets of the same size):

| kimg | FD | FD floor | yaw std ratio | pitch std ratio | roll std ratio |
|---|---|---|---|---|---|
{rows}

Expression coverage at the end (std ratio GAN / renders): {expr}.

Quality bar (`genfields.evaluation.quality_bar.gan_quality_bar`):
{bar}
{tried}
![samples](samples.png)

![curves](curves.png)
"""
