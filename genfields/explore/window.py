"""One pixel of `Generator.synthesize`, computed over the window of units that reach it.

The channel ranking back-propagates one pixel to S. Through the full synthesis that costs a dense forward
and backward pass of every high-resolution layer, although the pixel depends on a few units there: its
generative field. `synthesize_pixel` runs the low-resolution blocks in full and, from the first block
where that pays, only a window around the pixel, wide enough that the window's zero-padded edges
cannot reach it (the exact field of the block's first layer, plus a margin). Every op is the
network's own and shifts with its input (convolutions, the 2x upsampling by transposed conv and FIR
filter, the skip path's FIR upsampling), so the pixel and its gradient equal those of the full image:
tests/test_explore.py checks both at the centre, the borders and the corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genfields.fields import exact_field_intervals
from genfields.stylegan2 import ops

MARGIN_UNITS = 2  # units beyond half the exact field on each side of the window


@dataclass(frozen=True)
class Window:
    """From block `block` on, only units [x0, x0 + size) x [y0, y0 + size) of its input (clipped to the map)."""

    block: int
    x0: int
    y0: int
    x1: int
    y1: int


def pixel_window(G, x: int, y: int) -> Window | None:
    """The window for pixel (x, y) of G's image, or None when no block's window is at most half its input."""
    layout = G.layout
    resolution = G.config.img_resolution
    first_conv = 0
    for index, block in enumerate(G.synthesis.blocks):
        convs = len(block.convs)
        if index > 0:
            layer = layout.layers[first_conv]  # the block's upsampling conv: its input is the previous block's
            scale = resolution // layer.in_resolution
            field = exact_field_intervals(layout, position=layer.in_resolution // 2)[layer.name].size
            half = -(-field // (2 * scale)) + MARGIN_UNITS
            if 2 * (2 * half + 1) <= layer.in_resolution:
                n = layer.in_resolution
                ux, uy = x // scale, y // scale
                return Window(index, max(0, ux - half), max(0, uy - half), min(n, ux + half + 1),
                              min(n, uy + half + 1))
        first_conv += convs
    return None


def synthesize_pixel(G, S: torch.Tensor, w: torch.Tensor, noise_mode: str, x: int, y: int) -> torch.Tensor:
    """RGB [3] of pixel (x, y) of `G.synthesize(S, w, noise_mode)` for one sample (noise 'const' or 'none')."""
    if noise_mode not in ("const", "none"):
        raise ValueError("synthesize_pixel draws no random noise: use 'const' or 'none'")
    window = pixel_window(G, x, y)
    if window is None:
        return G.synthesize(S, w, noise_mode=noise_mode)[0, :, y, x]
    styles, rgb_styles = G.layout.split(S), G.rgb_styles(w)
    features = image = None
    k = 0
    ox = oy = 0
    for index, (block, rgb_style) in enumerate(zip(G.synthesis.blocks, rgb_styles)):
        n = len(block.convs)
        if index < window.block:
            features, image = block(features, image, styles[k:k + n], rgb_style, noise_mode, None)
        else:
            if index == window.block:
                ox, oy = window.x0, window.y0
                features = features[..., window.y0:window.y1, window.x0:window.x1]
                image = image[..., window.y0:window.y1, window.x0:window.x1]
            ox, oy = 2 * ox, 2 * oy  # every block doubles the resolution
            features, image = _block_on_window(block, features, image, styles[k:k + n], rgb_style, noise_mode,
                                               ox, oy)
        k += n
    return image[0, :, y - oy, x - ox]


def _block_on_window(block, features, image, styles, rgb_style, noise_mode: str, ox: int, oy: int):
    """`SynthesisBlock.forward` on a window whose output starts at (ox, oy): the layers' constant noise and
    bias (their `_shift`, full-size) are cut to the window."""
    for conv, style in zip(block.convs, styles):
        scale = ops.demodulation_coefficients(conv.weight, style) * ops.LRELU_GAIN
        shift = conv._shift(features, noise_mode, None)
        h, w = features.shape[-2] * conv.up, features.shape[-1] * conv.up
        if shift.shape[-1] > 1:
            shift = shift[..., oy:oy + h, ox:ox + w].contiguous(memory_format=torch.channels_last)
        out = ops.modulated_conv2d(features, conv.weight, style, up=conv.up, resample_filter=conv.resample_filter,
                                   out_scale=scale, shift=shift)
        features = ops.lrelu_clamp(out, conv.conv_clamp)
    rgb = block.torgb(features, rgb_style)
    return features, rgb if image is None else ops.upsample2d(image, block.resample_filter) + rgb
