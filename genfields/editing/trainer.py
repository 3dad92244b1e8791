"""Training of M_ref (or the W-space baseline): two stages, frozen G and perception networks.

Every step is a *cross* step (I_attr another generated image: learn to transfer pose and
expression) or a *reconstruction* step (I_attr = I_id: L_rec keeps the content); with
`cross_ratio = 3` steps 0, 1, 2 are cross and step 3 is reconstruction, and so on (Nitzan et
al.'s ratio, Sec. 3.5). Adam(0.9, 0.999) with a learning rate that decays log-linearly from
`lr_start` to `lr_end` over the run. Every random draw of a step comes from
`step_generator(seed, step, rank)`, so `--resume` continues exactly; run folders, checkpoints,
time budgets and multi-process gradient averaging are the shared `genfields.training` machinery.

Devices: the editor, the W discriminator and the optimizers live on the run's device; random
draws stay on CPU generators and each batch is moved there, so CPU runs are unchanged and other
devices draw the same batches. With `amp`, the synthesis runs under autocast; perception, M_ref,
the losses and Adam stay float32, and float16 gradients (CUDA/MPS) go through a GradScaler.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from tqdm import tqdm

from genfields.devices import amp_dtype, module_device, resolve_device
from genfields.errors import ConfigError
from genfields.imageio import save_image
from genfields.perception import PerceptionSet, load_perception
from genfields.stylegan2 import Generator, load_generator
from genfields.training import (
    CheckpointClock,
    Distributed,
    RunFolder,
    StopWatch,
    check_resume_options,
    load_module_tensors,
    load_optimizer_tensors,
    module_tensors,
    optimizer_tensors,
    step_generator,
)

from .config import TrainConfig
from .dataset import GeneratedSet, attribute_images
from .editor import load_editor_network, new_editor, save_editor
from .losses import EditingLoss, EditOutputs, EditTargets
from .mref import WDiscriminator, transfer_weights
from .panel import edit_grid
from .presets import get_preset
from .regularizer import adversarial_loss, discriminator_loss

SAMPLE_COUNT = 4
CROSS, RECONSTRUCTION = "cross", "reconstruction"


def stage(step: int, cross_ratio: int) -> str:
    """`cross` for `cross_ratio` steps, then one `reconstruction` step, repeating."""
    return RECONSTRUCTION if step % (cross_ratio + 1) == cross_ratio else CROSS


def learning_rate(step: int, total: int, lr_start: float, lr_end: float) -> float:
    """Log-linear decay from lr_start (step 0) to lr_end (the last step)."""
    t = min(step / max(total - 1, 1), 1.0)
    return lr_start * (lr_end / lr_start) ** t


class EditorTrainer:
    """Holds the editor, its optimizer (and the W discriminator); runs steps; saves and restores."""

    def __init__(self, cfg: TrainConfig, run: RunFolder, dist: Distributed, G: Generator, nets: PerceptionSet,
                 data: GeneratedSet, device: str | torch.device | None = None):
        self.cfg, self.run, self.dist, self.data = cfg, run, dist, data
        self.device = module_device(G) if device is None else resolve_device(device)
        data.check_generator(G)
        meta = {"preset": cfg.preset, "config_name": cfg.config_name, "generator": cfg.generator,
                "perception": data.config.perception}
        with torch.random.fork_rng(devices=[]):  # weights are drawn on the CPU, whatever the device
            torch.manual_seed(cfg.seed)  # identical initial weights on every process
            self.editor = new_editor(G, nets, cfg.model, data.stats, cfg.truncation, meta, self.device, cfg.amp)
            self.D = WDiscriminator(self.editor.config).to(self.device) if cfg.model.kind == "wspace" else None
        self.network = self.editor.network.train()
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=cfg.amp and amp_dtype(self.device) == torch.float16)
        self.opt = torch.optim.Adam(self.network.parameters(), lr=cfg.lr_start, betas=(cfg.beta1, cfg.beta2))
        self.opt_D = (torch.optim.Adam(self.D.parameters(), lr=cfg.lr_disc, betas=(cfg.beta1, cfg.beta2))
                      if self.D is not None else None)
        self.loss = EditingLoss(cfg.loss, data.stats.to(self.device))
        self.mask = self.editor.training_mask()
        self.local_batch = dist.split_batch(cfg.batch)
        self.step = 0

    # --- one step -------------------------------------------------------------------------------
    def train_step(self) -> dict:
        cfg, editor = self.cfg, self.editor
        gen = step_generator(cfg.seed, self.step, self.dist.rank)
        current = stage(self.step, cfg.cross_ratio)
        batch = self.data.sample(self.local_batch, gen, reconstruction=current == RECONSTRUCTION).to(self.device)
        lr = learning_rate(self.step, cfg.steps, cfg.lr_start, cfg.lr_end)
        for group in self.opt.param_groups:
            group["lr"] = lr
        with torch.no_grad():
            w_id, S_id = editor.identity_styles(batch.z)
            image_id = editor.synthesize(S_id, w_id) if batch.reconstruction and cfg.loss.reconstruction > 0 else None
        S_out, w_out = editor.edit_styles(S_id, w_id, batch.embedding, self._attribute_features(batch), self.mask,
                                          batch.id_f_attr)
        outputs = self._perceive(editor.synthesize(S_out, w_out), S_out)
        total, terms = self.loss(outputs, EditTargets(batch.embedding, batch.landmarks, batch.pose, image_id))
        if self.D is not None and cfg.loss.adversarial > 0:
            terms["adv"] = adversarial_loss(self.D(w_out[:, 0]))
            total = total + cfg.loss.adversarial * terms["adv"]
            terms["adv"] = float(terms["adv"].detach())
        self._update(self.opt, self.network, total, self.scaler)
        if self.D is not None:
            terms["disc"] = self._discriminator_step(w_out[:, 0].detach(), gen)
        self.step += 1
        return {"stage": current, "lr": lr, "loss": float(total.detach()), **terms}

    def _attribute_features(self, batch) -> torch.Tensor:
        """F_attr of the batch's attribute images: recorded in the set, or (a trainable E_attr copy) computed
        with gradients on the images regenerated from their z."""
        if not self.editor.config.train_attributes:
            return batch.f_attr
        with torch.no_grad():
            w, S = self.editor.identity_styles(batch.z_attr)
            images = self.editor.synthesize(S, w)
        return self.editor.attribute_features(images)

    def _perceive(self, image: torch.Tensor, styles: torch.Tensor) -> EditOutputs:
        editor = self.editor
        found = editor.perceive(editor.nets.landmarks, image)
        return EditOutputs(editor.perceive(editor.nets.identity, image), found.landmarks, found.pose, image, styles)

    def _discriminator_step(self, fake: torch.Tensor, gen: torch.Generator) -> float:
        """One update of the W discriminator: mapping(z) samples are real, the mapper's w fake."""
        with torch.no_grad():
            z = torch.randn(fake.shape[0], self.editor.G.z_dim, generator=gen).to(self.device)
            real = self.editor.G.mapping(z)[:, 0]
        loss = discriminator_loss(self.D(real), self.D(fake))
        self._update(self.opt_D, self.D, loss)
        return float(loss.detach())

    def _update(self, opt: torch.optim.Optimizer, module: torch.nn.Module, loss: torch.Tensor,
                scaler: torch.amp.GradScaler | None = None) -> None:
        """Backward, average across processes, step (through `scaler`, which is a no-op unless enabled)."""
        opt.zero_grad(set_to_none=True)
        (loss if scaler is None else scaler.scale(loss)).backward()
        self.dist.average_gradients([p for p in module.parameters() if p.grad is not None])
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()

    # --- state ------------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        tensors = module_tensors("network", self.network)
        t_opt, meta_opt = optimizer_tensors("opt", self.opt)
        tensors.update(t_opt)
        state = {"step": self.step, "opt": meta_opt, "world_size": self.dist.world_size}
        if self.D is not None:
            tensors.update(module_tensors("D", self.D))
            t_d, state["opt_D"] = optimizer_tensors("opt_D", self.opt_D)
            tensors.update(t_d)
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        return tensors, state

    def load_state(self, tensors: dict, state: dict) -> None:
        load_module_tensors("network", self.network, tensors)
        load_optimizer_tensors("opt", self.opt, tensors, state["opt"])
        if self.D is not None:
            load_module_tensors("D", self.D, tensors)
            load_optimizer_tensors("opt_D", self.opt_D, tensors, state["opt_D"])
        if self.scaler.is_enabled() and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])

    def save(self) -> None:
        self.run.save_checkpoint(*self.state())

    # --- outputs ----------------------------------------------------------------------------------
    def write_samples(self, name: str) -> Path:
        """Fixed identities (the set's first) x fixed real attribute images, edited by the current network."""
        preset = get_preset(self.cfg.preset)
        res = self.editor.G.config.img_resolution
        attrs = attribute_images(preset.attributes, SAMPLE_COUNT, res, preset.eval_render_seed)
        z = self.data.tensors["z_id"][:SAMPLE_COUNT]
        self.network.eval()
        result = self.editor.edit(z.repeat_interleave(len(attrs), 0), attrs.repeat(len(z), 1, 1, 1)).cpu()
        self.network.train()
        grid = edit_grid(result.identity_image[::len(attrs)], attrs, result.image)
        return save_image(grid, self.run.path / "samples" / f"{name}.png")


