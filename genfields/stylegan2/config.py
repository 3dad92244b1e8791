"""Generator configuration: one dataclass, named architectures, and JSON (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from genfields.errors import ConfigError, dataclass_from_dict


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to build a StyleGAN2 generator (the official `Generator` arguments).

    Channels per resolution follow the official rule `min(channel_base // res, channel_max)`.
    `num_fp16_res` is recorded for fidelity to the source checkpoint; this implementation always
    computes in float32 (like the official code with `force_fp32=True`).
    """

    img_resolution: int = 256
    img_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int = 16384
    channel_max: int = 512
    conv_clamp: float | None = None
    num_fp16_res: int = 0
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        log2 = math.log2(self.img_resolution) if self.img_resolution > 0 else -1
        if log2 < 2 or log2 != int(log2):
            raise ConfigError(f"img_resolution must be a power of two >= 4, got {self.img_resolution}")
        for name in ("img_channels", "z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        object.__setattr__(self, "resample_filter", tuple(int(t) for t in self.resample_filter))

    @property
    def block_resolutions(self) -> list[int]:
        """Resolutions of the synthesis blocks: 4, 8, ..., img_resolution."""
        return [2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    def channels(self, res: int) -> int:
        """Feature channels of the block at resolution `res`."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_conv_layers(self) -> int:
        """Conv layers with a style vector (toRGB excluded): one in the 4x4 block, two in each other."""
        return 2 * len(self.block_resolutions) - 1

    @property
    def num_ws(self) -> int:
        """Number of per-layer w inputs: one per conv layer plus one for the last toRGB."""
        return self.num_conv_layers + 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["resample_filter"] = list(self.resample_filter)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        return dataclass_from_dict(cls, d, "generator config")


ARCHITECTURES: dict[str, GeneratorConfig] = {
    # NVIDIA's FFHQ 256x256 'paper256' configuration (the paper's model, 4928-dim S).
    "paper256": GeneratorConfig(img_resolution=256, channel_base=16384, channel_max=512, mapping_layers=8,
                                conv_clamp=256, num_fp16_res=4),
    # The compact 64x64 model of the embedded default (1088-dim S).
    "synth64": GeneratorConfig(img_resolution=64, channel_base=4096, channel_max=128, mapping_layers=8),
    # StyleGAN2 config F at 1024x1024 (the original FFHQ model).
    "config-f1024": GeneratorConfig(img_resolution=1024, channel_base=32768, channel_max=512, mapping_layers=8),
    # A tiny configuration for tests.
    "tiny16": GeneratorConfig(img_resolution=16, z_dim=32, w_dim=32, channel_base=256, channel_max=32,
                              mapping_layers=2),
}


def get_architecture(name: str) -> GeneratorConfig:
    """The named architecture, or a clear error listing the known names."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ConfigError(f"unknown architecture '{name}'; known: {', '.join(ARCHITECTURES)}") from None
