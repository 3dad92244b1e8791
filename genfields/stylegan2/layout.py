"""The channel-wise style space S: which slice of the flat vector belongs to which conv layer.

S is the concatenation of the style vectors of the conv layers conv0..conv{N-1} in forward
order (toRGB layers excluded), as in the paper and docs/design.md. Three notations name a channel:
- flat: the paper's `dS_448`, 1-based as the paper defines S = [S_d], 1 <= d <= dim
  (plain integers in the Python API are 0-based offsets into the tensor);
- conv: `conv1:6`, layer name and 0-based channel;
- StyleSpace: `2_6`, the layer index counting toRGB layers (conv0 is s0, conv1 is s2, ...) and
  the channel, as in Wu et al.'s StyleSpace.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import torch

from genfields.errors import ConfigError
from genfields.fields import eq1_generative_fields
from genfields.stylegan2.config import GeneratorConfig, get_architecture

KERNEL = 3


@dataclass(frozen=True)
class ConvLayer:
    """One styled conv layer: its names, its slice of S, its geometry and its generative field."""

    name: str  # conv{k}
    conv: int  # k, forward order of styled conv layers
    s_index: int  # StyleSpace layer index, counting toRGB layers
    official_name: str  # module path in NVIDIA's synthesis network, e.g. 'b8.conv0'
    offset: int  # start of the slice in flat S
    channels: int  # style dimension = input channels of the conv
    out_channels: int
    in_resolution: int  # feature-map resolution entering the conv
    resolution: int  # feature-map resolution leaving the conv (the paper's "input resolution")
    stride: int  # 2 for the upsampling conv of a block, else 1
    kernel: int
    gf: int  # generative field of the layer's input, by the paper's Eq. 1
    w_index: int  # which of the num_ws w vectors feeds this layer's affine

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.channels)

    def to_dict(self) -> dict:
        return asdict(self)


class StyleLayout:
    """The layout of S for a generator configuration (no weights needed)."""

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.layers: tuple[ConvLayer, ...] = tuple(_build_layers(config))
        self.dim = sum(layer.channels for layer in self.layers)
        self._by_name = {layer.name: layer for layer in self.layers}
        self._by_s_index = {layer.s_index: layer for layer in self.layers}

    @classmethod
    def from_arch(cls, name: str) -> "StyleLayout":
        return cls(get_architecture(name))

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        return f"StyleLayout({len(self.layers)} conv layers, dim={self.dim})"

    def layer(self, key: str | int) -> ConvLayer:
        """A layer by name (`conv3`) or conv index (3)."""
        name = f"conv{key}" if isinstance(key, int) else key
        if name not in self._by_name:
            raise ConfigError(f"no layer '{key}': this generator has conv0..conv{len(self.layers) - 1}")
        return self._by_name[name]

    # --- index notations -------------------------------------------------------------------
    def locate(self, flat: int) -> tuple[ConvLayer, int]:
        """The layer and channel of a 0-based flat offset into S."""
        if not 0 <= flat < self.dim:
            raise ConfigError(f"flat index {flat} is outside S (0..{self.dim - 1})")
        for layer in self.layers:
            if flat < layer.offset + layer.channels:
                return layer, flat - layer.offset
        raise AssertionError("unreachable")

    def parse_index(self, spec: str | int) -> int:
        """A 0-based flat offset from `dS_448` (1-based, paper), `conv1:6`, `2_6` or an int."""
        if isinstance(spec, int):
            self.locate(spec)
            return spec
        text = spec.strip()
        if not text.isascii():  # int() refuses digits such as '²' that str.isdigit() and \d accept
            raise ConfigError(f"cannot read style index '{spec}': use dS_448, conv1:6 or 2_6 (ASCII digits)")
        if m := re.fullmatch(r"(?:dS_?|S_?)(\d+)", text):
            flat = int(m.group(1)) - 1
            if not 0 <= flat < self.dim:
                raise ConfigError(f"'{spec}' is outside S: the paper's notation runs from dS_1 to dS_{self.dim}")
            return flat
        if m := re.fullmatch(r"conv(\d+):(\d+)", text):
            return self._channel_offset(self.layer(f"conv{m.group(1)}"), int(m.group(2)), spec)
        if m := re.fullmatch(r"s?(\d+)_(\d+)", text):
            s_index = int(m.group(1))
            if s_index not in self._by_s_index:
                raise ConfigError(f"'{spec}': StyleSpace layer {s_index} is a toRGB layer or does not exist")
            return self._channel_offset(self._by_s_index[s_index], int(m.group(2)), spec)
        if text.isdigit():
            return self.parse_index(int(text))
        raise ConfigError(f"cannot read style index '{spec}': use dS_448, conv1:6 or 2_6")

    def _channel_offset(self, layer: ConvLayer, channel: int, spec: str) -> int:
        if not 0 <= channel < layer.channels:
            raise ConfigError(f"'{spec}': {layer.name} has channels 0..{layer.channels - 1}")
        return layer.offset + channel

    def format_index(self, flat: int, notation: str = "paper") -> str:
        """Name a 0-based flat offset in `paper` (dS_448), `conv` (conv1:6) or `stylespace` (2_6) notation."""
        layer, channel = self.locate(flat)
        if notation == "paper":
            return f"dS_{flat + 1}"
        if notation == "conv":
            return f"{layer.name}:{channel}"
        if notation == "stylespace":
            return f"{layer.s_index}_{channel}"
        raise ConfigError(f"unknown notation '{notation}': use paper, conv or stylespace")

    # --- masks ------------------------------------------------------------------------------
    def conv_range(self, spec: str) -> list[ConvLayer]:
        """Layers named by `conv3`, `conv0-conv7` or `0-7` (inclusive), or a comma list of those."""
        chosen: list[ConvLayer] = []
        for part in spec.split(","):
            m = re.fullmatch(r"\s*(?:conv)?(\d+)\s*(?:-\s*(?:conv)?(\d+)\s*)?", part)
            if not m:
                raise ConfigError(f"cannot read conv range '{part.strip()}': use e.g. conv0-conv7")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if lo > hi:
                raise ConfigError(f"empty conv range '{part.strip()}'")
            chosen += [self.layer(k) for k in range(lo, hi + 1)]
        return chosen

    def gf_range(self, spec: str, fields: dict[str, int] | None = None) -> list[ConvLayer]:
        """Layers whose generative field lies in `lo-hi` (inclusive), e.g. `43-506`.

        `fields` maps layer name to field size; by default the Eq. 1 sizes.
        """
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", spec)
        if not m:
            raise ConfigError(f"cannot read generative-field range '{spec}': use e.g. 43-506")
        lo, hi = int(m.group(1)), int(m.group(2))
        sizes = fields or {layer.name: layer.gf for layer in self.layers}
        chosen = [layer for layer in self.layers if lo <= sizes[layer.name] <= hi]
        if not chosen:
            raise ConfigError(f"no conv layer has a generative field in {lo}-{hi}")
        return chosen

    def mask(self, convs: str | None = None, gf: str | None = None) -> torch.Tensor:
        """A float mask over S that is 1 on the chosen layers and 0 elsewhere (all ones if none chosen)."""
        m = torch.zeros(self.dim)
        layers = list(self.layers)
        if convs is not None:
            layers = [layer for layer in layers if layer in self.conv_range(convs)]
        if gf is not None:
            layers = [layer for layer in layers if layer in self.gf_range(gf)]
        for layer in layers:
            m[layer.slice] = 1.0
        return m

    # --- splitting S ------------------------------------------------------------------------
    def split(self, S: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer style vectors [B, C_k] from flat S [B, dim]."""
        if S.shape[-1] != self.dim:
            raise ConfigError(f"S has {S.shape[-1]} dims, this layout has {self.dim}")
        return list(torch.split(S, [layer.channels for layer in self.layers], dim=-1))

    def join(self, styles: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(styles, dim=-1)


def _build_layers(config: GeneratorConfig) -> list[ConvLayer]:
    specs = []  # (official_name, in_ch, out_ch, in_res, res, stride, block_index)
    for block_index, res in enumerate(config.block_resolutions):
        if res == 4:
            specs.append(("b4.conv1", config.channels(4), config.channels(4), 4, 4, 1, block_index))
        else:
            specs.append((f"b{res}.conv0", config.channels(res // 2), config.channels(res), res // 2, res, 2, block_index))
            specs.append((f"b{res}.conv1", config.channels(res), config.channels(res), res, res, 1, block_index))
    gfs = eq1_generative_fields([KERNEL] * len(specs), [s[5] for s in specs])
    layers, offset = [], 0
    for k, (official, cin, cout, in_res, res, stride, block_index) in enumerate(specs):
        layers.append(ConvLayer(name=f"conv{k}", conv=k, s_index=k + block_index, official_name=official,
                                offset=offset, channels=cin, out_channels=cout, in_resolution=in_res,
                                resolution=res, stride=stride, kernel=KERNEL, gf=gfs[k], w_index=k))
        offset += cin
    return layers
