"""Generative fields: Eq. 1 against brute-force impulse responses, the paper's table, exact fields."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_nvidia_fixture
from genfields.stylegan2 import Generator, GeneratorConfig, StyleLayout
from genfields.stylegan2.field_measurement import (APPENDIX_TABLE_1, eq1_generative_fields, exact_field_intervals,
                                                   measure_effective_fields, measure_effective_fields_fd,
                                                   measure_exact_fields, measure_exact_fields_fd, transposed_conv_fields)
from genfields.stylegan2.linear import linear_response, trace_synthesis

stacks = st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3)), min_size=1, max_size=6)


def impulse_extent(layers: list[tuple[int, int]], start: int, dilate_by_stride: bool) -> int:
    """Width of the output support of an impulse entering layer `start` of an explicit transposed-conv stack."""
    x = torch.zeros(1, 1, 1, dtype=torch.float64)
    x[..., 0] = 1.0
    for k, s in layers[start:]:
        kernel = torch.ones(1, 1, k, dtype=torch.float64)
        x = F.conv_transpose1d(x, kernel, stride=s, dilation=s if dilate_by_stride else 1)
    nz = torch.nonzero(x[0, 0] > 0).flatten()
    return int(nz.max() - nz.min() + 1)


@settings(max_examples=60, deadline=None)
@given(stacks)
def test_eq1_is_the_field_of_a_stack_whose_strides_scale_their_own_kernels(layers):
    # Eq. 1 multiplies each kernel's spread by its own stride: a transposed conv dilated by its stride.
    kernels, strides = zip(*layers)
    expected = [impulse_extent(layers, i, dilate_by_stride=True) for i in range(len(layers))]
    assert eq1_generative_fields(kernels, strides) == expected


@settings(max_examples=60, deadline=None)
@given(stacks)
def test_plain_transposed_conv_stack_field(layers):
    kernels, strides = zip(*layers)
    expected = [impulse_extent(layers, i, dilate_by_stride=False) for i in range(len(layers))]
    assert transposed_conv_fields(kernels, strides) == expected


def test_eq1_reproduces_the_papers_table_except_its_conv0_entry():
    layout = StyleLayout.from_arch("paper256")
    eq1 = {layer.name: layer.gf for layer in layout}
    differing = {name for name in eq1 if eq1[name] != APPENDIX_TABLE_1[name]}
    assert differing == {"conv0"}  # Eq. 1 gives 507, the appendix prints 506
    assert eq1["conv0"] == 507 and eq1["conv2"] == 251 and eq1["conv6"] == 59 and eq1["conv10"] == 11


def test_exact_fields_measured_on_the_network_match_the_support_analysis():
    # synth64's geometry with few channels: the support does not depend on the channel count
    config = GeneratorConfig(img_resolution=64, z_dim=16, w_dim=16, mapping_layers=1, channel_base=128, channel_max=8)
    G = Generator(config).eval()
    measured = measure_exact_fields(G)  # raises if the measurement and the analysis disagree
    analytic = exact_field_intervals(G.layout)
    assert measured["conv8"].gf_exact == 3  # last 3x3 conv, no resampling after it
    assert measured["conv7"].gf_exact == 8  # 3 taps through the transposed conv and the 4-tap FIR
    assert measured["conv0"].clipped and measured["conv0"].gf_exact_clipped == 64
    for name, m in measured.items():
        assert m.gf_exact == analytic[name].size
        assert m.gf_exact_clipped <= 64


def test_exact_fields_are_measured_in_bfloat16_and_fall_back_to_the_trace_precision(tiny_generator, monkeypatch):
    import genfields.stylegan2.field_measurement as fields_module

    reference = {name: m.gf_exact_clipped for name, m in measure_exact_fields(tiny_generator).items()}
    dtypes, original = [], fields_module._impulse_support

    def underflowing(G, trace, layer, expected):  # a bfloat16 pass that loses the response on one layer
        dtypes.append(trace.dtype)
        side = original(G, trace, layer, expected)
        return side - 1 if trace.dtype == torch.bfloat16 and layer.name == "conv2" else side

    monkeypatch.setattr(fields_module, "_impulse_support", underflowing)
    measured = {name: m.gf_exact_clipped for name, m in measure_exact_fields(tiny_generator).items()}
    assert measured == reference  # conv2 measured again in float32
    layers = len(tiny_generator.layout.layers)
    assert dtypes.count(torch.bfloat16) == layers and dtypes.count(torch.float32) == 1


def test_exact_fields_are_never_smaller_than_eq1_for_stylegan2():
    for arch in ("paper256", "synth64", "config-f1024"):
        layout = StyleLayout.from_arch(arch)
        fields = exact_field_intervals(layout)
        for layer in layout:
            assert fields[layer.name].size >= layer.gf


def test_effective_fields_are_inside_the_exact_fields(tiny_generator):
    eff = measure_effective_fields(tiny_generator, share=0.9, samples=2, channels=2)
    exact = measure_exact_fields(tiny_generator)
    for name, side in eff.items():
        assert 1 <= side <= max(exact[name].gf_exact_clipped, 1) + 1
    # deeper layers have no larger effective fields than the first one
    assert eff["conv0"] >= eff[f"conv{len(eff) - 1}"]


def test_effective_share_validated(tiny_generator):
    with pytest.raises(ValueError):
        measure_effective_fields(tiny_generator, share=1.5)


def _measurements_agree_with_the_finite_differences(G, samples: int, channels: int) -> None:
    exact = measure_exact_fields(G)
    assert {name: m.gf_exact_clipped for name, m in exact.items()} == measure_exact_fields_fd(G)
    fast = measure_effective_fields(G, samples=samples, channels=channels, seed=3)
    assert fast == measure_effective_fields_fd(G, samples=samples, channels=channels, seed=3)


@pytest.mark.parametrize("banded_from", [96, 1])  # 1: every layer in two banded passes, as wide networks' first ones
def test_linear_response_fields_equal_the_float64_finite_differences(tiny_generator, banded_from, monkeypatch):
    import genfields.stylegan2.field_measurement as fields_module

    monkeypatch.setattr(fields_module, "BANDED_FROM", banded_from)
    _measurements_agree_with_the_finite_differences(tiny_generator, samples=3, channels=4)


@pytest.mark.parametrize("banded_from", [96, 1])
def test_linear_response_fields_equal_the_finite_differences_on_the_official_fixture(banded_from, monkeypatch):
    import genfields.stylegan2.field_measurement as fields_module
    from genfields.stylegan2 import load_generator

    monkeypatch.setattr(fields_module, "BANDED_FROM", banded_from)
    G = load_generator(require_nvidia_fixture() / "nvidia_tiny64.pkl")  # clamps, fp16 layers' config, biases
    _measurements_agree_with_the_finite_differences(G, samples=2, channels=3)


def test_linear_response_is_the_derivative_of_the_synthesis(tiny_generator):
    from genfields.stylegan2.field_measurement import _perturbed_input

    G = tiny_generator.double()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    trace = trace_synthesis(G, z)
    layer = G.layout.layer("conv1")  # an upsampling conv
    n, c, ch = layer.in_resolution, layer.in_resolution // 2, 3
    delta = torch.zeros(2, layer.channels, n, n, dtype=torch.float64)
    delta[1, ch, c, c] = 1e-6  # the second sample's unit
    with torch.no_grad():
        w = G.mapping(z)
        S = G.styles(w)
        base = G.synthesize(S, w=w)
        with _perturbed_input(G, "conv1", delta):
            fd = (G.synthesize(S, w=w) - base)[1:] / 1e-6
        response, window = linear_response(G, trace, layer.conv, c, [ch], sample=1, check_window=True)
    assert fd.abs().max() > 0
    assert torch.allclose(response, fd[(..., *window.slices)], atol=1e-5 * float(fd.abs().max()))
    outside = fd.clone()
    outside[(..., *window.slices)] = 0
    assert outside.abs().max() == 0  # nothing beyond the response's window


@pytest.mark.parametrize("axis", [-2, -1])
def test_a_banded_linear_response_equals_the_full_one_on_its_lines(tiny_generator, axis):
    from genfields.fields import Band, Interval

    G = tiny_generator.double()
    trace = trace_synthesis(G, torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    res = G.config.img_resolution

    def in_image(response, window):
        image = torch.zeros(2, 3, res, res, dtype=torch.float64)
        image[(..., *window.slices)] = response
        return image

    for layer in G.layout.layers:
        c = layer.in_resolution // 2
        full = in_image(*linear_response(G, trace, layer.conv, c, [0, 5], sample=1))
        for first in (0, res // 2 - 3, res - 2):
            lines = Interval(first, first + 1)
            banded, window = linear_response(G, trace, layer.conv, c, [0, 5], sample=1, check_window=True,
                                               band=Band(axis, lines))
            on_lines = torch.arange(lines.lo, lines.hi + 1)
            assert torch.allclose(in_image(banded, window).index_select(axis, on_lines), full.index_select(axis, on_lines),
                                  rtol=1e-12, atol=1e-12 * float(full.abs().max()))
            if layer.conv == 0:  # its response spans the image; the band keeps a strip of it
                span = window.rows if axis == -2 else window.cols
                assert full.index_select(axis, on_lines).abs().amax() > 0 and span[1] - span[0] < res


def test_exact_fields_of_a_wide_generator_fall_back_from_winograd_noise_to_direct_convolutions(monkeypatch):
    import genfields.devices

    monkeypatch.setattr(genfields.devices, "_freed_memory_kept", True)  # as under the CLI: Winograd on
    # 256 channels: the float32 pass runs the Winograd convolutions (rounding noise of a tile may reach past the
    # response; a support that disagrees with the analysis is measured again with direct convolutions)
    config = GeneratorConfig(img_resolution=32, z_dim=16, w_dim=16, mapping_layers=1, channel_base=8192,
                             channel_max=256)
    G = Generator(config).eval()
    measured = {name: m.gf_exact_clipped for name, m in measure_exact_fields(G, first_dtype=None).items()}
    assert measured == measure_exact_fields_fd(G)


def test_the_shipped_synth64_fields_are_what_the_measurement_gives_today():
    # `demo` and `explore` show the stored file instead of measuring: it must not go stale when the measurement
    # changes (it said 66 for conv0's effective field, from an earlier measurement, against today's 64)
    import json

    from genfields.evaluation.gan_card import FIELDS_FILE
    from genfields.stylegan2.field_measurement import field_table
    from genfields.stylegan2 import load_generator, shipped_models
    from genfields.stylegan2.checkpoints import MODELS_DIR

    if "synth64" not in shipped_models():
        pytest.skip("synth64 is not shipped in this checkout")
    G = load_generator("synth64")
    stored = json.loads((MODELS_DIR / "synth64" / FIELDS_FILE).read_text())
    assert stored == json.loads(json.dumps(field_table(G.layout, G, measure=True)))


def test_the_centred_square_is_centred_on_any_pixel_of_any_map():
    """The effective field's measure, for the exact table (centre of a square map) and explore (anywhere)."""
    from genfields.fields import centred_square_side

    energy = torch.zeros(32, 48, dtype=torch.float64)
    energy[19:22, 9:12] = 1.0  # a 3x3 block around x 10, y 20
    assert centred_square_side(energy, 20, 10, share=1.0) == 3
    energy[20, 10] = 100.0
    assert centred_square_side(energy, 20, 10, share=0.9) == 1
    assert centred_square_side(energy, 19.5, 9.5, share=1.0) == 4  # between pixels: even sides
    square = torch.ones(5, 5, dtype=torch.float64)
    assert centred_square_side(square, 2, 2, share=1.0) == 5 and centred_square_side(square, 2, 2, share=0.3) == 3
