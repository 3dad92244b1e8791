"""Figures 7 and 8: the sparsity histogram and the channel reuse statistics on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from genfields.evaluation.sparsity import (name_channels, normalised_magnitudes, plot_reuse, plot_sparsity, reuse,
                                           sparsity_histogram, top_channels)
from genfields.stylegan2 import StyleLayout


def test_normalised_magnitudes():
    a = normalised_magnitudes(np.array([[1.0, -4.0, 2.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(a, [[0.25, 1.0, 0.5], [0, 0, 0]])


def test_histogram_counts_every_dimension_once_per_test():
    dS = np.array([[0.01, 0.02, 0.5, -1.0], [0.9, 0.05, 0.0, 0.3]])
    hist = sparsity_histogram(dS, bins=20)
    assert hist.counts.shape == (2, 20) and np.allclose(hist.counts.sum(axis=1), 4)
    # test 1: 0.01, 0.02 -> bin 0; 0.5 -> bin 10; 1.0 -> the last bin (closed on the right)
    assert hist.counts[0, 0] == 2 and hist.counts[0, 10] == 1 and hist.counts[0, 19] == 1
    assert np.allclose(hist.mean, hist.counts.mean(axis=0)) and hist.share_above(0.6) == pytest.approx(0.25)


def test_top_channels_and_reuse_rates():
    dS = np.array([[5.0, 0.0, 3.0, 0.1, -4.0],
                   [0.0, 2.0, -9.0, 1.0, 0.0],
                   [1.0, 0.0, 2.0, 0.0, 3.0]])
    assert top_channels(dS, 2).tolist() == [[0, 4], [2, 1], [4, 2]]
    stats = reuse(dS, k=2)
    assert stats.union.tolist() == [0, 1, 2, 4]
    assert np.allclose(stats.rate, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert np.allclose(stats.matrix, [[1 / 3, 0, 0, 2 / 3], [0, 1 / 3, 2 / 3, 0], [0, 0, 2 / 3, 2 / 3]])


def test_channel_names_follow_the_layout():
    names = name_channels(StyleLayout.from_arch("paper256"), np.array([447, 517]))
    assert names[0]["paper"] == "dS_448" and names[0]["layer"] == "conv0" and names[0]["stylespace"] == "0_447"
    assert names[1]["paper"] == "dS_518" and names[1]["layer"] == "conv1" and names[1]["stylespace"] == "2_5"


def test_plots_are_written(tmp_path):
    import torch

    rng = np.random.default_rng(0)
    dS = rng.standard_t(2, size=(10, 1088))
    plot_sparsity(sparsity_histogram(dS), tmp_path / "fig7.png")
    plot_reuse(reuse(dS), StyleLayout.from_arch("synth64"), tmp_path / "fig8.png",
               images=torch.rand(10, 3, 16, 16) * 2 - 1)
    assert (tmp_path / "fig7.png").stat().st_size > 5000 and (tmp_path / "fig8.png").stat().st_size > 5000


def test_labelled_columns_spread_ties_over_the_axis():
    from genfields.evaluation.sparsity import labelled_columns

    rate = np.ones(40)  # every channel reused by every test: labels must not bunch on the left
    cols = labelled_columns(rate, 4)
    assert cols.tolist() == [0, 10, 20, 30]  # gap 40 / 4 = 10
    rate = np.zeros(40)
    rate[[3, 4, 30]] = [1.0, 0.9, 0.5]
    assert labelled_columns(rate, 2).tolist() == [3, 30]  # 4 is closer than 20 to 3
