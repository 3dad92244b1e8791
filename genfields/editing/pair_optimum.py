"""The per-pair optimum (beyond the paper): dS optimised for each identity/attribute pair on its own.

M_ref predicts one dS from the attribute image alone; here dS is a free variable per pair, found by
Adam over a fixed number of steps from dS = 0 with the same losses as the editor's training (L_id,
lambda_2 (L_lnd + L_pose), the style regulariser; no reconstruction term, since every pair is a
cross pair). It is the ceiling of what an additive edit in S can reach under those losses, and
shows whether a gap comes from S space or from the mapping network. It is slow (one forward and
backward pass of G and the perception networks per step and pair; `scripts/pair_optimum_probe.py`
measures the rate and how far 60 steps get) and is reported as ours, never as the paper's.

`PairOptimumEditor` has `prepare`, `edit_prepared` and `edit` like an `Editor`, so `evaluate_editor` scores it
unchanged. `SolvedPairs` keeps the optima found, keyed by each pair's w_id, in a file that a later run resumes
from and a report reuses (`genfields evaluate --per-pair-steps 60 --per-pair-store FILE`): 1,000 pairs cost
about 37 minutes on two cores, more than a whole report may take, so the shipped file holds them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genfields.errors import ConfigError
from genfields.imageio import atomic_path

from .config import LossConfig, TrainConfig
from .editor import Editor, EditInputs, EditResult, edit_result
from .losses import EditingLoss, EditOutputs, EditTargets
from .regularizer import StyleStatistics, mapped_statistics

STATS_SAMPLES = 4096  # z draws for the S statistics of the style regulariser
STATS_SEED = 123
STORE_FORMAT = "genfields-pair-optimum-v1"
MATCH_TOLERANCE = 1e-3  # largest difference of a pair's key found in a store (float noise across machines ~1e-6)
PAIR_OPTIMUM_FILE = "pair_optimum.safetensors"  # a store shipped beside the editor whose losses it used
KEY_POOL = 4  # the attribute image's part of a pair's key: its mean colours on a KEY_POOL x KEY_POOL grid


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
    """Per-channel mean and std of S and w over n mapped z at the editor's truncation (no synthesis needed)."""
    return mapped_statistics(editor.G, n, seed, editor.truncation)


def editor_losses(editor: Editor) -> LossConfig:
    """The loss weights the editor was trained with (its saved training config), else the preset's."""
    train = editor.meta.get("train")
    if train:
        return TrainConfig.from_dict(train).loss
    from .presets import get_preset

    return get_preset(editor.meta.get("preset", "synth64")).loss


def pair_keys(inputs: EditInputs) -> torch.Tensor:
    """What names each pair of `inputs` in a store [B, w_dim + 3 KEY_POOL^2]: its identity's w and a coarse
    copy of its attribute image (the same identity with another attribute image is another pair)."""
    pooled = torch.nn.functional.adaptive_avg_pool2d(inputs.attribute_image.float(), KEY_POOL)
    return torch.cat([inputs.w[:, 0].float(), pooled.flatten(1)], dim=1).detach()


@dataclass
class SolvedPairs:
    """Per-pair optima already found: each pair's key (`pair_keys`; [N, K]) and dS ([N, dim S], in units of
    the per-channel std of S), made under `key` (the generator and networks, losses, mask and Adam settings).
    With a `path`, every `add` rewrites the file atomically, so an interrupted run loses at most one batch."""

    key: dict
    pairs: torch.Tensor
    delta: torch.Tensor
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def empty(cls, key: dict, path: str | Path | None = None) -> "SolvedPairs":
        return cls(key, torch.zeros(0, 0), torch.zeros(0, 0), Path(path) if path is not None else None)

    @classmethod
    def load(cls, path: str | Path, key: dict | None = None) -> "SolvedPairs":
        """The store at `path`; with `key`, an error unless it was made under that key."""
        path = Path(path)
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
        except Exception as exc:  # a missing, truncated or foreign file
            raise ConfigError(f"{path}: not a per-pair optimum store ({exc})") from exc
        if meta.get("format") != STORE_FORMAT or set(tensors) != {"pairs", "delta"}:
            raise ConfigError(f"{path}: not a per-pair optimum store (format {meta.get('format')!r})")
        stored = json.loads(meta["key"])
        if key is not None and stored != key:
            differ = sorted(k for k in set(stored) | set(key) if stored.get(k) != key.get(k))
            raise ConfigError(f"{path} was made under other settings ({', '.join(differ)} differ): give another "
                              "--per-pair-store file, or remove this one to start afresh")
        return cls(stored, tensors["pairs"].float(), tensors["delta"].float(), path)

    def __len__(self) -> int:
        return self.pairs.shape[0]

    def find(self, keys: torch.Tensor) -> torch.Tensor | None:
        """The stored dS of every pair of `keys` [B, K] (on their device), or None unless all of them are stored."""
        if not len(self):
            return None
        distance, index = torch.cdist(keys.cpu().double(), self.pairs.double(), p=float("inf")).min(dim=1)
        if bool((distance > MATCH_TOLERANCE).any()):
            return None
        return self.delta[index].to(keys.device)

    def add(self, keys: torch.Tensor, delta: torch.Tensor) -> None:
        """Keep the optima of new pairs (and rewrite the file)."""
        keys, delta = keys.detach().cpu().float(), delta.detach().cpu().float()
        if len(self):
            keys, delta = torch.cat([self.pairs, keys]), torch.cat([self.delta, delta])
        self.pairs, self.delta = keys, delta
        if self.path is not None:
            with atomic_path(self.path) as tmp:
                save_file({"pairs": self.pairs.contiguous(), "delta": self.delta.contiguous()}, str(tmp),
                          metadata={"format": STORE_FORMAT, "key": json.dumps(self.key, sort_keys=True)})


