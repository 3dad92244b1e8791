"""Generator configuration: one dataclass, named architectures, and JSON (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from genfields.errors import ConfigError, dataclass_from_dict


# What a config read from a file may claim: generous upper limits, so that a hostile or broken config
# is refused in one line instead of attempting a huge allocation.
_INT_LIMITS = {"img_resolution": 8192, "img_channels": 16, "z_dim": 8192, "w_dim": 8192, "mapping_layers": 64,
               "channel_base": 1 << 22, "channel_max": 8192}
MAX_PARAMETERS = 1_000_000_000


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
        """Check every field before anything is allocated (a config read from a file may claim anything)."""
        for name, most in _INT_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if not 1 <= value <= most:
                raise ConfigError(f"{name} must be in 1..{most}, got {value}")
            object.__setattr__(self, name, int(value))
        log2 = math.log2(self.img_resolution)
        if log2 < 2 or log2 != int(log2):
            raise ConfigError(f"img_resolution must be a power of two >= 4, got {self.img_resolution}")
        for name in ("mapping_lr_multiplier", "w_avg_beta", "conv_clamp"):
            value = getattr(self, name)
            if value is None and name == "conv_clamp":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        taps = self.resample_filter
        if (not isinstance(taps, (list, tuple)) or not 1 <= len(taps) <= 16
                or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in taps)):
            raise ConfigError(f"resample_filter must be 1..16 numbers, got {taps!r}")
        if not isinstance(self.num_fp16_res, int) or isinstance(self.num_fp16_res, bool) or self.num_fp16_res < 0:
            raise ConfigError(f"num_fp16_res must be an integer >= 0, got {self.num_fp16_res!r}")
        object.__setattr__(self, "resample_filter", tuple(int(t) for t in taps))
        if self.estimated_parameters > MAX_PARAMETERS:
            raise ConfigError(f"the config implies about {self.estimated_parameters / 1e6:,.0f}M parameters, above "
                              f"the limit of {MAX_PARAMETERS / 1e6:,.0f}M (config-f1024 has about 30M); refused before "
                              "allocating")

    @property
    def estimated_parameters(self) -> int:
        """Parameters of mapping + synthesis (affines, 3x3 convs, toRGB), computed from the fields alone."""
        mapping = self.z_dim * self.w_dim + (self.mapping_layers - 1) * self.w_dim ** 2
        synthesis, previous = 0, self.channels(4)
        for res in self.block_resolutions:
            ch = self.channels(res)
            convs = [(ch, ch)] if res == 4 else [(previous, ch), (ch, ch)]
            for cin, cout in convs:
                synthesis += self.w_dim * cin + cin * cout * 9
            synthesis += self.w_dim * ch + ch * self.img_channels
            previous = ch
        return mapping + synthesis

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
