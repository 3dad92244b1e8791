"""The synthesis network's linear response to a perturbation of one conv layer's input.

`trace_synthesis` runs the generator once and keeps what fixes its Jacobian (styles, demodulation,
the slope of every activation); `linear_response` then carries unit impulses at a conv layer's
input through the remaining layers to the image, from that layer on and only over a window around
the response. It is the derivative of `Generator.synthesize` (leaky ReLU's slope is 1 or 0.2,
a clamp's is 0 where it clamps), computed with the network's own ops: the field measurements of
`genfields.fields` use it instead of re-running the whole synthesis per perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Sequence

import torch

from genfields.stylegan2 import ops

if TYPE_CHECKING:  # pragma: no cover
    from genfields.stylegan2.network import Generator

WINDOW_MARGIN = 4  # pixels around the impulse: keeps the response off the window's edges through every layer


@dataclass
class SynthesisTrace:
    """What one forward pass fixes for the linear response: per conv layer its styles, demodulation
    scale and activation slope (leaky ReLU's 1 or 0.2, 0 where clamped); per toRGB its styles and slope."""

    styles: list[torch.Tensor]
    scales: list[torch.Tensor]
    slopes: list[torch.Tensor]
    rgb_styles: list[torch.Tensor]
    rgb_slopes: list[torch.Tensor]

    @property
    def dtype(self) -> torch.dtype:
        return self.slopes[0].dtype

    def to(self, dtype: torch.dtype) -> "SynthesisTrace":
        """The same trace in another precision (the linear response runs in the trace's dtype)."""
        return SynthesisTrace(*([t.to(dtype) for t in getattr(self, f.name)] for f in fields(self)))


@torch.no_grad()
def trace_synthesis(G: "Generator", z: torch.Tensor) -> SynthesisTrace:
    """Run G once from z [B, z_dim] (noise 'const') and keep what its linear response needs."""
    dtype = next(G.parameters()).dtype
    slopes, rgb_slopes = [], []

    def conv_hook(module, args, out):
        slope = torch.where(out > 0, 1.0, ops.LRELU_SLOPE).to(out.dtype)
        slopes.append(slope if module.conv_clamp is None else slope * (out.abs() < module.conv_clamp))

    def rgb_hook(module, args, out):
        rgb_slopes.append(torch.ones_like(out) if module.conv_clamp is None else
                          (out.abs() < module.conv_clamp).to(out.dtype))

    hooks = [conv.register_forward_hook(conv_hook) for conv in G.synthesis.conv_layers]
    hooks += [block.torgb.register_forward_hook(rgb_hook) for block in G.synthesis.blocks]
    try:
        w = G.mapping(z.to(dtype))
        S = G.styles(w)
        G.synthesize(S, w=w, noise_mode="const")
    finally:
        for h in hooks:
            h.remove()
    styles = G.layout.split(S)
    scales = [ops.demodulation_coefficients(conv.weight, s) * ops.LRELU_GAIN
              for conv, s in zip(G.synthesis.conv_layers, styles)]
    rgb_styles = [s * block.torgb.weight_gain for s, block in zip(G.rgb_styles(w), G.synthesis.blocks)]
    return SynthesisTrace(styles, scales, slopes, rgb_styles, rgb_slopes)


@torch.no_grad()
def linear_response(G: "Generator", trace: SynthesisTrace, start: int, position: int,
                    channels: Sequence[int] | None = None, sample: int = 0,
                    check_window: bool = False) -> tuple[torch.Tensor, tuple[int, int]]:
    """The image's first-order response to unit impulses at (position, position) of conv layer `start`'s input.

    One direction per entry of `channels` (a unit on that channel), or, with `channels=None`, one
    direction with a unit on every channel; all for sample `sample` of the trace. The response is
    carried through the remaining layers on windows that double with the resolution (the ops are
    translation-equivariant; the window keeps `WINDOW_MARGIN` pixels beyond the response, and
    `check_window` raises RuntimeError if the response reaches an edge of a window inside the
    map). Returns the response [K, img_channels, m, m] and its window [a, b) of image rows and
    columns (the same for both).
    """
    layer = G.layout.layers[start]
    n = layer.in_resolution
    lo, hi = max(position - WINDOW_MARGIN, 0), min(position + WINDOW_MARGIN + 1, n)
    k_dirs = 1 if channels is None else len(channels)
    dx = torch.zeros(k_dirs, layer.channels, hi - lo, hi - lo, dtype=trace.dtype, device=trace.slopes[0].device)
    if channels is None:
        dx[..., position - lo, position - lo] = 1.0
    else:
        dx[torch.arange(k_dirs), torch.as_tensor(channels), position - lo, position - lo] = 1.0

    def folded(weight: torch.Tensor, style: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The sample's styles (and demodulation) folded into the weights: one convolution for every direction."""
        weight = weight * style[sample].reshape(1, -1, 1, 1)
        return (weight if scale is None else weight * scale[sample].reshape(-1, 1, 1, 1)).to(dx.dtype)

    d_img, k = None, 0
    for j, block in enumerate(G.synthesis.blocks):
        touched = False
        for conv in block.convs:
            if k >= start:
                lo, hi = lo * conv.up, hi * conv.up
                dx = ops.conv2d_resample(dx.contiguous(memory_format=torch.channels_last),
                                         folded(conv.weight, trace.styles[k], trace.scales[k]), conv.up,
                                         conv.resample_filter)
                dx.mul_(trace.slopes[k][sample:sample + 1, :, lo:hi, lo:hi])
                if check_window:
                    _check_window_edges(dx, (lo, hi), conv.resolution)
                touched = True
            k += 1
        if not touched:
            continue
        dy = ops.conv2d_resample(dx, folded(block.torgb.weight, trace.rgb_styles[j]), 1, None)
        dy.mul_(trace.rgb_slopes[j][sample:sample + 1, :, lo:hi, lo:hi])
        d_img = dy if d_img is None else ops.upsample2d(d_img, block.resample_filter).add_(dy)
    return d_img, (lo, hi)


def _check_window_edges(x: torch.Tensor, window: tuple[int, int], n: int) -> None:
    """The response must be zero on every edge of the window that lies inside the map."""
    lo, hi = window
    edges = ([x[..., 0, :], x[..., :, 0]] if lo > 0 else []) + ([x[..., -1, :], x[..., :, -1]] if hi < n else [])
    if any(bool(e.ne(0).any()) for e in edges):
        raise RuntimeError(f"the linear response reached the edge of its window {window} at resolution {n}")
