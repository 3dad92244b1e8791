"""FD and KID with bootstrap intervals (genfields.perception.realism) on hand-computed and analytic cases."""

import numpy as np
import pytest
import torch

from genfields.perception.metrics import feature_statistics, frechet_distance
from genfields.perception.realism import (_frechet, difference_of_draws, fd, fd_difference, fd_draws, fd_value, kid,
                                         kid_difference, kid_value)


def test_kid_by_hand_in_one_dimension():
    # k(a, b) = (a b / 1 + 1)^3. X = {1, 2}: k(1, 2) = 27; Y = {0, 1}: k(0, 1) = 1;
    # cross: k(1,0) = 1, k(1,1) = 8, k(2,0) = 1, k(2,1) = 27, mean 37/4. KID = 27 + 1 - 2 * 9.25 = 9.5
    assert kid_value([[1.0], [2.0]], [[0.0], [1.0]]) == pytest.approx(9.5)


def test_kid_by_hand_scales_the_dot_product_by_the_dimension():
    # D = 2: k(a, b) = (a.b / 2 + 1)^3. X = {(1,0), (0,1)}: k = 1; Y = {(2,0), (0,2)}: k = 1;
    # cross: k((1,0),(2,0)) = 8, k((1,0),(0,2)) = 1, k((0,1),(2,0)) = 1, k((0,1),(0,2)) = 8, mean 4.5
    x, y = [[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]]
    assert kid_value(x, y) == pytest.approx(1 + 1 - 2 * 4.5)


def test_kid_is_unbiased_at_small_n():
    rng = np.random.default_rng(0)
    values = [kid_value(rng.normal(size=(10, 4)), rng.normal(size=(10, 4))) for _ in range(400)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))  # same law: expectation 0
    fds = [fd_value(rng.normal(size=(10, 4)), rng.normal(size=(10, 4))) for _ in range(100)]
    assert np.mean(fds) > 0.5  # FD, in contrast, is biased upward at small N


def test_fd_interval_recomputes_fd_per_resample_and_matches_the_delta_method():
    # 1-D: FD = (mu_a - mu_b)^2 + (s_a - s_b)^2; at mu_b - mu_a = 3 its SE is ~ 2 * 3 * sqrt(1/n + 1/n)
    rng = np.random.default_rng(4)
    n = 2000
    a, b = rng.normal(0, 1, (n, 1)), rng.normal(3, 1, (n, 1))
    ci = fd(a, b, resamples=600, seed=0)
    assert ci.value == pytest.approx(fd_value(a, b))
    assert (ci.hi - ci.lo) == pytest.approx(2 * 1.96 * 6 * np.sqrt(2 / n), rel=0.15)
    assert ci.lo < 9.0 < ci.hi


def test_kid_interval_covers_the_truth_and_takes_tensors():
    rng = np.random.default_rng(5)
    a, b = torch.from_numpy(rng.normal(0, 1, (300, 3))), rng.normal(0, 1, (300, 3))
    ci = kid(a, b, resamples=300)
    assert ci.lo < 0.0 < ci.hi
    shifted = kid(a, b + 1.0, resamples=300)
    assert shifted.lo > 0.0


def test_differences_of_two_editors_on_the_same_pairs():
    rng = np.random.default_rng(6)
    ref = rng.normal(0, 1, (400, 2))
    pairs = rng.normal(0, 1, (400, 2))
    near, far = pairs + 0.1, pairs + 0.6  # two editors: the same pairs, the second further off
    d_fd = fd_difference(far, near, ref, resamples=200)
    assert d_fd.value == pytest.approx(fd_value(far, ref) - fd_value(near, ref))
    assert d_fd.above(0.0)
    d_kid = kid_difference(far, near, ref, resamples=200)
    assert d_kid.value == pytest.approx(kid_value(far, ref) - kid_value(near, ref))
    assert d_kid.above(0.0)
    same = fd_difference(near, near.copy(), ref, resamples=50)
    assert same.value == same.lo == same.hi == 0.0
    with pytest.raises(ValueError, match="same pairs"):
        fd_difference(near, near[:10], ref)


def test_features_must_be_a_matrix_of_two_rows_or_more():
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        fd(np.ones(5), np.ones((5, 1)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        kid(np.ones((1, 3)), np.ones((5, 3)))


def test_the_bootstrap_frechet_equals_the_projects_and_survives_a_singular_covariance():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(60, 8)) * 1.3 + 0.2
    assert _frechet(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(
        frechet_distance(*feature_statistics(a), *feature_statistics(b)), rel=1e-9)
    few = rng.normal(size=(4, 8))  # rank 3 covariance: no Cholesky
    assert _frechet(*feature_statistics(few), *feature_statistics(b)) == pytest.approx(
        frechet_distance(*feature_statistics(few), *feature_statistics(b)), rel=1e-9)


def test_differences_from_draws_kept_per_editor_equal_the_paired_bootstrap():
    rng = np.random.default_rng(8)
    ref, pairs = rng.normal(size=(80, 3)), rng.normal(size=(80, 3))
    a, b = fd_draws(pairs + 0.5, ref, 40, seed=2), fd_draws(pairs, ref, 40, seed=2)
    assert difference_of_draws(a, b) == fd_difference(pairs + 0.5, pairs, ref, 40, seed=2)
    with pytest.raises(ValueError, match="drawn differently"):
        difference_of_draws(a, fd_draws(pairs, ref, 30, seed=2))


def test_fd_of_fewer_rows_than_dimensions_takes_the_gram_way_to_the_same_number():
    from genfields.perception.metrics import feature_statistics, frechet_distance
    from genfields.perception.realism import _frechet_of_rows

    rng = np.random.default_rng(3)
    for n, m, d in ((20, 30, 64), (40, 25, 64), (80, 90, 64)):  # n < d, m < d; and the covariance way
        x, y = rng.normal(size=(n, d)), rng.normal(0.3, 1.2, size=(m, d))
        expected = frechet_distance(*feature_statistics(x), *feature_statistics(y))
        assert _frechet_of_rows(x, y) == pytest.approx(expected, rel=1e-6)  # two float64 routes
