"""Generative-field arithmetic: what a conv layer's (kernel, stride) geometry says, with no network.

- `eq1_generative_fields`: the paper's Eq. 1 from the (kernel, stride) of each conv layer, and
  `transposed_conv_fields`, its counterpart that counts a transposed convolution's taps;
- `Interval`, `exact_field_intervals`: the support of a unit's impulse through the generator's real
  operations (3x3 convs, stride-2 transposed convs with the 4-tap FIR filter, the toRGB skip path with
  its FIR upsampling), derived from the layout alone;
- `Band`, `lines_reaching`: the lines of each map that reach a few output lines (for banded passes);
- `centred_square_side`: the side of the centred square that holds a share of an energy map;
- the paper's Appendix Table 1 and Figure 2's layers.

Measuring fields on a network (exact and effective, tables, plots) is
`genfields.stylegan2.field_measurement`, above the generator; this module sits below it, so that the
generator's layout and its linear tracing can use the arithmetic without importing the measurement
(no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


# --- Eq. 1 and its brute-force counterparts --------------------------------------------------
def eq1_generative_fields(kernels: Sequence[int], strides: Sequence[int]) -> list[int]:
    """The paper's Eq. 1 for every layer of a stack of N conv layers.

    Entry L is g_0 for the input of conv layer L (0-based):
        g = sum_{m=L}^{N-1} (k_m - 1) * prod_{i=m}^{N-1} s_i + 1,
    i.e. each layer's kernel spread is multiplied by its own stride and every later stride.
    """
    if len(kernels) != len(strides):
        raise ValueError("kernels and strides must have the same length")
    n = len(kernels)
    fields = [0] * n
    g, scale = 1, 1
    for m in range(n - 1, -1, -1):
        scale *= strides[m]
        g += (kernels[m] - 1) * scale
        fields[m] = g
    return fields


def transposed_conv_fields(kernels: Sequence[int], strides: Sequence[int]) -> list[int]:
    """Impulse-response extent of a plain transposed-conv stack (stride s_m, kernel k_m).

    A transposed conv maps input i to outputs s*i .. s*i + k - 1, so a layer's spread is scaled
    by the strides of the *later* layers only: g = sum_m (k_m - 1) prod_{i>m} s_i + 1.
    """
    n = len(kernels)
    fields = [0] * n
    g, scale = 1, 1
    for m in range(n - 1, -1, -1):
        g += (kernels[m] - 1) * scale
        scale *= strides[m]
        fields[m] = g
    return fields


# --- support propagation (exact fields, analytically in 1D) -----------------------------------
@dataclass(frozen=True)
class Interval:
    """Closed integer interval [lo, hi] of pixel positions."""

    lo: int
    hi: int

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def union(self, other: "Interval") -> "Interval":
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def clip(self, n: int) -> "Interval":
        return Interval(max(self.lo, 0), min(self.hi, n - 1))


@dataclass(frozen=True)
class Band:
    """The image lines a linear response is wanted on: `lines` along `axis` (-2 rows, -1 columns).

    `genfields.stylegan2.linear.linear_response` then crops every map along that axis to the lines
    that reach them (`lines_reaching`), so a response spanning the image costs only a strip of it.
    """

    axis: int
    lines: Interval


def _conv_support(iv: Interval, kernel: int) -> Interval:
    return Interval(iv.lo - kernel // 2, iv.hi + kernel // 2)


def _upconv_support(iv: Interval, kernel: int, taps: int) -> Interval:
    """Support after a stride-2 transposed conv and the FIR filter, in the doubled resolution.

    Input i lands at 2i .. 2i+k-1 of the transposed-conv output, which is padded by p0 before the
    `taps`-tap filter: output j reads padded positions j .. j+taps-1.
    """
    p0 = kernel // 2 + (taps + 1) // 2 - (kernel - 1)
    return Interval(2 * iv.lo + p0 - (taps - 1), 2 * iv.hi + kernel - 1 + p0)


def _upsample_support(iv: Interval, taps: int) -> Interval:
    """Support after the skip path's zero-insertion upsampling by 2 and the FIR filter."""
    p0 = (taps + 1) // 2
    return Interval(2 * iv.lo + p0 - (taps - 1), 2 * iv.hi + p0)


