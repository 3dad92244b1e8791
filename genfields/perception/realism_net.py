"""An independent realism instrument: features for FD and KID from a network trained only to see artifacts.

The report's FD features come from `synth_attributes` (E_attr), which the `paper` editor takes as input
and the W baseline fine-tunes: a number the method can learn to please. This network is another family:
- **task**: which artifact, if any, was applied to a render (`ARTIFACTS`: none, tear, ghost, patch swap,
  smear; the failure modes of editors with small fields, issue 30), not attributes, identity or pose;
- **architecture**: residual blocks with GroupNorm and SiLU and global average + max pooling (E_attr:
  conv-BN-ReLU `SmallCNN` with a fully connected layer over the 4x4 map);
- **data**: synthface renders from its own streams (`REALISM_TRAIN_SEED`, disjoint from every other set,
  `judges.check_disjoint`), drawn per step.
Its penultimate features (`ArtifactNet.forward`) are the feature array for `realism.fd` / `realism.kid`.

It is an instrument, never a loss or an input: its `config.json` says `"role": "realism"`, which
`load_network` refuses like a judge's, and the loaded module is marked so that `refuse_judges` (editor
construction, make-dataset) refuses it too. Only `load_realism_network` loads it.

    genfields train-realism-net --out runs/realism --steps 3000 [--max-minutes M] [--resume]   # -> runs/realism/final
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from genfields.errors import CheckpointError, ConfigError
from genfields.training import (RunFolder, StopWatch, load_module_tensors, load_optimizer_tensors, module_tensors,
                                optimizer_tensors, step_generator)

from .interfaces import FeatureNetwork, resize_input
from .roles import REALISM_ROLE

ARTIFACTS = ("none", "tear", "ghost", "patch_swap", "smear")
REALISM_TRAIN_SEED = 70_000  # synthface stream of its training renders (outside judges.RESERVED_STREAMS)
HELDOUT_SEED = 71_000
FORMAT = "genfields-realism-v1"


@dataclass(frozen=True)
class ArtifactNetConfig:
    """Architecture (saved in `config.json`)."""

    input_res: int = 64
    width: int = 24
    feature_dim: int = 128
    groups: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a skip; the first conv strides by `stride`."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(groups, cin), cin), nn.Conv2d(cin, cout, 3, stride, 1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class ArtifactNet(FeatureNetwork):
    """64x64 image -> `feature_dim` features (forward) -> artifact logits (`classify`)."""

    def __init__(self, config: ArtifactNetConfig = ArtifactNetConfig()):
        super().__init__()
        self.config, self.feature_dim, w = config, config.feature_dim, config.width
        self.stem = nn.Conv2d(3, w, 3, 1, 1)
        chans, blocks, cin = [w, 2 * w, 3 * w, 4 * w], [], w
        for c in chans:
            blocks.append(ResidualBlock(cin, c, 2, config.groups))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Sequential(nn.Linear(2 * cin, config.feature_dim), nn.SiLU())
        self.head = nn.Linear(config.feature_dim, len(ARTIFACTS))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(resize_input(images, self.config.input_res)))
        return self.project(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self(images))


# --- artifacts ----------------------------------------------------------------------------------------
def _randint(lo: int, hi: int, gen: torch.Generator) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def tear(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift a band of rows (or columns) sideways: a discontinuity through the face."""
    out, size = x.clone(), x.shape[-1]
    lo, width, shift = _randint(size // 4, size // 2, gen), _randint(size // 8, size // 3, gen), _randint(2, 6, gen)
    band = slice(lo, min(size, lo + width))
    if _randint(0, 1, gen):
        out[:, :, band, :] = torch.roll(x[:, :, band, :], shift, dims=-1)
    else:
        out[:, :, :, band] = torch.roll(x[:, :, :, band], shift, dims=-2)
    return out


def ghost(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blend the image with a shifted copy of itself: a doubled face."""
    alpha = 0.3 + 0.2 * float(torch.rand(1, generator=gen))
    return (1 - alpha) * x + alpha * torch.roll(x, (_randint(-6, 6, gen), _randint(3, 8, gen)), dims=(-2, -1))


def patch_swap(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Swap two square patches: parts of the face in the wrong place."""
    out, size = x.clone(), x.shape[-1]
    p = _randint(size // 6, size // 3, gen)
    (y1, x1), (y2, x2) = [(_randint(0, size - p, gen), _randint(0, size - p, gen)) for _ in range(2)]
    out[..., y1:y1 + p, x1:x1 + p] = x[..., y2:y2 + p, x2:x2 + p]
    out[..., y2:y2 + p, x2:x2 + p] = x[..., y1:y1 + p, x1:x1 + p]
    return out


def smear(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Repeat one row (or column) over the next few: a stretched, smeared stripe."""
    out, size = x.clone(), x.shape[-1]
    at, length = _randint(size // 4, 3 * size // 4, gen), _randint(3, size // 4, gen)
    end = min(size, at + length)
    if _randint(0, 1, gen):
        out[:, :, at:end, :] = x[:, :, at:at + 1, :]
    else:
        out[:, :, :, at:end] = x[:, :, :, at:at + 1]
    return out


CORRUPT = {"tear": tear, "ghost": ghost, "patch_swap": patch_swap, "smear": smear}


def corrupt(images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply artifact `ARTIFACTS[labels[i]]` to image i (label 0: unchanged)."""
    out = images.clone()
    for i, label in enumerate(labels.tolist()):
        if label:
            out[i:i + 1] = CORRUPT[ARTIFACTS[label]](images[i:i + 1], gen)
    return out


# --- training ------------------------------------------------------------------------------------------
@dataclass
class RealismTrainConfig:
    """One training run of the realism network."""

    steps: int = 3000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = REALISM_TRAIN_SEED
    res: int = 64
    heldout: int = 256
    width: int = 24
    feature_dim: int = 128

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "heldout", "width", "feature_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        from .data import ViewSetSpec
        from .judges import check_disjoint

        for seed in (self.seed, HELDOUT_SEED):  # its renders share no stream with any other set
            check_disjoint(ViewSetSpec(1, 2, seed, self.res, 0.0))


def labelled_batch(n: int, res: int, seed: int, start: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` renders of stream `seed` from index `start`, each with a random artifact, and the artifacts' labels."""
    from genfields.synthface import render_batch

    images = render_batch(n, res=res, seed=seed, start_index=start).images
    labels = torch.randint(0, len(ARTIFACTS), (n,), generator=gen)
    return corrupt(images, labels, gen), labels


def learning_rate(cfg: "RealismTrainConfig", step: int) -> float:
    """Linear warm-up over the first tenth of the steps, then cosine decay to zero."""
    warm = max(1, cfg.steps // 10)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))


def train_realism_network(cfg: RealismTrainConfig, out: str | Path, resume: bool = False,
                          max_minutes: float | None = None, progress: bool = True, command: str = "",
                          overwrite: bool = False) -> Path | None:
    """Train (or `resume`) the artifact classifier in the run folder `out` (config, metrics.jsonl, checkpoint);
    when every step is done, write `out/final/` (weights, config with its role, model card) and return it,
    else (stopped by `max_minutes` or a signal, checkpointed) None. Each step's renders and artifacts depend
    only on (seed, step), so a resumed run continues as an uninterrupted one would."""
    run = RunFolder(out)
    if not resume:
        run.start_fresh(overwrite, outputs=("final",))
        run.write_config(cfg)
    elif not run.has_checkpoint():
        raise ConfigError(f"--resume: no checkpoint in {out}")
    else:
        cfg = dataclasses.replace(RealismTrainConfig(**run.read_config()), steps=cfg.steps)
    torch.manual_seed(cfg.seed)
    net = ArtifactNet(ArtifactNetConfig(input_res=cfg.res, width=cfg.width, feature_dim=cfg.feature_dim))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    if resume:
        tensors, state = run.load_checkpoint()
        load_module_tensors("model", net, tensors)
        load_optimizer_tensors("opt", opt, tensors, state["opt"])
        step = int(state["step"])
        run.truncate_log("step", step)
    watch, losses = StopWatch(max_minutes), []
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train-realism-net", unit="step")
    while step < cfg.steps and not watch.should_stop():
        images, labels = labelled_batch(cfg.batch, cfg.res, cfg.seed, step * cfg.batch, step_generator(cfg.seed, step))
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        loss = F.cross_entropy(net.classify(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        bar.update(1)
        if step % 20 == 0 or step == cfg.steps:
            run.log({"step": step, "loss": round(sum(losses[-20:]) / len(losses[-20:]), 5),
                     "lr": learning_rate(cfg, step - 1), "time_s": round(watch.elapsed, 1)})
    bar.close()
    opt_tensors, opt_state = optimizer_tensors("opt", opt)
    run.save_checkpoint({**module_tensors("model", net), **opt_tensors}, {"step": step, "opt": opt_state})
    if step < cfg.steps:
        return None
    results = heldout_accuracy(net.eval(), cfg)
    results["final_loss"] = sum(losses[-20:]) / len(losses[-20:]) if losses else None
    return export_realism_network(net, Path(out) / "final", asdict(cfg), results, command)


@torch.no_grad()
def heldout_accuracy(net: ArtifactNet, cfg: RealismTrainConfig) -> dict:
    """Artifact accuracy on renders of `HELDOUT_SEED` (fixed artifacts), overall and per artifact."""
    images, labels = labelled_batch(cfg.heldout, cfg.res, HELDOUT_SEED, 0, torch.Generator().manual_seed(0))
    found = net.classify(images).argmax(dim=1)
    return {"heldout_images": cfg.heldout, "accuracy": float((found == labels).float().mean()),
            "accuracy_by_artifact": {name: float((found[labels == k] == k).float().mean()) if (labels == k).any()
                                     else None for k, name in enumerate(ARTIFACTS)}}


def export_realism_network(net: ArtifactNet, folder: Path, train: dict, results: dict, command: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": FORMAT})
    config = {"format": FORMAT, "role": REALISM_ROLE, "network": net.config.to_dict(), "train": train,
              "results": results, "command": command, "artifacts": list(ARTIFACTS)}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(realism_card(config))
    return folder


def realism_card(config: dict) -> str:
    """The realism network's model card."""
    net, train, res = config["network"], config["train"], config["results"]
    per = ", ".join(f"{k} {v:.2f}" for k, v in res["accuracy_by_artifact"].items() if v is not None)
    return f"""# Realism network (artifact classifier): an instrument, never a loss or an input

**Purpose.** Features for FD and KID (`genfields/perception/realism.py`) that no editor is trained
against or takes as input: the editors' own attribute network (E_attr, `synth_attributes`) scores them
today, which they can learn to please. `"role": "realism"` in `config.json`: `load_network` refuses it
as a loss network or input, like a judge; only `realism_net.load_realism_network` loads it.

- **Another family than E_attr**: task (which artifact was applied: {', '.join(config['artifacts'])}),
  architecture (residual GroupNorm-SiLU blocks, width {net['width']}, global average + max pooling to
  {net['feature_dim']} features; E_attr: conv-BN-ReLU with a fully connected layer over the 4x4 map) and data
  (synthface stream {train['seed']}, disjoint from every other set).
- **Training**: {train['steps']} steps of batch {train['batch']} (fresh renders each step, each with a random
  artifact), AdamW lr {train['lr']}, linear warm-up over a tenth of the steps, then cosine decay. Command: `{config.get('command') or 'genfields train-realism-net'}`
- **Held-out** ({res['heldout_images']} renders of stream {HELDOUT_SEED}): artifact accuracy {res['accuracy']:.3f}
  ({per}); chance {1 / len(config['artifacts']):.2f}.
- **Limits**: trained on renders and hand-made artifacts; what it says of GAN samples is what these artifacts
  teach it to see, so it measures artifacts of those kinds best.
"""


SHIPPED_NAME = "realism_artifacts"  # genfields/models/perception/<this>, once trained and shipped


def shipped_realism_network() -> ArtifactNet | None:
    """The shipped realism network, or None while none is shipped (the report then reads realism in the FD
    network's features and says so)."""
    from .shipped import PERCEPTION_DIR

    folder = PERCEPTION_DIR / SHIPPED_NAME
    return load_realism_network(folder) if (folder / "model.safetensors").is_file() else None


def load_realism_network(folder: str | Path) -> ArtifactNet:
    """The realism network of a folder (float32, eval mode, no gradients), marked as an instrument."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        if config.get("role") != REALISM_ROLE:
            raise ConfigError(f"{folder} is not a realism network (role {config.get('role')!r})")
        net = ArtifactNet(ArtifactNetConfig(**config["network"]))
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder}: cannot load the realism network ({exc})") from None
    net.is_judge = True  # `refuse_judges`: never a loss network or an input
    return net.eval().requires_grad_(False)