def resolve_config(cfg: TrainConfig | None, run: RunFolder, resume: bool, steps: int | None,
                   at_step: int = 0) -> TrainConfig:
    """The configuration to run: the saved one when resuming (a new `steps` recorded in its history
    as changed at the checkpoint's step `at_step`), else `cfg`, with `steps` if given."""
    if resume:
        if not run.has_checkpoint():
            raise run.nothing_to_resume()
        saved = TrainConfig.from_dict(run.read_config())
        if steps is None or steps == saved.steps:
            return saved
        change = {"at_step": at_step, "steps_before": saved.steps, "steps": steps}
        return dataclasses.replace(saved, steps=steps, history=[*saved.history, change])
    if cfg is None:
        raise ConfigError("a new run needs a training configuration")
    return cfg if steps is None else dataclasses.replace(cfg, steps=steps)


def start_from_editor(trainer: EditorTrainer, name_or_path: str) -> None:
    """Start a run from a trained editor's weights (a fine-tune, e.g. with other loss weights).

    A `concat` network may start from a plain one: its new F_id inputs get zero weights."""
    network, config, _ = load_editor_network(name_or_path)
    if config.s_dim != trainer.editor.config.s_dim:
        raise ConfigError(f"--init {name_or_path}: an editor for another generator (S dim {config.s_dim}, "
                          f"this one {trainer.editor.config.s_dim})")
    try:
        transfer_weights(network, trainer.network, config.f_id_dim)
    except ConfigError as exc:
        raise ConfigError(f"--init {name_or_path}: {exc}") from None


