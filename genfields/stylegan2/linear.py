"""The synthesis network's linear response to a perturbation of one conv layer's input.

`trace_synthesis` runs the generator once and keeps what fixes its Jacobian (styles, demodulation,
the slope of every activation); `linear_response` then carries unit impulses at a conv layer's
input through the remaining layers to the image, from that layer on and only over a window around
the response. It is the derivative of `Generator.synthesize` (leaky ReLU's slope is 1 or 0.2,
a clamp's is 0 where it clamps), computed with the network's own ops: the field measurements of
`genfields.stylegan2.field_measurement` use it instead of re-running the whole synthesis per perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Sequence

import torch

from genfields.fields import Band, lines_reaching
from genfields.stylegan2 import ops

if TYPE_CHECKING:  # pragma: no cover
    from genfields.stylegan2.network import Generator

WINDOW_MARGIN = 4  # pixels around the impulse: keeps the response off the window's edges through every layer


@dataclass
class SynthesisTrace:
    """What one forward pass fixes for the linear response: per conv layer its styles, demodulation
    scale and activation slope (leaky ReLU's 1 or 0.2, 0 where clamped); per toRGB its styles and slope.
    `folded` keeps the weights with the styles of the last sample used folded in (made by the first response
    that needs them: the exact fields' thirteen responses of one sample fold them once)."""

    styles: list[torch.Tensor]
    scales: list[torch.Tensor]
    slopes: list[torch.Tensor]
    rgb_styles: list[torch.Tensor]
    rgb_slopes: list[torch.Tensor]
    folded: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    folded_sample: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.slopes[0].dtype

    def to(self, dtype: torch.dtype) -> "SynthesisTrace":
        """The same trace in another precision (the linear response runs in the trace's dtype)."""
        return SynthesisTrace(*([t.to(dtype) for t in getattr(self, f.name)] for f in fields(self) if f.init))


@torch.no_grad()
def trace_synthesis(G: "Generator", z: torch.Tensor, dtype: torch.dtype | None = None) -> SynthesisTrace:
    """Run G once from z [B, z_dim] (noise 'const') and keep what its linear response needs.

    With `dtype` (bfloat16) the feature maps are computed in it (`Generator.synthesize(dtype=...)`) and the
    trace is returned in it: a cheaper trace for measurements that only need to tell zero from non-zero.
    """
    params = next(G.parameters()).dtype
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
        w = G.mapping(z.to(params))
        S = G.styles(w)
        G.synthesize(S, w=w, noise_mode="const", dtype=dtype)
    finally:
        for h in hooks:
            h.remove()
    styles = G.layout.split(S)
    scales = [ops.demodulation_coefficients(conv.weight, s) * ops.LRELU_GAIN
              for conv, s in zip(G.synthesis.conv_layers, styles)]
    rgb_styles = [s * block.torgb.weight_gain for s, block in zip(G.rgb_styles(w), G.synthesis.blocks)]
    trace = SynthesisTrace(styles, scales, slopes, rgb_styles, rgb_slopes)
    return trace if dtype is None else trace.to(dtype)


@dataclass(frozen=True)
class ResponseWindow:
    """Where a response lies in the image: rows [rows[0], rows[1]) and columns [cols[0], cols[1])."""

    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(*self.rows), slice(*self.cols)


@torch.no_grad()
def linear_response(G: "Generator", trace: SynthesisTrace, start: int, position: int,
                    channels: Sequence[int] | None = None, sample: int = 0,
                    check_window: bool = False, band: Band | None = None) -> tuple[torch.Tensor, ResponseWindow]:
    """The image's first-order response to unit impulses at (position, position) of conv layer `start`'s input.

    One direction per entry of `channels` (a unit on that channel), or, with `channels=None`, one
    direction with a unit on every channel; all for sample `sample` of the trace. The response is
    carried through the remaining layers on windows that double with the resolution (the ops are
    translation-equivariant; the window keeps `WINDOW_MARGIN` pixels beyond the response, and
    `check_window` raises RuntimeError if the response reaches an edge of a window inside the
    map). With `band`, only the band's image lines are computed: along its axis every map keeps only
    the lines that reach them (`genfields.fields.lines_reaching`), so a response that spans the image
    costs a strip of it; the returned response is exact on those lines only.
    Returns the response [K, img_channels, h, w] and its window in the image.
    """
    layer = G.layout.layers[start]
    n = layer.in_resolution
    lo, hi = max(position - WINDOW_MARGIN, 0), min(position + WINDOW_MARGIN + 1, n)
    window = [[lo, hi], [lo, hi]]  # rows, columns: [first, end) in the current map
    k_dirs = 1 if channels is None else len(channels)
    dx = torch.zeros(k_dirs, layer.channels, hi - lo, hi - lo, dtype=trace.dtype, device=trace.slopes[0].device)
    if channels is None:
        dx[..., position - lo, position - lo] = 1.0
    else:
        dx[torch.arange(k_dirs), torch.as_tensor(channels), position - lo, position - lo] = 1.0
    kept = _band_lines(G.layout, start, band)

    def folded(key: tuple, weight: torch.Tensor, style: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The sample's styles (and demodulation) folded into the weights: one convolution for every direction."""
        if trace.folded_sample != sample:  # one sample's weights at a time: each is a copy of the network
            trace.folded.clear()
            trace.folded_sample = sample
        if key not in trace.folded:
            weight = weight * style[sample].reshape(1, -1, 1, 1)
            weight = weight if scale is None else weight * scale[sample].reshape(-1, 1, 1, 1)
            trace.folded[key] = weight.to(trace.dtype)
        return trace.folded[key]

    d_img, k = None, 0
    d_rows = d_cols = (0, 0)  # the window of d_img (set with it)
    for j, block in enumerate(G.synthesis.blocks):
        touched = False
        for conv in block.convs:
            if k >= start:
                window = [[a * conv.up, b * conv.up] for a, b in window]
                dx = ops.conv2d_resample(dx.contiguous(memory_format=torch.channels_last),
                                         folded(("conv", k), conv.weight, trace.styles[k], trace.scales[k]), conv.up,
                                         conv.resample_filter)
                if band is not None:
                    dx = _crop(dx, window, band.axis, kept[k])
                    if dx.shape[band.axis] == 0:  # the response never reaches the band's lines
                        return dx.new_zeros(len(dx), G.config.img_channels, 0, 0), ResponseWindow((0, 0), (0, 0))
                rows, cols = window
                dx.mul_(trace.slopes[k][sample:sample + 1, :, rows[0]:rows[1], cols[0]:cols[1]])
                if check_window:
                    _check_window_edges(dx, window, conv.resolution, skip_axis=None if band is None else band.axis)
                touched = True
            k += 1
        if not touched:
            continue
        rows, cols = window
        dy = ops.conv2d_resample(dx, folded(("rgb", j), block.torgb.weight, trace.rgb_styles[j]), 1, None)
        dy.mul_(trace.rgb_slopes[j][sample:sample + 1, :, rows[0]:rows[1], cols[0]:cols[1]])
        if d_img is not None:  # the skip path's window is the last one doubled; the maps' may be cropped inside it
            upsampled = ops.upsample2d(d_img, block.resample_filter)
            d_img = upsampled[..., rows[0] - 2 * d_rows[0]:rows[1] - 2 * d_rows[0],
                              cols[0] - 2 * d_cols[0]:cols[1] - 2 * d_cols[0]].add_(dy)
        else:
            d_img = dy
        d_rows, d_cols = rows, cols
    return d_img, ResponseWindow(tuple(window[0]), tuple(window[1]))


def _band_lines(layout, start: int, band: Band | None) -> dict[int, tuple[int, int]]:
    """For each conv layer from `start` on, the [first, end) lines of its output that reach `band`'s lines."""
    if band is None:
        return {}
    kept = {}
    for k in range(start, len(layout.layers)):
        reach = lines_reaching(layout, k, band.lines)
        if reach is None:
            raise ValueError(f"no line of {layout.layers[k].name}'s output reaches the image lines {band.lines}")
        kept[k] = (reach.lo, reach.hi + 1)
    return kept


def _crop(x: torch.Tensor, window: list[list[int]], axis: int, lines: tuple[int, int]) -> torch.Tensor:
    """`x` (on `window`) cropped along `axis` to `lines`; `window` is updated in place."""
    span = window[axis + 2]
    first = min(max(span[0], lines[0]), span[1])
    end = max(min(span[1], lines[1]), first)
    cropped = x.narrow(axis, first - span[0], end - first)
    span[:] = [first, end]
    return cropped


def _check_window_edges(x: torch.Tensor, window: list[list[int]], n: int, skip_axis: int | None = None) -> None:
    """The response must be zero on every edge of the window that lies inside the map (except along a band's axis,
    where the edges are crops)."""
    edges = []
    for axis, (lo, hi) in zip((-2, -1), window):
        if axis == skip_axis:
            continue
        edges += ([x.select(axis, 0)] if lo > 0 else []) + ([x.select(axis, -1)] if hi < n else [])
    if any(bool(e.ne(0).any()) for e in edges):
        raise RuntimeError(f"the linear response reached the edge of its window {window} at resolution {n}")
