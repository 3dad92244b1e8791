"""A plain reference synthesis: per-sample modulated weights, one grouped convolution per layer.

This is the textbook ("fused") form of StyleGAN2's modulated convolution, as the official code
runs it at inference: build each sample's weights w_b = weight * s_b, demodulate them, and run
all samples as groups of one convolution. It shares nothing with `ops.modulated_conv2d` but the
FIR filter, so tests use it to cross-check the fast non-fused path on any configuration, and
`benchmarks/synthesis.py` uses it as the baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfields.stylegan2 import ops
from genfields.stylegan2.network import Generator


def fused_modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                           up: int, resample_filter: torch.Tensor | None) -> torch.Tensor:
    b, cin, h, w = x.shape
    cout, _, k, _ = weight.shape
    wb = weight[None] * styles[:, None, :, None, None]  # [B, out, in, k, k]
    if demodulate:
        wb = wb * (wb.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    x = x.reshape(1, b * cin, h, w)
    if up == 1:
        out = F.conv2d(x, wb.reshape(b * cout, cin, k, k), padding=k // 2, groups=b)
    else:
        wt = wb.transpose(1, 2).reshape(b * cin, cout, k, k)
        out = F.conv_transpose2d(x, wt, stride=up, groups=b)
        pad0 = k // 2 + (resample_filter.shape[-1] + up - 1) // 2 - (k - 1)
        pad1 = k // 2 + (resample_filter.shape[-1] - up) // 2 - (k - up)
        out = ops.upfirdn2d(out, resample_filter, pad=(pad0, pad1, pad0, pad1), gain=up * up)
    return out.reshape(b, cout, *out.shape[-2:])


@torch.no_grad()
def reference_synthesize(G: Generator, S: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The image of `G.synthesize(S, w, noise_mode='const')`, computed with per-sample weights."""
    styles = G.layout.split(S)
    rgb_styles = G.rgb_styles(w)
    x = img = None
    k = 0
    for block, rgb_style in zip(G.synthesis.blocks, rgb_styles):
        if x is None:
            x = block.const.unsqueeze(0).repeat(S.shape[0], 1, 1, 1)
        for conv in block.convs:
            x = fused_modulated_conv2d(x, conv.weight, styles[k], True, conv.up, conv.resample_filter)
            x = x + conv.noise_const * conv.noise_strength
            x = ops.bias_act(x, conv.bias, lrelu=True, gain=ops.LRELU_GAIN, clamp=conv.conv_clamp)
            k += 1
        y = fused_modulated_conv2d(x, block.torgb.weight, rgb_style * block.torgb.weight_gain, False, 1, None)
        y = ops.bias_act(y, block.torgb.bias, lrelu=False, clamp=block.torgb.conv_clamp)
        img = y if img is None else ops.upsample2d(img, block.resample_filter) + y
    return img
