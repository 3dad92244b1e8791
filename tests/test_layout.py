"""The style-space layout: invariants, index notations, masks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genfields.errors import ConfigError
from genfields.stylegan2 import ARCHITECTURES, StyleLayout


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_layout_invariants(arch):
    layout = StyleLayout.from_arch(arch)
    offset = 0
    for k, layer in enumerate(layout):
        assert layer.name == f"conv{k}" and layer.offset == offset
        assert layer.s_index == k + (k + 1) // 2  # one toRGB per block precedes it
        assert layer.resolution == layer.in_resolution * layer.stride
        offset += layer.channels
    assert layout.dim == offset
    assert len(layout) == 2 * len(layout.config.block_resolutions) - 1


def test_paper256_layout_matches_the_paper():
    layout = StyleLayout.from_arch("paper256")
    assert layout.dim == 4928 and len(layout) == 13
    assert [layer.s_index for layer in layout] == [0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
    assert [layer.channels for layer in layout][-5:] == [256, 256, 128, 128, 64]


def test_synth64_layout():
    layout = StyleLayout.from_arch("synth64")
    assert layout.dim == 1088 and len(layout) == 9


@given(st.integers(0, 4927))
def test_notation_round_trips(flat):
    layout = StyleLayout.from_arch("paper256")
    for notation in ("paper", "conv", "stylespace"):
        assert layout.parse_index(layout.format_index(flat, notation)) == flat


def test_known_indices():
    layout = StyleLayout.from_arch("paper256")
    assert layout.parse_index("dS_1") == 0
    assert layout.parse_index("conv1:6") == 512 + 6
    assert layout.parse_index("2_6") == 512 + 6
    assert layout.format_index(512 + 6, "stylespace") == "2_6"
    assert layout.format_index(447, "paper") == "dS_448"
    layer, channel = layout.locate(layout.parse_index("9_409"))
    assert (layer.name, channel) == ("conv6", 409)


@pytest.mark.parametrize("bad", ["dS_0", "dS_4929", "conv13:0", "conv12:64", "1_0", "x", "4_3"])
def test_bad_indices_are_rejected(bad):
    with pytest.raises(ConfigError):
        StyleLayout.from_arch("paper256").parse_index(bad)


def test_conv_range_mask_zeroes_exactly_the_other_slices():
    layout = StyleLayout.from_arch("paper256")
    mask = layout.mask(convs="conv0-conv7")
    assert mask[:512 * 8].eq(1).all() and mask[512 * 8:].eq(0).all()
    mask = layout.mask(convs="conv2,conv9-10")
    kept = {layer.name for layer in layout if mask[layer.slice].eq(1).all()}
    zero = {layer.name for layer in layout if mask[layer.slice].eq(0).all()}
    assert kept == {"conv2", "conv9", "conv10"} and len(kept) + len(zero) == 13


def test_gf_range_mask():
    layout = StyleLayout.from_arch("paper256")
    mask = layout.mask(gf="43-506")
    kept = [layer.name for layer in layout if mask[layer.slice].eq(1).all()]
    assert kept == [f"conv{k}" for k in range(1, 8)]  # conv0 has 507 by Eq. 1
    assert mask.sum() == 7 * 512
    with pytest.raises(ConfigError):
        layout.mask(gf="1000-2000")


def test_split_join_round_trip():
    layout = StyleLayout.from_arch("synth64")
    S = torch.randn(3, layout.dim)
    parts = layout.split(S)
    assert [p.shape[1] for p in parts] == [layer.channels for layer in layout]
    assert torch.equal(layout.join(parts), S)
    with pytest.raises(ConfigError):
        layout.split(torch.randn(3, 7))
