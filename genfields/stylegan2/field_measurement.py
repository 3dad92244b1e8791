"""Generative fields measured on a network: how far a unit at a conv layer's input reaches in the image.

Three notions, from cheapest to most faithful:
- `eq1_generative_fields`: the paper's Eq. 1 from the (kernel, stride) of each conv layer (arithmetic,
  in `genfields.fields`, re-exported here with the rest of the arithmetic);
- `measure_exact_fields`: the support of the impulse response through the generator's real operations
  (3x3 convs, stride-2 transposed convs with the 4-tap FIR filter, the toRGB skip path with its FIR
  upsampling), measured on the network itself by its linear tracing (`genfields.stylegan2.linear`);
- `measure_effective_fields`: the side of the centred square that holds a share (90%) of the energy
  of the output's response to a perturbation of one input unit, averaged over channels and samples.

`field_table` and `plot_generative_fields` make the command's table and figure. Why Eq. 1 and the
exact field differ is explained in docs/generative-fields.md.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from dataclasses import dataclass

import numpy as np
import torch

from genfields.fields import (APPENDIX_TABLE_1, Band, Interval, centred_square_side,  # noqa: F401
                                        eq1_generative_fields, exact_field_intervals, figure2_layers,
                                        lines_reaching, transposed_conv_fields)
from genfields.stylegan2.linear import linear_response, trace_synthesis
from genfields.stylegan2.network import Generator


# --- measured fields on the network --------------------------------------------------------
@dataclass
class MeasuredField:
    name: str
    gf_exact: int  # side of the bounding square of the measured support, unclipped
    gf_exact_clipped: int  # the same, clipped to the image
    clipped: bool
    gf_effective: int | None = None


def measure_exact_fields(G: "Generator", seed: int = 0, progress: bool = False,
                         first_dtype: torch.dtype | None = torch.bfloat16) -> dict[str, MeasuredField]:
    """Exact fields measured on the real network, checked against the 1D support analysis.

    An impulse at the centre of each conv layer's input (all channels) is carried through the
    network's linear response from that layer on (`Generator.linear_response`): the output pixels it reaches
    are the field (for a wide response, its extent along the columns on the rows through its centre and
    along the rows on the columns through it: two banded passes, each map cut to the lines that reach those).
    The real image is finite, so this measures the *clipped* field; the unclipped size comes from the
    support analysis, which must agree with the measurement inside the image.
    The first pass runs in `first_dtype` (bfloat16, forward pass included: a support only needs to tell
    zero from non-zero; None: the generator's own precision only); a layer that disagrees is measured
    again in the generator's precision, then with direct convolutions (a fast one may leave rounding
    noise beside the response), before that is reported as an error.
    """
    layout = G.layout
    analytic = exact_field_intervals(layout)
    res = G.config.img_resolution
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.config.z_dim))
    traced = functools.cache(lambda dtype: trace_synthesis(G, z, dtype=dtype))  # None: the generator's precision
    out = {}
    with torch.no_grad():
        for layer in _layers(layout, progress, "exact fields"):
            iv = analytic[layer.name]
            expected = iv.clip(res)
            expect_clipped = expected.size
            measured = (None if first_dtype is None
                        else _impulse_support_or_none(G, traced(first_dtype), layer, expected))
            if measured != expect_clipped:  # underflow? measure in the generator's precision
                measured = _impulse_support_or_none(G, traced(None), layer, expected)
            if measured != expect_clipped:  # rounding noise of a fast convolution? measure with direct ones
                with _direct_convolutions():
                    measured = _impulse_support(G, traced(None), layer, expected)
            if measured != expect_clipped:
                raise RuntimeError(f"{layer.name}: measured field {measured} px but the support analysis "
                                   f"gives {expect_clipped} px; the network's ops differ from the analysis")
            out[layer.name] = MeasuredField(layer.name, iv.size, measured, clipped=measured < iv.size)
    return out


def _impulse_support_or_none(G: "Generator", trace, layer, expected: Interval) -> int | None:
    """`_impulse_support`, or None when the response reached the edge of its window."""
    try:
        return _impulse_support(G, trace, layer, expected)
    except RuntimeError:
        return None


BANDED_FROM = 96  # lines: a response spanning fewer is measured in one pass (two thin ones cost more on small maps)


def _impulse_support(G: "Generator", trace, layer, expected: Interval) -> int:
    """Side of the image region reached by an impulse at the centre of `layer`'s input (every channel).

    `expected` is the support analysis's clipped interval. A response that spans `BANDED_FROM` lines or more
    is measured in two banded passes: its extent along the columns on the three rows through its centre
    (the middle of `expected`), and along the rows on the three columns through it.
    """
    position = layer.in_resolution // 2
    if expected.size < BANDED_FROM:
        response, _ = linear_response(G, trace, layer.conv, position, check_window=True)
        return _support_side(response.abs().amax(dim=(0, 1)) > 0)
    middle = (expected.lo + expected.hi) // 2
    lines = Interval(middle - 1, middle + 1)
    side = 0
    for axis in (-2, -1):
        response, _ = linear_response(G, trace, layer.conv, position, check_window=True, band=Band(axis, lines))
        reached = response.abs().amax(dim=(0, 1)) > 0
        side = max(side, _extent(reached.any(dim=axis)))  # the extent across the band
    return side


def measure_effective_fields(G: "Generator", share: float = 0.9, samples: int = 4, channels: int = 16,
                             seed: int = 0, progress: bool = False) -> dict[str, int]:
    """Side of the centred square holding `share` of the output response energy, per conv layer.

    For each sample and each of `channels` random channels, the response of the RGB output to the
    unit at the centre of the layer's input map is the network's linear response (its Jacobian
    column, float32, from the activations cached at that layer). Its squared size, normalised to
    unit total per (sample, channel), is averaged, and the smallest odd-sided square centred on
    the unit's image position that holds `share` of it is reported.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    rng = np.random.RandomState(seed)
    res = G.config.img_resolution
    trace = trace_synthesis(G, torch.from_numpy(rng.randn(samples, G.config.z_dim)))
    result = {}
    with torch.no_grad():
        for layer in _layers(G.layout, progress, "effective fields"):
            c = layer.in_resolution // 2
            chans = rng.choice(layer.channels, size=min(channels, layer.channels), replace=False)
            energy = torch.zeros(res, res, dtype=torch.float64)
            for sample in range(samples):
                response, window = linear_response(G, trace, layer.conv, c, chans.tolist(), sample=sample)
                e = response.cpu().double().square().sum(dim=1)  # [channels, h, w]
                energy[window.slices] += (e / e.sum(dim=[1, 2], keepdim=True).clamp_min(1e-300)).sum(dim=0)
            centre = (c + 0.5) * res / layer.in_resolution - 0.5
            result[layer.name] = centred_square_side(energy / energy.sum(), centre, centre, share)
    return result


