"""Training the synthetic perception networks (`genfields train-perception --net lnd|id|attr`).

Data are cached renders (`data.py`); each step draws its batch indices and augmentations from
`step_generator(seed, step)`, so `--resume` continues exactly as an uninterrupted run would.
AdamW with linear warm-up and cosine decay; bfloat16 autocast for the convolutions. At the end
the run is evaluated on held-out people (clean and degraded) and exported as float16 weights
with a config and a model card in `<out>/final/`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from genfields.errors import ConfigError, dataclass_from_dict
from genfields.training import (CheckpointClock, RunFolder, StopWatch, check_resume_options, load_module_tensors,
                                load_optimizer_tensors, module_tensors, optimizer_tensors, step_generator)

from .augment import degrade
from .data import FACE_CODES, ViewSet, ViewSetSpec, load_view_set
from .evaluate import evaluate_network
from .networks import KINDS, NetConfig, build_network, encode_attributes, encode_landmarks_pose
from .shipped import export_network

ALIASES = {"lnd": "landmarks", "pose": "landmarks", "id": "identity", "attr": "attributes"}


@dataclass
class PerceptionTrainConfig:
    """Hyper-parameters of one perception run (saved as the run's config.json)."""

    net: str = "landmarks"
    ids: int = 5000
    views: int = 5
    seed: int = 0
    res: int = 64
    uniform_pose_share: float = 0.3
    heldout_ids: int = 400
    heldout_views: int = 4
    heldout_seed: int = 10_000
    batch: int = 64
    steps: int = 6000
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    width: int = 32
    depth: int = 2
    feature_dim: int = 256
    embedding_dim: int = 128
    augment_p: float = 0.4
    temperature: float = 0.1
    probe_weight: float = 1.0
    bf16: bool = True
    threads: int = 1
    cache: str = ""
    log_steps: int = 20
    checkpoint_minutes: float = 5.0

    def __post_init__(self):
        self.net = ALIASES.get(self.net, self.net)
        if self.net not in KINDS:
            raise ConfigError(f"--net must be one of lnd, id, attr ({', '.join(KINDS)}), got '{self.net}'")
        if self.depth < 1:
            raise ConfigError(f"--depth must be >= 1, got {self.depth}")
        if self.views < 2 and self.net == "identity":
            raise ConfigError("the identity network needs at least 2 views per person")

    def net_config(self) -> NetConfig:
        return NetConfig(kind=self.net, input_res=self.res, width=self.width, depth=self.depth, feature_dim=self.feature_dim,
                         embedding_dim=self.embedding_dim)

    def train_spec(self) -> ViewSetSpec:
        return ViewSetSpec(self.ids, self.views, self.seed, self.res, self.uniform_pose_share)

    def heldout_spec(self) -> ViewSetSpec:
        return ViewSetSpec(self.heldout_ids, self.heldout_views, self.heldout_seed, self.res, self.uniform_pose_share)

    @classmethod
    def from_dict(cls, d: dict) -> "PerceptionTrainConfig":
        return dataclass_from_dict(cls, d, "perception training config", strict=False)


def pair_indices(views: int, people: int, total_people: int, gen: torch.Generator) -> torch.Tensor:
    """2 x `people` sample indices: two different views of each of `people` random people."""
    who = torch.randperm(total_people, generator=gen)[:people]
    first = torch.randint(0, views, (people,), generator=gen)
    second = (first + torch.randint(1, views, (people,), generator=gen)) % views
    return torch.cat([who * views + first, who * views + second])


def info_nce(emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Contrastive loss over 2P unit embeddings where rows i and i + P show the same person."""
    p = emb.shape[0] // 2
    logits = emb @ emb.T / temperature
    logits = logits.masked_fill(torch.eye(2 * p, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(p, 2 * p), torch.arange(p)])
    return F.cross_entropy(logits, target)


class PerceptionTrainer:
    """Model, optimiser and step counter of one run; `train_step`, `state`, `load_state`."""

    def __init__(self, cfg: PerceptionTrainConfig, data: ViewSet):
        self.cfg, self.data = cfg, data
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            self.model = build_network(cfg.net_config()).to(memory_format=torch.channels_last).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step = 0

    def learning_rate(self) -> float:
        cfg, s = self.cfg, self.step
        if s < cfg.warmup:
            return cfg.lr * (s + 1) / cfg.warmup
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, (s - cfg.warmup) / max(1, cfg.steps - cfg.warmup))))

    def sample(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if cfg.net == "identity":
            index = pair_indices(cfg.views, cfg.batch // 2, len(self.data) // cfg.views, gen)
        else:
            index = torch.randint(0, len(self.data), (cfg.batch,), generator=gen)
        batch = self.data.batch(index)
        batch["images"] = degrade(batch["images"], gen, p=cfg.augment_p).contiguous(memory_format=torch.channels_last)
        return batch

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        cfg, model, res = self.cfg, self.model, self.cfg.res
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            if cfg.net == "identity":
                emb = model(batch["images"]).float()
                nce = info_nce(emb, cfg.temperature)
                probe = F.mse_loss(model.probe(emb), batch["identity"][:, list(FACE_CODES)])
                return nce + cfg.probe_weight * probe, {"nce": nce.item(), "probe": probe.item()}
            out = model.raw(batch["images"]).float()
        if cfg.net == "landmarks":
            target = encode_landmarks_pose(batch["landmarks"], batch["pose"], res)
            lm, pose = (out - target).abs().split([target.shape[1] - 3, 3], dim=1)
            return lm.mean() + pose.mean(), {"lnd_px": lm.mean().item() * res / 2, "pose_deg": pose.mean().item() * 30}
        target = encode_attributes(batch["identity"], batch["expression"], batch["pose"], batch["light"],
                                   batch["landmarks"], res)
        loss = (out - target).abs().mean()
        return loss, {"l1": loss.item()}

    def train_step(self) -> dict:
        gen = step_generator(self.cfg.seed, self.step)
        batch = self.sample(gen)
        for group in self.opt.param_groups:
            group["lr"] = self.learning_rate()
        loss, stats = self.loss(batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"loss": loss.item(), **stats}

    def state(self) -> tuple[dict, dict]:
        tensors, meta = optimizer_tensors("opt", self.opt)
        tensors.update(module_tensors("model", self.model))
        return tensors, {"step": self.step, "opt": meta}

    def load_state(self, tensors: dict, state: dict) -> None:
        load_module_tensors("model", self.model, tensors)
        load_optimizer_tensors("opt", self.opt, tensors, state["opt"])
        self.step = int(state["step"])


def train_perception(cfg: PerceptionTrainConfig, outdir: str | Path, resume: bool = False,
                     max_minutes: float | None = None, progress: bool = True,
                     overwrite: bool = False, given: dict | None = None) -> PerceptionTrainer:
    """Train (or resume) a run in `outdir`; when all steps are done, evaluate and export to `outdir/final`.

    A new run refuses a folder that holds one unless `overwrite` (which clears it). On resume,
    `given` (config key -> (option, value) the user typed) must agree with the stored config."""
    run = RunFolder(outdir)
    if not resume:
        run.start_fresh(overwrite, outputs=("final", "eval.json"))
    elif given and run.has_checkpoint():
        check_resume_options(run.read_config(), given, where=str(run.path / "config.json"))
    if resume and run.has_checkpoint():
        cfg = dataclasses.replace(PerceptionTrainConfig.from_dict(run.read_config()), steps=cfg.steps)
        run.resume_lock()
    elif resume:
        raise run.nothing_to_resume()
    torch.set_num_threads(cfg.threads)
    trainer = PerceptionTrainer(cfg, load_view_set(cfg.train_spec(), cfg.cache or None, progress=progress))
    if resume:
        tensors, state = run.load_checkpoint()
        trainer.load_state(tensors, state)
        run.truncate_log("step", trainer.step)
    else:
        run.write_config(cfg)
    watch = StopWatch(max_minutes)
    checkpoints = CheckpointClock(cfg.checkpoint_minutes)
    bar = tqdm(total=cfg.steps, initial=trainer.step, unit="step", disable=not progress, dynamic_ncols=True)
    while trainer.step < cfg.steps and not watch.should_stop():
        stats = trainer.train_step()
        bar.update(1)
        if not math.isfinite(stats["loss"]):
            trainer_save(run, trainer)
            raise FloatingPointError(f"non-finite loss at step {trainer.step}: {stats} (checkpoint saved)")
        if trainer.step % cfg.log_steps == 0:
            run.log({"step": trainer.step, "lr": trainer.learning_rate(), "time_s": round(watch.elapsed, 1),
                     **{k: round(v, 5) for k, v in stats.items()}})
            bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()})
        if checkpoints.due():
            trainer_save(run, trainer)
    bar.close()
    trainer_save(run, trainer)
    if trainer.step >= cfg.steps:
        run.check_still_ours()
        finish(run, trainer, progress)
    run.release()
    return trainer


def trainer_save(run: RunFolder, trainer: PerceptionTrainer) -> None:
    tensors, state = trainer.state()
    run.save_checkpoint(tensors, state)


def finish(run: RunFolder, trainer: PerceptionTrainer, progress: bool) -> dict:
    """Evaluate on the held-out people and export the float16 network with its model card."""
    cfg = trainer.cfg
    heldout = load_view_set(cfg.heldout_spec(), cfg.cache or None, progress=progress)
    results = evaluate_network(trainer.model.to(memory_format=torch.contiguous_format), heldout)
    (run.path / "eval.json").write_text(json.dumps(results, indent=1) + "\n")
    command = " ".join(["genfields", "train-perception"] + sys.argv[2:]) if "train-perception" in sys.argv else ""
    export_network(trainer.model, run.path / "final", train_config=dataclasses.asdict(cfg), results=results,
                   command=command)
    return results
