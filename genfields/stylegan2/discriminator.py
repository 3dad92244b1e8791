"""StyleGAN2's residual discriminator with minibatch standard deviation.

Used only to train our own generators: layer arithmetic follows the official design (equalised
learning rate, FIR [1,3,3,1] before every stride-2 conv, residual blocks scaled by sqrt(1/2),
a minibatch-stddev epilogue), computed channels-last for the CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genfields.stylegan2 import ops
from genfields.stylegan2.config import GeneratorConfig
from genfields.stylegan2.network import FullyConnectedLayer


class Conv2dLayer(nn.Module):
    """Equalised-lr conv with optional FIR-filtered 2x downsampling, bias and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, down: int = 1, bias: bool = True,
                 lrelu: bool = True):
        super().__init__()
        self.down, self.lrelu, self.kernel_size = down, lrelu, kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", ops.fir_filter_2d(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype).contiguous(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        if self.down > 1:
            taps = self.resample_filter.shape[-1]
            total = taps - self.down + self.kernel_size - 1
            x = ops.upfirdn2d(x, self.resample_filter, pad=((total + 1) // 2, total // 2, (total + 1) // 2, total // 2))
            x = F.conv2d(x, w, stride=self.down)
        else:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return ops.bias_act(x, bias, lrelu=self.lrelu, gain=ops.LRELU_GAIN if self.lrelu else 1.0)


class DiscriminatorBlock(nn.Module):
    """Residual block: (fromRGB), conv 3x3, conv 3x3 down 2, plus a 1x1 down-2 skip, summed * sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int):
        super().__init__()
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, down=2, bias=False, lrelu=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if x is None:
            x = self.fromrgb(img)
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return (y + x) * math.sqrt(0.5)


class MinibatchStdLayer(nn.Module):
    """Append the average over groups of the per-feature std across the group, as extra channels."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            g = math.gcd(n, g)
        f = self.num_channels
        y = x.float().reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/g, f]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels: int, resolution: int = 4, mbstd_group_size: int = 4, mbstd_channels: int = 1):
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_channels)
        self.conv = Conv2dLayer(in_channels + mbstd_channels, in_channels, 3)
        self.fc = FullyConnectedLayer(in_channels * resolution * resolution, in_channels, lrelu=True)
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """Blocks b{res} ... b8, then the 4x4 epilogue; channels as the generator's config."""

    def __init__(self, config: GeneratorConfig, mbstd_group_size: int = 4):
        super().__init__()
        self.resolutions = config.block_resolutions[::-1][:-1]  # img_resolution ... 8
        for res in self.resolutions:
            in_ch = 0 if res == config.img_resolution else config.channels(res)
            self.add_module(f"b{res}", DiscriminatorBlock(in_ch, config.channels(res), config.channels(res // 2),
                                                          config.img_channels))
        self.b4 = DiscriminatorEpilogue(config.channels(4), mbstd_group_size=mbstd_group_size)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = None
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)