# --- helpers of the measurements -------------------------------------------------------------
@contextlib.contextmanager
def _direct_convolutions():
    """Without oneDNN, whose Winograd convolutions (and ours, `stylegan2.ops.winograd_conv3x3`, which runs on
    it) leave rounding noise next to a sparse input: the direct ones keep every pixel that the response
    does not reach exactly zero."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


def _support_side(changed: torch.Tensor) -> int:
    """Side of the bounding square of the True pixels of a 2D mask."""
    return max(_extent(changed.any(dim=1)), _extent(changed.any(dim=0)))


def _extent(line: torch.Tensor) -> int:
    """Number of pixels from the first to the last True entry of a 1D mask (0 if none)."""
    hits = torch.nonzero(line).flatten()
    return int(hits.max() - hits.min() + 1) if len(hits) else 0


def _layers(layout, progress: bool, desc: str):
    from tqdm import tqdm

    return tqdm(layout.layers, desc=desc, unit="layer", disable=not progress, delay=1.0, leave=False)


# --- the slow reference: float64 finite differences through the whole network ------------------
def measure_exact_fields_fd(G: "Generator", seed: int = 0) -> dict[str, int]:
    """Clipped exact field per conv layer by finite differences in float64 from the input (slow).

    The reference that `measure_exact_fields` is tested against: an impulse (1 on every channel)
    at the centre of each layer's input, the whole synthesis run again, the changed pixels counted.
    """
    G64 = _double_copy(G)
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.config.z_dim))
    out = {}
    with torch.no_grad():
        w = G64.mapping(z)
        S = G64.styles(w)
        base = G64.synthesize(S, w=w, noise_mode="const")
        for layer in G.layout.layers:
            c = layer.in_resolution // 2
            delta = torch.zeros(1, 1, layer.in_resolution, layer.in_resolution, dtype=torch.float64)
            delta[..., c, c] = 1.0
            with _perturbed_input(G64, layer.name, delta):
                img = G64.synthesize(S, w=w, noise_mode="const")
            out[layer.name] = _support_side((img - base).abs().amax(dim=1)[0] > 0)
    return out


def measure_effective_fields_fd(G: "Generator", share: float = 0.9, samples: int = 4, channels: int = 16,
                                seed: int = 0, eps: float = 1e-3) -> dict[str, int]:
    """`measure_effective_fields` by float64 finite differences through the whole network (slow).

    The reference the fast measurement is tested against: the same samples and channels, each
    unit perturbed by `eps` and the whole synthesis run again from the input.
    """
    G64 = _double_copy(G)
    rng = np.random.RandomState(seed)
    res = G.config.img_resolution
    result = {}
    with torch.no_grad():
        z = torch.from_numpy(rng.randn(samples, G.config.z_dim))
        w = G64.mapping(z)
        S = G64.styles(w)
        base = G64.synthesize(S, w=w, noise_mode="const")
        for layer in G.layout.layers:
            c = layer.in_resolution // 2
            chans = rng.choice(layer.channels, size=min(channels, layer.channels), replace=False)
            energy = torch.zeros(res, res, dtype=torch.float64)
            for ch in chans:
                delta = torch.zeros(samples, layer.channels, layer.in_resolution, layer.in_resolution,
                                    dtype=torch.float64)
                delta[:, ch, c, c] = eps
                with _perturbed_input(G64, layer.name, delta):
                    img = G64.synthesize(S, w=w, noise_mode="const")
                e = (img - base).square().sum(dim=1)  # [B, H, W]
                e = e / e.sum(dim=[1, 2], keepdim=True).clamp_min(1e-300)
                energy += e.sum(dim=0)
            centre = (c + 0.5) * res / layer.in_resolution - 0.5
            result[layer.name] = centred_square_side(energy / energy.sum(), centre, centre, share)
    return result


def _double_copy(G: "Generator") -> "Generator":
    return copy.deepcopy(G).double().eval()


@contextlib.contextmanager
def _perturbed_input(G: "Generator", name: str, delta: torch.Tensor):
    """Add `delta` to the input of conv layer `name` while the context is open."""
    handle = G.conv_module(name).register_forward_pre_hook(lambda module, args: (args[0] + delta, *args[1:]))
    try:
        yield
    finally:
        handle.remove()


# --- the table and figure -------------------------------------------------------------------
def field_table(layout, G: "Generator | None" = None, measure: bool = False, effective: bool = True,
                share: float = 0.9, samples: int = 4, channels: int = 16, seed: int = 0,
                progress: bool = False) -> list[dict]:
    """One row per conv layer: geometry, Eq. 1 field, and with `measure` the exact (and effective) fields.

    The exact field is measured on `G` (any weights: the support does not depend on them); the
    effective field needs a trained `G` and is skipped when `effective` is False.
    """
    rows = []
    for layer in layout.layers:
        row = {k: getattr(layer, k) for k in ("name", "conv", "s_index", "in_resolution", "resolution", "stride",
                                               "kernel", "channels", "offset", "gf")}
        if layout.config.img_resolution == 256 and len(layout) == 13:
            printed = APPENDIX_TABLE_1[layer.name]
            if printed != layer.gf:
                row["gf_paper"] = printed
        rows.append(row)
    if measure:
        if G is None:
            raise ValueError("measuring fields needs a generator")
        exact = measure_exact_fields(G, seed=seed, progress=progress)
        eff = measure_effective_fields(G, share, samples, channels, seed, progress=progress) if effective else {}
        for row in rows:
            m = exact[row["name"]]
            row.update(gf_exact=m.gf_exact, gf_exact_clipped=m.gf_exact_clipped, clipped=m.clipped,
                       gf_effective=eff.get(row["name"]))
    return rows


def plot_generative_fields(image: torch.Tensor, rows: list[dict], layers: list[str], path, title: str = "") -> None:
    """The paper's Figure 2 analogue: squares of the chosen layers' fields, centred, over an image.

    Solid squares are Eq. 1; dashed ones the exact field (when measured); dotted ones the
    effective field (when measured).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from genfields.imageio import to_uint8

    by_name = {r["name"]: r for r in rows}
    res = image.shape[-1]
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.6), squeeze=False)
    for ax, name in zip(axes[0], layers):
        row = by_name[name]
        ax.imshow(to_uint8(image[None] if image.ndim == 3 else image)[0], extent=(0, res, res, 0))
        for key, style in (("gf", "-"), ("gf_exact", "--"), ("gf_effective", ":")):
            size = row.get(key)
            if size:
                c = res / 2
                ax.add_patch(Rectangle((c - size / 2, c - size / 2), size, size, fill=False, ec="red", lw=2,
                                       ls=style, label=f"{key} {size}"))
        ax.set_xlim(-0.25 * res, 1.25 * res)
        ax.set_ylim(1.25 * res, -0.25 * res)
        ax.set_title(f"{name} ({row['in_resolution']}x{row['in_resolution']} input)")
        ax.legend(loc="lower center", fontsize=7)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    from pathlib import Path

    from genfields.imageio import atomic_path

    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=100, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)