class PairOptimumEditor:
    """Edits by optimising dS per pair (see the module docstring); the editor's G, networks and mask."""

    def __init__(self, editor: Editor, config: PairOptimumConfig = PairOptimumConfig(),
                 loss: LossConfig | None = None, stats: StyleStatistics | None = None,
                 solved: SolvedPairs | None = None):
        if editor.config.kind != "style":
            raise ConfigError("the per-pair optimum edits in S: give a style-space editor, not the W baseline")
        self.editor, self.config = editor, config
        self.loss_config = loss or editor_losses(editor)
        stats = stats or style_statistics(editor)
        self.loss = EditingLoss(self.loss_config, stats.to(editor.device))
        self.scale = stats.style_std.to(editor.device)
        self.meta = {**editor.meta, "per_pair_optimum": {"steps": config.steps, "lr": config.lr}}
        self.solved = solved

    def store_key(self, preset: str, seed: int, layers: str | None = None, gf: str | None = None) -> dict:
        """What the optima depend on: G and the perception networks (SHA-256 of their weights), the losses,
        the mask, the truncation and the Adam settings; and whose pairs they are (`evaluate_editor`'s pairs of
        `preset` and `seed`). A `SolvedPairs` made under another key is not reused."""
        from .evaluate import weights_digest

        mask = self.editor.inference_mask(layers, gf).detach().cpu().float()
        return {"weights": weights_digest(self.G, *self.nets.networks()), "loss": asdict(self.loss_config),
                "mask": hashlib.sha256(mask.numpy().tobytes()).hexdigest(), "truncation": self.editor.truncation,
                "steps": self.config.steps, "lr": self.config.lr, "preset": preset, "seed": seed}

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

    def prepare_codes(self, w_id: torch.Tensor, S_id: torch.Tensor, attribute_images: torch.Tensor) -> EditInputs:
        """`prepare` for identities given by their codes (an inverted photo's), as the underlying editor makes it."""
        with torch.no_grad():
            return self.editor.prepare_codes(w_id, S_id, attribute_images)

    def edit_prepared(self, inputs: EditInputs, layers: str | None = None, gf: str | None = None) -> EditResult:
        """Optimise dS for every pair of `prepare`d inputs (or take it from `solved`) and return the edits."""
        ed, nets = self.editor, self.editor.nets
        mask = ed.inference_mask(layers, gf)
        keys = pair_keys(inputs)
        delta = self.solved.find(keys) if self.solved is not None else None
        if delta is None:
            delta = self.optimise(inputs, mask)
            if self.solved is not None:
                self.solved.add(keys, delta)
        with torch.no_grad():
            S_out = inputs.styles + mask * delta * self.scale
            image = ed.synthesize(S_out, inputs.w)
            return edit_result(inputs, image, S_out - inputs.styles, ed.perceive(nets.identity, image),
                               ed.perceive(nets.landmarks, image))

    def optimise(self, inputs: EditInputs, mask: torch.Tensor) -> torch.Tensor:
        """Each pair's dS (in units of the std of S) after the configured Adam steps from zero."""
        ed, nets = self.editor, self.editor.nets
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
        return delta.detach()

    def edit(self, z: torch.Tensor, attribute_images: torch.Tensor, layers: str | None = None,
             gf: str | None = None) -> EditResult:
        """Optimise dS for every pair (z [B], attribute images [B]) and return the edits."""
        return self.edit_prepared(self.prepare(z, attribute_images), layers, gf)
