"""The bootstrap intervals (genfields.perception.bootstrap) on cases whose answer is known analytically."""

import numpy as np
import pytest

from genfields.perception.bootstrap import Interval, bootstrap, mean_interval, paired_difference


def test_mean_interval_matches_the_analytic_standard_error():
    x = np.random.default_rng(1).normal(5.0, 2.0, size=800)
    ci = mean_interval(x, resamples=4000, seed=3)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert ci.value == pytest.approx(x.mean())
    assert ci.lo < ci.value < ci.hi
    assert (ci.hi - ci.lo) == pytest.approx(2 * 1.96 * se, rel=0.08)  # the normal interval's width
    assert (ci.hi + ci.lo) / 2 == pytest.approx(x.mean(), abs=0.2 * se)


def test_intervals_are_seeded():
    x = np.random.default_rng(0).normal(size=50)
    assert mean_interval(x, seed=7) == mean_interval(x, seed=7)
    assert mean_interval(x, seed=7) != mean_interval(x, seed=8)


def test_paired_difference_cancels_what_the_pairs_share():
    rng = np.random.default_rng(2)
    hard = rng.normal(0, 10, size=500)  # per-pair difficulty, shared by both editors
    a, b = hard + 1.0 + rng.normal(0, 0.5, 500), hard + rng.normal(0, 0.5, 500)
    paired = paired_difference(a, b, seed=1)
    assert paired.value == pytest.approx(a.mean() - b.mean())
    se = np.sqrt(2 * 0.25 / 500)  # the difference's own noise only
    assert (paired.hi - paired.lo) == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert paired.excludes(0.0) and paired.above(0.0)
    unpaired = bootstrap(lambda i, j: a[i].mean() - b[j].mean(), [500, 500], seed=1)  # ignores the pairing
    assert unpaired.excludes(0.0) is False  # the shared difficulty swamps a difference of 1


def test_paired_difference_refuses_different_pairs():
    with pytest.raises(ValueError, match="same pairs"):
        paired_difference(np.ones(3), np.ones(4))


def test_interval_helpers():
    ci = Interval(1.0, 0.5, 1.5)
    assert ci.excludes(2.0) and ci.excludes(0.4) and not ci.excludes(1.2)
    assert ci.above(0.4) and not ci.above(0.6) and ci.below(1.6) and not ci.below(1.4)
    assert Interval.from_dict(ci.to_dict()) == ci
    assert ci.shifted(1.0) == Interval(2.0, 1.5, 2.5)
