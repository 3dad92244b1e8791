"""StyleGAN2 training for our generators (the `synth64` embedded default), resumable and multi-process.

The recipe is StyleGAN2's: non-saturating logistic loss, lazy R1 on reals, optional lazy path-length
regularisation, style mixing, an EMA of G, Adam(0, 0.99) with the lazy-regularisation corrections of
the learning rate and betas. Every random draw of a step comes from `step_generator(seed, step,
rank)`, so `--resume` continues exactly where a run stopped. Real images are rendered on the fly
by the synthetic-face renderer, indexed by the number of images seen, or read from `synth-data`
shards.

Launch on several processes with `torchrun --nproc_per_node=2 -m genfields train-gan ...`: the
batch is split across processes and gradients are averaged (gloo on CPU).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from genfields.errors import BATCH_MAX, KIMG_MAX, STEPS_MAX, ConfigError, check_number, dataclass_from_dict
from genfields.imageio import from_uint8, make_grid, save_image
from genfields.stylegan2.checkpoints import save_generator
from genfields.stylegan2.config import GeneratorConfig, get_architecture
from genfields.stylegan2.discriminator import Discriminator
from genfields.stylegan2.network import Generator
from genfields.training import (CheckpointClock, Distributed, RunFolder, StopWatch, check_resume_options,
                                load_module_tensors, load_optimizer_tensors, module_tensors, optimizer_tensors,
                                step_generator)

SAMPLE_SEED = 123456


@dataclass
class GANTrainConfig:
    """Hyper-parameters of a GAN run (saved as the run's config.json)."""

    arch: str = "synth64"
    generator: dict = field(default_factory=dict)  # overrides of the architecture's GeneratorConfig
    batch: int = 32
    total_kimg: float = 300.0
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    lr_mapping_scale: float = 1.0  # multiplies lr_g for G's mapping network (whose lr_multiplier is 0.01 on top)
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 0.1
    r1_interval: int = 16
    pl_weight: float = 0.0
    pl_interval: int = 4
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    mbstd_group: int = 4
    seed: int = 0
    data: str = "render"  # 'render' (on the fly) or a synth-data folder
    pose_dist: str = "ffhq"
    bf16: bool = True  # bfloat16 autocast for the main G/D passes (R1 stays float32)
    sample_kimg: float = 5.0
    snapshot_kimg: float = 25.0
    checkpoint_minutes: float = 10.0
    log_steps: int = 10
    history: list = field(default_factory=list)  # recipe changes made on resume: [{"images_seen": n, "set": {...}}]

    def __post_init__(self) -> None:
        """The sizes of a run, bounded as on the command line: a config.json read back on --resume (or given
        by a library caller) is checked too, before anything is allocated."""
        for name, lo, hi in (("batch", 1, BATCH_MAX), ("mbstd_group", 1, BATCH_MAX), ("r1_interval", 1, STEPS_MAX),
                             ("pl_interval", 1, STEPS_MAX), ("log_steps", 1, STEPS_MAX)):
            check_number(f"GAN config {name}", getattr(self, name), lo, hi)
        check_number("GAN config total_kimg", self.total_kimg, 0, KIMG_MAX, min_open=True)
        for name in ("sample_kimg", "snapshot_kimg"):
            check_number(f"GAN config {name}", getattr(self, name), 0, KIMG_MAX)

    def generator_config(self) -> GeneratorConfig:
        base = get_architecture(self.arch).to_dict()
        base.update(self.generator)
        return GeneratorConfig.from_dict(base)

    @classmethod
    def from_dict(cls, d: dict) -> "GANTrainConfig":
        return dataclass_from_dict(cls, d, "GAN training config", strict=False)

    def with_changes(self, changes: dict[str, str], images_seen: int) -> "GANTrainConfig":
        """This config with `changes` (name -> text value) applied mid-run, recorded in `history`."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        values = {}
        for name, text in changes.items():
            if name not in CHANGEABLE:
                raise ConfigError(f"--change {name}: only {', '.join(sorted(CHANGEABLE))} can change in a running "
                                  "recipe (the rest would make the checkpoint meaningless)")
            values[name] = _parse_value(name, text, types[name])
        if not values:
            return self
        history = [*self.history, {"images_seen": images_seen, "set": values}]
        return dataclasses.replace(self, **values, history=history)


def _parse_value(name: str, text: str, kind: str) -> float | int | bool:
    """A --change value as the config field's type (`kind` is its annotation: float, int or bool)."""
    if kind == "bool":
        if text.lower() not in ("true", "false", "1", "0", "on", "off"):
            raise ConfigError(f"--change {name}={text}: not a boolean (true/false)")
        return text.lower() in ("true", "1", "on")
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        raise ConfigError(f"--change {name}={text}: not a number of type {kind}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--change {name}={text}: must be a finite number >= 0")
    return value


# Hyper-parameters that may change when a run resumes (`train-gan --resume --change r1_gamma=0.2`):
# none of them changes the shape of a tensor in the checkpoint or the meaning of the step counter.
CHANGEABLE = frozenset({"lr_g", "lr_d", "lr_mapping_scale", "r1_gamma", "pl_weight", "style_mixing", "ema_kimg",
                        "bf16", "mbstd_group", "sample_kimg", "snapshot_kimg", "checkpoint_minutes", "log_steps"})


# --- data -------------------------------------------------------------------------------------
class RenderedFaces:
    """Real images rendered on the fly: sample i is always the same face (seeded by `seed`)."""

    def __init__(self, res: int, seed: int, pose_dist: str):
        from genfields.synthface import FaceRenderer

        self.renderer = FaceRenderer(res)
        self.seed, self.pose_dist = seed, pose_dist

    def batch(self, start: int, n: int) -> torch.Tensor:
        from genfields.synthface import sample_params

        params = sample_params(n, seed=self.seed, start_index=start, pose_dist=self.pose_dist)
        return self.renderer.render(params).images.clone()


class ShardedFaces:
    """Real images read from a `genfields synth-data` folder, cycling through it."""

    def __init__(self, folder: str, res: int):
        from genfields.synthface.dataset import SynthFaceDataset

        self.dataset = SynthFaceDataset(folder)
        if int(self.dataset.meta["res"]) != res:
            raise ConfigError(f"{folder} holds {self.dataset.meta['res']}px images, the generator makes {res}px")

    def batch(self, start: int, n: int) -> torch.Tensor:
        images = np.stack([self.dataset[(start + i) % len(self.dataset)]["images"] for i in range(n)])
        return from_uint8(images)


def make_data(cfg: GANTrainConfig, res: int):
    return RenderedFaces(res, cfg.seed, cfg.pose_dist) if cfg.data == "render" else ShardedFaces(cfg.data, res)


# --- the trainer ------------------------------------------------------------------------------
class GANTrainer:
    """Holds G, D, G_ema and their optimizers; runs steps; saves and restores everything."""

    def __init__(self, cfg: GANTrainConfig, run: RunFolder, dist: Distributed):
        self.cfg, self.run, self.dist = cfg, run, dist
        gcfg = cfg.generator_config()
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)  # identical initial weights on every process
            self.G = Generator(gcfg).train()
            self.D = Discriminator(gcfg, mbstd_group_size=cfg.mbstd_group).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # G's optimizer has two groups, mapping then synthesis (the order of G.parameters()), so that
        # the mapping's learning rate can be scaled on its own.
        self.opt_G = self._adam([list(self.G.mapping.parameters()), list(self.G.synthesis.parameters())],
                                self._g_learning_rates(), self._g_reg_interval())
        self.opt_D = self._adam([list(self.D.parameters())], [cfg.lr_d], cfg.r1_interval)
        self.local_batch = dist.split_batch(cfg.batch)
        self.step = 0
        self.pl_mean = torch.zeros([])
        self.last_reg: dict[str, float] = {}
        self.data = make_data(cfg, gcfg.img_resolution)

    @staticmethod
    def _lazy_ratio(reg_interval: int | None) -> float:
        """StyleGAN2's correction of lr and betas for a regulariser applied every `reg_interval` steps."""
        return reg_interval / (reg_interval + 1) if reg_interval else 1.0

    def _adam(self, groups: list[list[torch.nn.Parameter]], lrs: list[float],
              reg_interval: int | None) -> torch.optim.Adam:
        ratio = self._lazy_ratio(reg_interval)
        return torch.optim.Adam([{"params": params, "lr": lr * ratio} for params, lr in zip(groups, lrs)],
                                betas=(self.cfg.beta1 ** ratio, self.cfg.beta2 ** ratio), eps=1e-8)

    def _g_learning_rates(self) -> list[float]:
        """[mapping, synthesis] learning rates of G before the lazy-regularisation correction."""
        return [self.cfg.lr_g * self.cfg.lr_mapping_scale, self.cfg.lr_g]

    def _g_reg_interval(self) -> int | None:
        return self.cfg.pl_interval if self.cfg.pl_weight > 0 else None

    def _set_learning_rates(self) -> None:
        for opt, lrs, interval in ((self.opt_G, self._g_learning_rates(), self._g_reg_interval()),
                                   (self.opt_D, [self.cfg.lr_d], self.cfg.r1_interval)):
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr * self._lazy_ratio(interval)

    @property
    def images_seen(self) -> int:
        return self.step * self.cfg.batch

    @property
    def total_steps(self) -> int:
        return math.ceil(self.cfg.total_kimg * 1000 / self.cfg.batch)

    # --- one step -----------------------------------------------------------------------------
    def mixed_ws(self, z: torch.Tensor, gen: torch.Generator, update_w_avg: bool) -> torch.Tensor:
        """G's per-layer codes for `z`, with style mixing: from a random layer on, the codes of a second z."""
        G = self.G
        ws = G.mapping(z, update_w_avg=update_w_avg)
        if self.cfg.style_mixing > 0:
            cutoff = int(torch.randint(1, G.num_ws, (), generator=gen))
            if float(torch.rand((), generator=gen)) >= self.cfg.style_mixing:
                cutoff = G.num_ws
            z2 = torch.randn(z.shape, generator=gen)
            ws = torch.cat([ws[:, :cutoff], G.mapping(z2)[:, cutoff:]], dim=1)
        return ws

    def run_G(self, z: torch.Tensor, gen: torch.Generator, update_w_avg: bool) -> torch.Tensor:
        return self.synthesize(self.mixed_ws(z, gen, update_w_avg), gen)

    def synthesize(self, ws: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        G = self.G
        S = G.styles(ws)  # mapping and affines stay float32; only the convolutions use the autocast
        with self.autocast():
            return G.synthesize(S, ws, noise_mode="random", noise_generator=gen)

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def train_step(self) -> dict:
        cfg, n, step = self.cfg, self.local_batch, self.step
        gen = step_generator(cfg.seed, step, self.dist.rank)
        real = self.data.batch(self.images_seen + self.dist.rank * n, n)
        stats = {}

        # G: non-saturating logistic loss.
        z = torch.randn(n, self.G.z_dim, generator=gen)
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        fake = self.run_G(z, gen, update_w_avg=True)
        with self.autocast():
            loss_G = F.softplus(-self.D(fake).float()).mean()
        self._update(self.opt_G, self.G, loss_G)
        stats["loss_G"] = loss_G.item()
        if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
            self.last_reg["pl_penalty"] = self._path_length_step(gen)
        self.G.requires_grad_(False)

        # D: logistic loss on fakes and reals.
        self.D.requires_grad_(True)
        z = torch.randn(n, self.G.z_dim, generator=gen)
        with torch.no_grad():
            fake = self.run_G(z, gen, update_w_avg=False)
        with self.autocast():
            logits_fake = self.D(fake).float()
            logits_real = self.D(real).float()
            loss_D = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        self._update(self.opt_D, self.D, loss_D)
        stats.update(loss_D=loss_D.item(), D_real=logits_real.mean().item(), D_fake=logits_fake.mean().item())

        # D: lazy R1 on reals, in float32.
        if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
            real_r1 = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(real_r1).sum(), real_r1, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            self._update(self.opt_D, self.D, r1 * (cfg.r1_gamma / 2) * cfg.r1_interval)
            self.last_reg["r1"] = r1.item()
        self.D.requires_grad_(False)
        stats.update(self.last_reg)  # lazy terms: the latest value, so that every log line shows them

        self._sync_w_avg()
        self._update_ema()
        self.step += 1
        return stats

    def _update(self, opt: torch.optim.Optimizer, module: torch.nn.Module, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in module.parameters() if p.grad is not None]
        self.dist.average_gradients(params)
        for p in params:
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    def _path_length_step(self, gen: torch.Generator) -> float:
        """Lazy path-length regularisation on half a batch (StyleGAN2's pl_batch_shrink = 2).

        As in StyleGAN2, the codes are style-mixed like the main pass's and the image is made in the
        main pass's precision (bfloat16 autocast when `bf16`). The running mean of the lengths is
        averaged over processes, so that every process holds the same value and resume is exact.
        """
        n = max(1, self.local_batch // 2)
        G = self.G
        # not detached (as in StyleGAN2): the penalty also reaches the mapping, through where it puts w
        ws = self.mixed_ws(torch.randn(n, G.z_dim, generator=gen), gen, update_w_avg=False)
        img = self.synthesize(ws, gen).float()
        noise = torch.randn(img.shape, generator=gen) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()
        batch_mean = torch.tensor(self.dist.average(lengths.mean().item()), dtype=self.pl_mean.dtype)
        self.pl_mean = self.pl_mean.lerp(batch_mean, self.cfg.pl_decay)
        penalty = (lengths - self.pl_mean).square().mean()
        self._update(self.opt_G, G, penalty * self.cfg.pl_weight * self.cfg.pl_interval)
        return penalty.item()

    def _sync_w_avg(self) -> None:
        if self.dist.enabled:
            import torch.distributed as tdist

            tdist.all_reduce(self.G.mapping.w_avg)
            self.G.mapping.w_avg /= self.dist.world_size

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.cfg
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, (self.step + 1) * cfg.batch * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # --- state ----------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        tensors = {**module_tensors("G", self.G), **module_tensors("D", self.D), **module_tensors("G_ema", self.G_ema),
                   "pl_mean": self.pl_mean.reshape(1)}
        t_g, meta_g = optimizer_tensors("opt_G", self.opt_G)
        t_d, meta_d = optimizer_tensors("opt_D", self.opt_D)
        tensors.update(t_g)
        tensors.update(t_d)
        state = {"step": self.step, "images_seen": self.images_seen, "opt_G": meta_g, "opt_D": meta_d,
                 "world_size": self.dist.world_size}
        return tensors, state

    def load_state(self, tensors: dict, state: dict) -> None:
        load_module_tensors("G", self.G, tensors)
        load_module_tensors("D", self.D, tensors)
        load_module_tensors("G_ema", self.G_ema, tensors)
        load_optimizer_tensors("opt_G", self.opt_G, tensors, split_single_group(state["opt_G"], self.opt_G))
        load_optimizer_tensors("opt_D", self.opt_D, tensors, state["opt_D"])
        self._set_learning_rates()  # the config's, not the checkpoint's: a resume may change them
        self.pl_mean = tensors["pl_mean"].reshape([])
        self.step = int(state["step"])

    def save(self) -> None:
        tensors, state = self.state()
        self.run.save_checkpoint(tensors, state)

    # --- outputs ----------------------------------------------------------------------------------
    @torch.no_grad()
    def write_samples(self, name: str, count: int = 32) -> Path:
        G = self.G_ema
        z = torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        images = torch.cat([G(z[i:i + 8]) for i in range(0, count, 8)])
        return save_image(make_grid(images, cols=8), self.run.path / "samples" / f"{name}.png")

    def write_snapshot(self, name: str | None = None) -> Path:
        name = name or f"kimg{self.images_seen // 1000:06d}"
        return save_generator(self.G_ema, self.run.path / "snapshots" / name,
                              dtype=torch.float16, extra={"images_seen": str(self.images_seen)})


def split_single_group(meta: dict, opt: torch.optim.Optimizer) -> dict:
    """An optimizer state saved with one parameter group, regrouped like `opt`'s groups.

    Checkpoints written before G's optimizer had separate mapping and synthesis groups hold one
    group over the same parameters in the same order; the per-parameter state is unchanged.
    """
    groups = meta["param_groups"]
    if len(groups) != 1 or len(opt.param_groups) == 1:
        return meta
    ids, regrouped, start = groups[0]["params"], [], 0
    for group in opt.param_groups:
        count = len(group["params"])
        regrouped.append({**groups[0], "params": ids[start:start + count]})
        start += count
    if start != len(ids):
        raise ConfigError(f"checkpoint optimizer holds {len(ids)} parameters, the model has {start}")
    return {**meta, "param_groups": regrouped}


def crossed(before_images: int, after_images: int, every_kimg: float) -> bool:
    """True when the images-seen counter passed a multiple of `every_kimg` in this step."""
    every = int(round(every_kimg * 1000))
    return every > 0 and before_images // every != after_images // every


def mark_name(prefix: str, after_images: int, every_kimg: float) -> str:
    """The name of the output written on crossing a multiple of `every_kimg`: the mark crossed, in kimg.

    Whole marks keep the historic `kimg000025` form; fractional intervals get three decimals
    (`kimg000001.500`), so that names are unique at any interval and sort in training order.
    """
    every = int(round(every_kimg * 1000))
    mark = after_images // every * every
    return f"{prefix}{mark // 1000:06d}" if mark % 1000 == 0 else f"{prefix}{mark / 1000:010.3f}"


def name_kimg(name: str, prefix: str = "kimg") -> float:
    """The kimg mark in a snapshot name written by `mark_name` (or an older `kimgNNNNNN`)."""
    return float(name[len(prefix):])


def train_gan(cfg: GANTrainConfig, outdir: str | Path, resume: bool = False, max_minutes: float | None = None,
              progress: bool = True, changes: dict[str, str] | None = None, overwrite: bool = False,
              given: dict[str, tuple[str, object]] | None = None) -> GANTrainer:
    """Train (or resume) a GAN run in `outdir`; returns the trainer when done or out of time.

    A new run refuses a folder that holds one unless `overwrite`. On resume the run's own config
    is used: `given` (config key -> (option, value), the options the user typed; default: only
    `cfg.total_kimg`) may change only `total_kimg` (recorded in the config's `history`); any other
    difference is refused. `changes` alters the recipe from this point on (see CHANGEABLE), also
    recorded in `history`.
    """
    torch.backends.cudnn.benchmark = False
    # a library call states the length in `cfg`; the command line passes only what the user typed
    given = {"total_kimg": ("total_kimg", cfg.total_kimg)} if given is None else dict(given)
    dist = Distributed()
    run = RunFolder(outdir, is_main=dist.is_main)
    if resume and run.has_checkpoint():
        stored = run.read_config()
        saved = GANTrainConfig.from_dict(stored)
        new_kimg = given.pop("total_kimg", (None, saved.total_kimg))[1]
        check_resume_options(stored, given, CHANGEABLE, where=str(run.path / "config.json"))
        run.resume_lock()
        tensors, state = run.load_checkpoint()
        cfg = saved.with_changes(changes or {}, state["images_seen"])
        if new_kimg != saved.total_kimg:  # config.json records the length in effect, and when it changed
            history = [dict(h) for h in cfg.history]
            if len(history) > len(saved.history):  # one entry for everything changed at this resume
                history[-1]["set"] = {**history[-1]["set"], "total_kimg": new_kimg}
            else:
                history.append({"images_seen": state["images_seen"], "set": {"total_kimg": new_kimg}})
            cfg = dataclasses.replace(cfg, total_kimg=new_kimg, history=history)
        if changes or new_kimg != saved.total_kimg:
            run.write_config(cfg)
    elif resume:
        raise run.nothing_to_resume()
    elif changes:
        raise ConfigError("--change applies to a resumed run; a new run takes the options themselves")
    else:
        run.start_fresh(overwrite, outputs=("samples", "snapshots", "final", "status.json", "quality.jsonl",
                                            "curves.png"))
    trainer = GANTrainer(cfg, run, dist)
    if resume:
        if state.get("world_size", 1) != dist.world_size and dist.is_main:
            print(f"note: resuming a {state.get('world_size', 1)}-process run on {dist.world_size} processes: "
                  "the global batch is kept, but the random draws differ from an uninterrupted run")
        trainer.load_state(tensors, state)
        run.truncate_log("images_seen", trainer.images_seen)
    else:
        run.write_config(cfg)
        if dist.is_main:
            save_image(make_grid(trainer.data.batch(0, 32), cols=8), run.path / "samples" / "reals.png")
            trainer.write_samples("fakes_init")
    watch = StopWatch(max_minutes, dist)
    checkpoints = CheckpointClock(cfg.checkpoint_minutes)
    # counted in images (exact integers: kimg fractions summed past the total), shown in kimg
    bar = tqdm(total=trainer.total_steps * cfg.batch, initial=trainer.images_seen, unit="kimg", unit_scale=1e-3,
               disable=not (progress and dist.is_main), dynamic_ncols=True, smoothing=0.1)
    t_log, imgs_log = time.monotonic(), trainer.images_seen
    while trainer.step < trainer.total_steps and not watch.should_stop():
        before = trainer.images_seen
        stats = trainer.train_step()
        after = trainer.images_seen
        bar.update(after - before)
        if not all(math.isfinite(v) for v in stats.values()):
            trainer.save()
            raise FloatingPointError(f"non-finite losses at step {trainer.step}: {stats} (checkpoint saved)")
        if trainer.step % cfg.log_steps == 0:
            now = time.monotonic()
            rate = (after - imgs_log) / max(now - t_log, 1e-9)
            t_log, imgs_log = now, after
            run.log({"step": trainer.step, "images_seen": after, "kimg": after / 1000, "images_per_s": rate,
                     "time_s": watch.elapsed, **{k: round(v, 5) for k, v in stats.items()}})
            bar.set_postfix(G=f"{stats['loss_G']:.3f}", D=f"{stats['loss_D']:.3f}", ips=f"{rate:.1f}")
        if dist.is_main and crossed(before, after, cfg.sample_kimg):
            trainer.write_samples(mark_name("fakes", after, cfg.sample_kimg))
        if dist.is_main and crossed(before, after, cfg.snapshot_kimg):
            trainer.write_snapshot(mark_name("kimg", after, cfg.snapshot_kimg))
        if checkpoints.due():
            trainer.save()
    bar.close()
    trainer.save()
    if dist.is_main:
        run.check_still_ours()
        trainer.write_samples(f"fakes{trainer.images_seen // 1000:06d}")
        if trainer.step >= trainer.total_steps:
            save_generator(trainer.G_ema, run.path / "final", extra={"images_seen": str(trainer.images_seen)})
        (run.path / "status.json").write_text(json.dumps(
            {"step": trainer.step, "images_seen": trainer.images_seen, "done": trainer.step >= trainer.total_steps,
             "stopped_by": "signal" if watch.signalled else ("time" if trainer.step < trainer.total_steps else "done")},
            indent=1) + "\n")
        run.release()
    dist.barrier()
    return trainer
