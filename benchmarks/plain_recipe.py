"""The "plain PyTorch" StyleGAN2 synthesis of early planning, on a genfields Generator's weights: the baseline that
issue 14 quotes (~10 images/s float32, ~20 with bfloat16 autocast, at paper256 batch 8; docs/design.md,
"Performance notes for contributors", has the quoted rates and docs/benchmarks.md what this recipe measures).

The recipe: the non-fused modulated convolution (scale the activations by the styles, one shared convolution,
scale the output by the demodulation coefficients), feature maps and weights channels-last, the upsampling
convolutions as a stride-2 transposed convolution followed by the FIR filter, and every other step (noise,
bias, leaky ReLU, gain, clamp, toRGB, the skip path) as its own PyTorch op. None of genfields' own measures:
no folded epilogue, no in-place ops, no weights' forms kept between calls, no Winograd.
`plain_runner(..., dtype=torch.bfloat16)` is the quoted "bfloat16 autocast"; `compile=True` the quoted
"torch.compile".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfields.stylegan2 import Generator, ops

CHANNELS_LAST = torch.channels_last


def _modulated_conv(x: torch.Tensor, layer, style: torch.Tensor) -> torch.Tensor:
    weight = layer.weight.contiguous(memory_format=CHANNELS_LAST)
    x = (x * style[:, :, None, None]).contiguous(memory_format=CHANNELS_LAST)
    if layer.up == 1:
        y = F.conv2d(x, weight, padding=1)
    else:
        y = F.conv_transpose2d(x, weight.transpose(0, 1).contiguous(memory_format=CHANNELS_LAST), stride=2)
        y = ops.upfirdn2d(y, layer.resample_filter, pad=(1, 1, 1, 1), gain=4)
    demod = ((layer.weight.square().sum(dim=[2, 3])[None] * style.square()[:, None, :]).sum(dim=2) + 1e-8).rsqrt()
    return y * demod[:, :, None, None].to(y.dtype)


def _synthesis_layer(x: torch.Tensor, layer, style: torch.Tensor) -> torch.Tensor:
    x = _modulated_conv(x, layer, style)
    x = x + layer.noise_const[None, None] * layer.noise_strength
    x = F.leaky_relu(x + layer.bias[None, :, None, None], ops.LRELU_SLOPE) * ops.LRELU_GAIN
    return x if layer.conv_clamp is None else x.clamp(-layer.conv_clamp, layer.conv_clamp)


def _to_rgb(x: torch.Tensor, torgb, style: torch.Tensor) -> torch.Tensor:
    weight = torgb.weight.contiguous(memory_format=CHANNELS_LAST)
    x = (x * (style * torgb.weight_gain)[:, :, None, None]).contiguous(memory_format=CHANNELS_LAST)
    y = F.conv2d(x, weight) + torgb.bias[None, :, None, None]
    return y if torgb.conv_clamp is None else y.clamp(-torgb.conv_clamp, torgb.conv_clamp)


def plain_synthesis(G: Generator, styles: list[torch.Tensor], rgb_styles: list[torch.Tensor]) -> torch.Tensor:
    """The image from per-layer styles (`G.layout.split(S)`) and toRGB styles, noise 'const'."""
    x = img = None
    k = 0
    for block, rgb_style in zip(G.synthesis.blocks, rgb_styles):
        if x is None:
            x = block.const[None].expand(styles[0].shape[0], -1, -1, -1).contiguous(memory_format=CHANNELS_LAST)
        for conv in block.convs:
            x = _synthesis_layer(x, conv, styles[k])
            k += 1
        y = _to_rgb(x, block.torgb, rgb_style).float()
        img = y if img is None else ops.upsample2d(img, block.resample_filter) + y
    return img


def plain_runner(G: Generator, S: torch.Tensor, w: torch.Tensor, dtype: torch.dtype = torch.float32,
                 compile: bool = False):
    """A no-argument callable that synthesises S's images with the plain recipe (bfloat16: under autocast)."""
    styles, rgb_styles = G.layout.split(S), G.rgb_styles(w)
    fn = torch.compile(plain_synthesis, dynamic=False) if compile else plain_synthesis

    def run() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=dtype == torch.bfloat16):
            return fn(G, styles, rgb_styles)
    return run