def train_editor(cfg: TrainConfig | None, outdir: str | Path, resume: bool = False, steps: int | None = None,
                 max_minutes: float | None = None, progress: bool = True,
                 device: str | torch.device = "cpu", overwrite: bool = False,
                 given: dict[str, tuple[str, object]] | None = None) -> EditorTrainer:
    """Train (or resume) an editor run in `outdir` on `device`; writes `final/` when all steps are done.

    A new run refuses a folder that holds one unless `overwrite` (which clears it). On resume,
    `given` (config key -> (option, value) the user typed) must agree with the stored config.

    Resuming reads the run's own config.json (`cfg` may be None); `steps` lengthens or shortens
    the run (the learning-rate schedule then stretches to the new length). Checkpoints are
    device-independent: a run may resume on another device. Under torchrun, `cuda` means each
    process's `cuda:LOCAL_RANK`.
    """
    device = resolve_device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist = Distributed(str(device))
    run = RunFolder(outdir, is_main=dist.is_main)
    if not resume:
        run.start_fresh(overwrite, outputs=("samples", "final", "status.json"))
    elif given and run.has_checkpoint():
        check_resume_options(run.read_config(), given, where=str(run.path / "config.json"))
    if resume and run.has_checkpoint():
        run.resume_lock()
    tensors, state = run.load_checkpoint() if resume and run.has_checkpoint() else ({}, {})
    cfg = resolve_config(cfg, run, resume, steps, at_step=state.get("step", 0))
    if not cfg.dataset:
        raise ConfigError("no dataset: make one with `genfields make-dataset` and pass --dataset")
    data = GeneratedSet(cfg.dataset)
    trainer = EditorTrainer(cfg, run, dist, load_generator(cfg.generator, device),
                            load_perception(data.config.perception, device), data, device)
    if resume:
        trainer.load_state(tensors, state)
        run.truncate_log("step", trainer.step)
        run.write_config(cfg.to_dict())  # with a new run length, if `steps` changed it
    else:
        if cfg.init:
            start_from_editor(trainer, cfg.init)
        run.write_config(cfg.to_dict())
        if dist.is_main:
            trainer.write_samples("init")
    _loop(trainer, StopWatch(max_minutes, dist), progress and dist.is_main)
    trainer.save()
    done = trainer.step >= cfg.steps
    if dist.is_main:
        run.check_still_ours()
        trainer.write_samples(f"step{trainer.step:06d}")
        if done:
            save_editor(trainer.editor, run.path / "final", {"train": cfg.to_dict(), "dataset": str(cfg.dataset)})
        (run.path / "status.json").write_text(json.dumps({"step": trainer.step, "done": done}, indent=1) + "\n")
        run.release()
    dist.barrier()
    return trainer


def _loop(trainer: EditorTrainer, watch: StopWatch, progress: bool) -> None:
    """Steps until done or out of time: log, sample and checkpoint on schedule."""
    cfg, run = trainer.cfg, trainer.run
    checkpoints = CheckpointClock(cfg.checkpoint_minutes)
    bar = tqdm(total=cfg.steps, initial=trainer.step, unit="step", disable=not progress, dynamic_ncols=True)
    while trainer.step < cfg.steps and not watch.should_stop():
        stats = trainer.train_step()
        bar.update(1)
        if trainer.step % cfg.log_every == 0:
            run.log({"step": trainer.step, "time_s": round(watch.elapsed, 2),
                     **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()}})
            bar.set_postfix(loss=f"{stats['loss']:.4f}", stage=stats["stage"][:5])
        if trainer.dist.is_main and cfg.sample_every and trainer.step % cfg.sample_every == 0:
            trainer.write_samples(f"step{trainer.step:06d}")
        if checkpoints.due():
            trainer.save()
    bar.close()
