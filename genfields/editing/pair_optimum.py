"""The per-pair optimum (beyond the paper): dS optimised for each identity/attribute pair on its own.

M_ref predicts one dS from the attribute image alone; here dS is a free variable per pair, found by
Adam over a fixed number of steps from dS = 0 with the same losses as the editor's training (L_id,
lambda_2 (L_lnd + L_pose), the style regulariser; no reconstruction term, since every pair is a
cross pair). It is the ceiling of what an additive edit in S can reach under those losses, and
shows whether a gap comes from S space or from the mapping network. It is slow (one forward and
backward pass of G and the perception networks per step and pair; `scripts/pair_optimum_probe.py`
measures the rate and how far 60 steps get) and is reported as ours, never as the paper's.

`PairOptimumEditor` has `prepare`, `edit_prepared` and `edit` like an `Editor`, so `evaluate_editor` scores it
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genfields.errors import ConfigError

from .config import LossConfig, TrainConfig
from .editor import Editor, EditInputs, EditResult, edit_result
from .losses import EditingLoss, EditOutputs, EditTargets
from .regularizer import StyleStatistics

STATS_SAMPLES = 4096  # z draws for the S statistics of the style regulariser
STATS_SEED = 123


@dataclass(frozen=True)
class PairOptimumConfig:
    """How each pair's dS is optimised: Adam from zero, `steps` steps of learning rate `lr` (in units of
    the per-channel std of S)."""

    steps: int = 60
    lr: float = 0.1

    def __post_init__(self) -> None:
        if self.steps < 1 or not self.lr > 0:
            raise ConfigError(f"the per-pair optimum needs steps >= 1 and lr > 0, got {self.steps} and {self.lr}")


@torch.no_grad()
def style_statistics(editor: Editor, n: int = STATS_SAMPLES, seed: int = STATS_SEED) -> StyleStatistics:
    """Per-channel mean and std of S and w over n mapped z (no synthesis needed)."""
    z = torch.randn(n, editor.G.z_dim, generator=torch.Generator().manual_seed(seed))
    w, S = editor.identity_styles(z)
    w = w[:, 0].double()
    S = S.double()
    return StyleStatistics(S.mean(0).float(), S.std(0).float(), w.mean(0).float(), w.std(0).float())


def editor_losses(editor: Editor) -> LossConfig:
    """The loss weights the editor was trained with (its saved training config), else the preset's."""
    train = editor.meta.get("train")
    if train:
        return TrainConfig.from_dict(train).loss
    from .presets import get_preset

    return get_preset(editor.meta.get("preset", "synth64")).loss


class PairOptimumEditor:
    """Edits by optimising dS per pair (see the module docstring); the editor's G, networks and mask."""

    def __init__(self, editor: Editor, config: PairOptimumConfig = PairOptimumConfig(),
                 loss: LossConfig | None = None, stats: StyleStatistics | None = None):
        if editor.config.kind != "style":
            raise ConfigError("the per-pair optimum edits in S: give a style-space editor, not the W baseline")
        self.editor, self.config = editor, config
        self.loss_config = loss or editor_losses(editor)
        stats = stats or style_statistics(editor)
        self.loss = EditingLoss(self.loss_config, stats.to(editor.device))
        self.scale = stats.style_std.to(editor.device)
        self.meta = {**editor.meta, "per_pair_optimum": {"steps": config.steps, "lr": config.lr}}

    @property
    def G(self):
        return self.editor.G

    @property
    def nets(self):
        return self.editor.nets

    @property
    def device(self) -> torch.device:
        return self.editor.device

    def prepare(self, z: torch.Tensor, attribute_images: torch.Tensor) -> EditInputs:
        """The identity side of the edits, as the underlying editor makes it."""
        with torch.no_grad():
            return self.editor.prepare(z, attribute_images)

    def edit_prepared(self, inputs: EditInputs, layers: str | None = None, gf: str | None = None) -> EditResult:
        """Optimise dS for every pair of `prepare`d inputs and return the edits."""
        ed, nets = self.editor, self.editor.nets
        mask = ed.inference_mask(layers, gf)
        S_id, w_id = inputs.styles, inputs.w
        targets = EditTargets(inputs.identity, inputs.attribute.landmarks, inputs.attribute.pose)
        delta = torch.zeros_like(S_id, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=self.config.lr)
        with torch.enable_grad():
            for _ in range(self.config.steps):
                S_out = S_id + mask * delta * self.scale
                image = ed.synthesize(S_out, w_id)
                found = ed.perceive(nets.landmarks, image)
                outputs = EditOutputs(ed.perceive(nets.identity, image), found.landmarks, found.pose, image, S_out)
                total, _ = self.loss(outputs, targets)
                opt.zero_grad(set_to_none=True)
                (total * S_id.shape[0]).backward()  # each pair's own loss drives its own dS
                opt.step()
        with torch.no_grad():
            S_out = S_id + mask * delta * self.scale
            image = ed.synthesize(S_out, w_id)
            return edit_result(inputs, image, S_out - S_id, ed.perceive(nets.identity, image),
                               ed.perceive(nets.landmarks, image))

    def edit(self, z: torch.Tensor, attribute_images: torch.Tensor, layers: str | None = None,
             gf: str | None = None) -> EditResult:
        """Optimise dS for every pair (z [B], attribute images [B]) and return the edits."""
        return self.edit_prepared(self.prepare(z, attribute_images), layers, gf)
