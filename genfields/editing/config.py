"""Configuration of the editing pipeline: the network, the losses and training, as dataclasses.

Every run saves its `TrainConfig` (with the nested `ModelConfig` and `LossConfig`) as
config.json; a shipped editor carries its `ModelConfig`. The four rows of the paper's Table 2
and the W-space baseline of Table 1 are named configurations (`NAMED_CONFIGS`), not code paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from genfields.errors import (BATCH_MAX, MINUTES_MAX, STEPS_MAX, WIDTH_MAX, ConfigError, check_number,
                              dataclass_from_dict)

KINDS = ("style", "wspace")
LAYERS_MAX = 64  # hidden layers of an editor network
STYLE_DIM_MAX = 1_000_000  # channels of S (or w) of the generator an editor is for
PARAMS_MAX = 1e9  # parameters of an editor network (the paper's: about 12 million)
MASK_MODES = ("train", "inference")
IDENTITY_INPUTS = ("none", "f_attr", "styles")


@dataclass
class ModelConfig:
    """The trained network: M_ref in S (`style`) or the IDDISEN-like mapper to W (`wspace`)."""

    kind: str = "style"
    concat: bool = True  # input F_id ++ F_attr (the paper's "default configuration"); False: F_attr only
    hidden: tuple[int, ...] = (1024, 1024, 1024)
    f_id_dim: int = 128
    f_attr_dim: int = 256
    s_dim: int = 0  # style-space dimension of the generator (filled in from it)
    w_dim: int = 0
    scale_by_std: bool = True  # outputs in units of the per-channel std of S (or w) of the generated set
    layers: str | None = None  # control units, e.g. "conv0-conv4" (None: all)
    gf: str | None = None  # or by generative field (Eq. 1), e.g. "43-506"
    mask_mode: str = "train"  # train: mask while training and editing; inference: only when editing
    disc_hidden: tuple[int, ...] = (512, 512)  # wspace: the W discriminator
    # IDDISEN trains its attribute encoder: F_attr then comes from a trainable copy of E_attr held in the network
    train_attributes: bool = False
    attr_network: str = ""  # the perception network that copy starts from (filled in from the perception preset)
    # Beyond the paper (`paper+id`, `paper+ids`): M_ref also sees the identity's own F_attr(I_id), or its S_id
    identity_input: str = "none"

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.disc_hidden = tuple(int(h) for h in self.disc_hidden)
        self._check_sizes()
        if self.kind not in KINDS:
            raise ConfigError(f"unknown model kind '{self.kind}' (choose from {', '.join(KINDS)})")
        if self.mask_mode not in MASK_MODES:
            raise ConfigError(f"unknown mask mode '{self.mask_mode}' (choose from {', '.join(MASK_MODES)})")
        if self.kind == "wspace" and (self.layers or self.gf):
            raise ConfigError("masks (--layers/--gf) select style channels: they do not apply to the W-space baseline")
        if self.identity_input not in IDENTITY_INPUTS:
            raise ConfigError(f"unknown identity input '{self.identity_input}' (choose from "
                              f"{', '.join(IDENTITY_INPUTS)})")
        if self.train_attributes and self.identity_input == "f_attr":
            raise ConfigError("a trainable attribute encoder and the F_attr(I_id) identity input do not combine")
        if self.kind == "wspace" and self.identity_input != "none":
            raise ConfigError("the identity inputs F_attr(I_id) / S_id are for M_ref (style kind), not the W baseline")

    def _check_sizes(self) -> None:
        """Refuse widths out of bounds (a hostile or mistyped config.json) before any network is built."""
        for name in ("hidden", "disc_hidden"):
            widths = getattr(self, name)
            if len(widths) > LAYERS_MAX:
                raise ConfigError(f"{name} must have at most {LAYERS_MAX} layers, got {len(widths)}")
            for width in widths:
                check_number(f"{name} width", width, 1, WIDTH_MAX)
        for name in ("f_id_dim", "f_attr_dim"):
            check_number(name, int(getattr(self, name)), 1, WIDTH_MAX)
        for name in ("s_dim", "w_dim"):
            check_number(name, int(getattr(self, name)), 0, STYLE_DIM_MAX)
        widths = [self.f_attr_dim + self.f_id_dim + self.s_dim, *self.hidden, max(self.s_dim, self.w_dim, 1)]
        params = sum(a * b for a, b in zip(widths, widths[1:]))
        if params > PARAMS_MAX:
            raise ConfigError(f"the network would hold about {params:.2g} parameters, more than {PARAMS_MAX:.0e}")

    @property
    def identity_dim(self) -> int:
        """Width of the identity's own features M_ref sees beyond the paper (0, F_attr(I_id) or S_id)."""
        return {"none": 0, "f_attr": self.f_attr_dim, "styles": self.s_dim}[self.identity_input]

    @property
    def input_dim(self) -> int:
        return self.f_attr_dim + (self.f_id_dim if self.concat else 0) + self.identity_dim