def exact_field_intervals(layout, position: int | None = None, taps: int = 4) -> dict[str, Interval]:
    """Unclipped 1D support in the output image of an impulse at the input of each conv layer.

    The generator's ops are separable and (for support) monotone, so the 2D support is the
    square of the 1D one. `position` is the impulse's index in the layer's input map
    (default: the centre, `in_resolution // 2`). The support is the union over every route to
    the image: through the remaining convs to each later toRGB, then the skip upsamplings.
    """
    layers = list(layout.layers)
    return {layer.name: _image_support(layers, start, Interval(*(2 * [layer.in_resolution // 2 if position is None
                                                                      else position])), taps)
            for start, layer in enumerate(layers)}


def lines_reaching(layout, conv: int, target: Interval, taps: int = 4) -> Interval | None:
    """The lines (rows, or columns) of conv layer `conv`'s output from which some route reaches the image
    lines `target`: through that layer's toRGB if it ends a block, and through every later layer.

    Every route doubles a line's position once per later block, so line i reaches
    [lo + s*i, hi + s*i] with s = image resolution / the layer's resolution; None if no line reaches.
    """
    layers = list(layout.layers)
    reach = _image_support(layers, conv + 1, Interval(0, 0), taps, through_rgb=_ends_block(layers, layers[conv]))
    scale = layout.config.img_resolution // layers[conv].resolution
    first = max(-((reach.hi - target.lo) // scale), 0)  # ceil((target.lo - reach.hi) / scale)
    last = min((target.hi - reach.lo) // scale, layers[conv].resolution - 1)
    return Interval(first, last) if first <= last else None


def _image_support(layers, start: int, iv: Interval, taps: int, through_rgb: bool = False) -> Interval:
    """Image support of the lines `iv` at the input of `layers[start]` (the output of the layer before it,
    whose toRGB the lines also reach when `through_rgb`): the union over every later route to the image."""
    image: Interval | None = iv if through_rgb else None
    for nxt in layers[start:]:
        iv = _upconv_support(iv, nxt.kernel, taps) if nxt.stride == 2 else _conv_support(iv, nxt.kernel)
        if _ends_block(layers, nxt):
            if image is not None:
                image = _upsample_support(image, taps)
            image = iv if image is None else image.union(iv)  # toRGB is 1x1
    return image


def _ends_block(layers, layer) -> bool:
    """True for the last conv of a block (the one its toRGB reads)."""
    return layer.conv == len(layers) - 1 or layers[layer.conv + 1].stride == 2


def centred_square_side(energy: torch.Tensor, cy: float, cx: float, share: float) -> int:
    """Smallest side of a square centred at pixel position (cy, cx) whose pixels hold `share` of the energy
    of a map [H, W] (the effective field's measure, for a unit anywhere in the image)."""
    h, w = energy.shape
    dy = (torch.arange(h, dtype=torch.float64) - cy).abs()
    dx = (torch.arange(w, dtype=torch.float64) - cx).abs()
    cheb = torch.maximum(dy[:, None], dx[None, :]).flatten()  # Chebyshev distance to the centre
    order = torch.argsort(cheb)
    cum = torch.cumsum(energy.flatten()[order].double(), 0)
    total = float(cum[-1])
    k = int(torch.searchsorted(cum, torch.tensor(total * (share - 1e-12), dtype=torch.float64)))
    return int(round(2 * float(cheb[order][min(k, cheb.numel() - 1)]) + 1))


# Appendix Table 1: the printed generative field of each conv layer of paper256 (Eq. 1 gives 507 for
# conv0: the table prints the sum without the final + 1; see docs/generative-fields.md). It lives here,
# with the field arithmetic, and `genfields.evaluation.paper_numbers` re-exports it with the paper's other
# numbers.
APPENDIX_TABLE_1: dict[str, int] = {
    "conv0": 506, "conv1": 379, "conv2": 251, "conv3": 187, "conv4": 123, "conv5": 91, "conv6": 59, "conv7": 43,
    "conv8": 27, "conv9": 19, "conv10": 11, "conv11": 7, "conv12": 3}


def figure2_layers(layout) -> list[str]:
    """The paper's Figure 2 layers (conv2, conv6, conv10 of 13: large, middle, small) scaled to the depth."""
    return [f"conv{round(k * len(layout) / 13)}" for k in (2, 6, 10)]
