"""StyleGAN2 generator with an explicit channel-wise style space S.

Module and parameter names follow NVIDIA's stylegan2-ada-pytorch (`mapping.fc0.weight`,
`synthesis.b8.conv0.affine.weight`, ...), so an official checkpoint maps onto this network
tensor for tensor. The forward pass is split where the paper needs it:

    w = G.mapping(z)            # [B, num_ws, w_dim]
    S = G.styles(w)             # [B, layout.dim]: affine outputs of conv0..conv{N-1}
    img = G.synthesize(S, w=w)  # toRGB styles come from w and are never edited

so an edit in style space is `G.synthesize(S + dS, w=w)`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import nn

from genfields.errors import ConfigError
from genfields.stylegan2 import ops
from genfields.stylegan2.config import GeneratorConfig, get_architecture
from genfields.stylegan2.layout import StyleLayout

NoiseMode = Literal["random", "const", "none"]
NOISE_MODES = ("random", "const", "none")
SYNTHESIS_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}  # `synthesize(dtype=...)`, `--dtype`


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalised learning rate: weights stored at N(0, 1/lr_multiplier)."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool = False, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0):
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.matmul((self.weight * self.weight_gain).t().to(x.dtype))
        return ops.bias_act(x, self.bias * self.bias_gain, lrelu=self.lrelu,
                            gain=ops.LRELU_GAIN if self.lrelu else 1.0)


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation, an MLP with lr multiplier, w_avg tracking and truncation."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], lrelu=True,
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        """Map z [B, z_dim] to w [B, num_ws, w_dim], truncated towards w_avg by `truncation_psi`."""
        if z.ndim != 2 or z.shape[1] != self.z_dim or z.shape[0] == 0:
            raise ConfigError(f"z must have shape [B, {self.z_dim}] with B >= 1, got {list(z.shape)}")
        if not math.isfinite(truncation_psi):
            raise ConfigError(f"truncation_psi must be a finite number, got {truncation_psi}")
        if truncation_cutoff is not None and not 0 <= truncation_cutoff <= self.num_ws:
            raise ConfigError(f"truncation_cutoff must be in 0..{self.num_ws}, got {truncation_cutoff}")
        x = ops.normalize_2nd_moment(z.to(self.w_avg.dtype))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = torch.cat([self.w_avg.lerp(x[:, :cutoff], truncation_psi), x[:, cutoff:]], dim=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling x2), noise, bias, leaky ReLU, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None, kernel_size: int = 3):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", ops.fir_filter_2d(), persistent=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise_mode: NoiseMode = "const",
                noise_generator: torch.Generator | None = None) -> torch.Tensor:
        # Demodulation, noise, bias and the leaky ReLU gain folded into the conv's epilogue:
        # lrelu(conv * d + noise + b) * g == lrelu(conv * (d * g) + (noise + b) * g) for g > 0.
        scale = ops.demodulation_coefficients(self.weight, style) * ops.LRELU_GAIN
        x = ops.modulated_conv2d(x, self.weight, style, up=self.up, resample_filter=self.resample_filter,
                                 out_scale=scale, shift=self._shift(x, noise_mode, noise_generator))
        return ops.lrelu_clamp(x, self.conv_clamp)

    def _shift(self, x: torch.Tensor, noise_mode: NoiseMode, noise_generator: torch.Generator | None) -> torch.Tensor:
        """(noise + bias) * gain, built directly in channels-last layout when it is full-size."""
        bias = self.bias.to(x.dtype).reshape(1, -1, 1, 1) * ops.LRELU_GAIN
        if noise_mode == "none":
            return bias
        if noise_mode == "const":
            noise = self.noise_const.to(x.dtype).reshape(1, 1, self.resolution, self.resolution)
        else:
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, generator=noise_generator,
                                dtype=x.dtype, device=x.device)
        noise = noise * (self.noise_strength * ops.LRELU_GAIN)
        if torch.is_grad_enabled() and (bias.requires_grad or noise.requires_grad):
            return (bias + noise).contiguous(memory_format=torch.channels_last)  # `out=` has no autograd
        shift = torch.empty(noise.shape[0], bias.shape[1], self.resolution, self.resolution, dtype=x.dtype,
                            device=x.device, memory_format=torch.channels_last)
        return torch.add(bias, noise, out=shift)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = ops.modulated_conv2d(x, self.weight, style * self.weight_gain, shift=self.bias.reshape(1, -1, 1, 1))
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (learned constant | upsampling conv0), conv1, and a toRGB on the skip path."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None):
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", ops.fir_filter_2d(), persistent=False)

    @property
    def convs(self) -> list[SynthesisLayer]:
        return [self.conv1] if hasattr(self, "const") else [self.conv0, self.conv1]

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, styles: list[torch.Tensor],
                rgb_style: torch.Tensor, noise_mode: NoiseMode, noise_generator: torch.Generator | None,
                dtype: torch.dtype | None = None):
        """`dtype`: the activations' dtype (the layers follow their input's); the image stays in the styles'."""
        if x is None:
            x = self.const.unsqueeze(0).expand(styles[0].shape[0], -1, -1, -1)
            x = x if dtype is None else x.to(dtype)
        for conv, style in zip(self.convs, styles):
            x = conv(x, style, noise_mode=noise_mode, noise_generator=noise_generator)
        y = self.torgb(x, rgb_style)
        y = y if dtype is None else y.to(rgb_style.dtype)
        img = y if img is None else ops.upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """Blocks b4 ... b{img_resolution}; runs from per-layer styles."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.block_resolutions = config.block_resolutions
        for res in self.block_resolutions:
            in_channels = config.channels(res // 2) if res > 4 else 0
            self.add_module(f"b{res}", SynthesisBlock(in_channels, config.channels(res), config.w_dim, res,
                                                      config.img_channels, config.conv_clamp))

    @property
    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    @property
    def conv_layers(self) -> list[SynthesisLayer]:
        """The styled conv layers conv0..conv{N-1} in forward order."""
        return [conv for block in self.blocks for conv in block.convs]

    def forward(self, styles: list[torch.Tensor], rgb_styles: list[torch.Tensor], noise_mode: NoiseMode = "const",
                noise_generator: torch.Generator | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got '{noise_mode}'")
        x = img = None
        k = 0
        for block, rgb_style in zip(self.blocks, rgb_styles):
            n = len(block.convs)
            x, img = block(x, img, styles[k:k + n], rgb_style, noise_mode, noise_generator, dtype)
            k += n
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: `mapping` (z -> w), `styles` (w -> S), `synthesize` (S -> image)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.layout = StyleLayout(config)
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, config.num_ws, config.mapping_layers,
                                      config.mapping_lr_multiplier, config.w_avg_beta)
        self.synthesis = SynthesisNetwork(config)

    @classmethod
    def from_arch(cls, name: str, seed: int | None = 0) -> "Generator":
        """A randomly initialised generator of a named architecture (seeded)."""
        config = get_architecture(name)
        if seed is not None:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                return cls(config).eval()
        return cls(config).eval()

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    def conv_module(self, name: str) -> SynthesisLayer:
        """The module of conv layer `name` (e.g. for hooks)."""
        return self.synthesis.conv_layers[self.layout.layer(name).conv]

    def _per_layer_w(self, w: torch.Tensor) -> torch.Tensor:
        if w.ndim == 2:
            w = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if w.ndim != 3 or w.shape[1:] != (self.num_ws, self.config.w_dim) or w.shape[0] == 0:
            raise ConfigError(f"w must be [B, {self.config.w_dim}] or [B, {self.num_ws}, {self.config.w_dim}] with "
                              f"B >= 1, got {list(w.shape)}")
        return w

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """Flat S [B, layout.dim]: the affine outputs of conv0..conv{N-1} (toRGB excluded)."""
        w = self._per_layer_w(w)
        convs = self.synthesis.conv_layers
        return torch.cat([conv.affine(w[:, layer.w_index]) for conv, layer in zip(convs, self.layout)], dim=1)

    def rgb_styles(self, w: torch.Tensor) -> list[torch.Tensor]:
        """Affine outputs of the toRGB layers; block j's toRGB reads the w after its last conv."""
        w = self._per_layer_w(w)
        out, k = [], 0
        for block in self.synthesis.blocks:
            k += len(block.convs)
            out.append(block.torgb.affine(w[:, k]))
        return out

    def synthesize(self, S: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "const",
                   noise_generator: torch.Generator | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Image [B, C, H, W] from flat styles S, with the toRGB styles taken from w.

        `dtype=torch.bfloat16` keeps the feature maps in bfloat16 (the layers convert their weights;
        styles, demodulation and the image stay float32): faster on a CPU, with the error against
        float32 given in docs/benchmarks.md. The default computes in S's dtype.
        """
        if S.ndim != 2 or S.shape[1] != self.layout.dim or S.shape[0] == 0:
            raise ConfigError(f"S must be [B, {self.layout.dim}] with B >= 1, got {list(S.shape)}")
        if w.shape[:1] != S.shape[:1]:
            raise ConfigError(f"S and w must hold the same batch: S has {S.shape[0]}, w has {list(w.shape)[:1] or 0}")
        if not torch.isfinite(S).all():
            raise ConfigError("S contains NaN or infinite values")
        if dtype is None or dtype == S.dtype:
            return self.synthesis(self.layout.split(S), self.rgb_styles(w), noise_mode, noise_generator)
        if dtype not in SYNTHESIS_DTYPES.values():
            raise ConfigError(f"dtype must be one of {', '.join(SYNTHESIS_DTYPES)}, got {dtype}")
        return self.synthesis(self.layout.split(S), self.rgb_styles(w), noise_mode, noise_generator, dtype)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: NoiseMode = "const", noise_generator: torch.Generator | None = None) -> torch.Tensor:
        """The plain path z -> image (noise_mode defaults to 'const', like the official generate.py)."""
        w = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(self.styles(w), w, noise_mode, noise_generator)

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in module.parameters())
                for name, module in (("mapping", self.mapping), ("synthesis", self.synthesis), ("total", self))}


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """z for a seed, as in the official generate.py: `RandomState(seed).randn(1, z_dim)`."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float()


def generator_batches(G: Generator, n: int, seed: int, batch: int = 50, truncation_psi: float = 1.0):
    """n images from G with z ~ N(0, 1) seeded by `seed`, noise drawn per batch (as in training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for start in range(0, n, batch):
            z = torch.randn(min(batch, n - start), G.z_dim, generator=gen)
            yield G(z, truncation_psi=truncation_psi, noise_mode="random", noise_generator=gen)