@dataclass
class LossConfig:
    """Weights of the terms of Eq. 11 plus the regularisers; a weight of 0 switches its term off.

    total = identity * L_id + attribute * (L_lnd + L_pose) + reconstruction * L_rec
            + style_reg * (-L(S)) + adversarial * L_adv
    """

    identity: float = 1.0  # lambda_1
    attribute: float = 0.01  # lambda_2
    reconstruction: float = 0.02  # lambda_3 (reconstruction steps only)
    landmarks: bool = True  # L_lnd inside L_attr
    pose: bool = True  # L_pose (the Euler-angle loss) inside L_attr
    style_reg: float = 0.0  # weight of -L(S), Eq. 12
    adversarial: float = 0.0  # wspace: non-saturating loss of the W discriminator
    msssim_alpha: float = 0.84  # alpha of L_mix (Eq. 9), Zhao et al.
    msssim_win: int | None = None  # MS-SSIM window; None: the largest odd size <= 11 the resolution allows


@dataclass
class TrainConfig:
    """One editor training run (saved as the run's config.json)."""

    preset: str = "synth64"
    config_name: str = "paper"
    generator: str = ""  # generator name or path ("" = the preset's)
    dataset: str = ""  # a `make-dataset` folder
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    steps: int = 20000
    batch: int = 6
    lr_start: float = 1e-4
    lr_end: float = 1e-6
    beta1: float = 0.9
    beta2: float = 0.999
    lr_disc: float = 1e-4  # wspace: the W discriminator
    cross_ratio: int = 3  # cross steps per reconstruction step
    truncation: float = 1.0
    amp: bool = False  # the synthesis under torch.autocast (genfields.devices); the rest float32
    seed: int = 0
    sample_every: int = 500
    log_every: int = 10
    checkpoint_minutes: float = 10.0
    init: str = ""  # an editor (shipped name or folder) whose weights start the run: a fine-tune ("" = from zero)
    history: list = field(default_factory=list)  # run-length changes on resume: [{"at_step", "steps_before", "steps"}]

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if isinstance(self.loss, dict):
            self.loss = LossConfig(**self.loss)
        bounds = (("steps", STEPS_MAX), ("batch", BATCH_MAX), ("cross_ratio", 1000), ("sample_every", STEPS_MAX),
                  ("log_every", STEPS_MAX))
        for name, most in bounds:  # a run's config.json is read back on --resume: bounded like the options
            check_number(name, int(getattr(self, name)), 0 if name == "sample_every" else 1, most)
        check_number("checkpoint_minutes", float(self.checkpoint_minutes), 0, MINUTES_MAX, min_open=True)
        if not 0 < self.lr_end <= self.lr_start:
            raise ConfigError(f"need 0 < lr_end <= lr_start, got {self.lr_start} -> {self.lr_end}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, d, "training config")


# The paper's Table 2 rows (each on top of the previous one), the Table 1 baseline (IDDISEN-like: its
# attribute encoder trained with the mapper, as Nitzan et al. do), and two extensions beyond the paper
# (M_ref also sees the identity's own attribute features or styles; reported as ours, never as the paper's).
NAMED_CONFIGS: dict[str, dict] = {
    "default": {"model": {"concat": True}, "loss": {"pose": False, "style_reg": False}},
    "no-concat": {"model": {"concat": False}, "loss": {"pose": False, "style_reg": False}},
    "style-reg": {"model": {"concat": False}, "loss": {"pose": False, "style_reg": True}},
    "paper": {"model": {"concat": False}, "loss": {"pose": True, "style_reg": True}},
    "wspace": {"model": {"kind": "wspace", "concat": True, "train_attributes": True},
               "loss": {"pose": False, "style_reg": False, "adversarial": True}},
    "paper+id": {"model": {"concat": False, "identity_input": "f_attr"}, "loss": {"pose": True, "style_reg": True}},
    "paper+ids": {"model": {"concat": False, "identity_input": "styles"}, "loss": {"pose": True, "style_reg": True}},
}
EXTENSIONS = ("paper+id", "paper+ids")  # configurations beyond the paper


def named_config(name: str, loss: LossConfig, style_reg_weight: float, adversarial_weight: float,
                 model: ModelConfig) -> tuple[ModelConfig, LossConfig]:
    """The model and loss of a named configuration, from a preset's defaults."""
    if name not in NAMED_CONFIGS:
        raise ConfigError(f"unknown editor configuration '{name}' (choose from {', '.join(NAMED_CONFIGS)})")
    spec = NAMED_CONFIGS[name]
    loss_spec = dict(spec["loss"])
    loss_spec["style_reg"] = style_reg_weight if loss_spec["style_reg"] else 0.0
    loss_spec["adversarial"] = adversarial_weight if loss_spec.pop("adversarial", False) else 0.0
    return dataclasses.replace(model, **spec["model"]), dataclasses.replace(loss, **loss_spec)
