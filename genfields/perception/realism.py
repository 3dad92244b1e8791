"""Realism of a set of images as distances between feature sets: FD and KID, each with a bootstrap interval.

Generic over feature arrays [N, D] (any network's features; NumPy or torch), so a GAN quality probe
and the editing evaluation share one implementation:

    >>> from genfields.perception.realism import fd, kid, fd_difference, kid_difference
    >>> fd(generated, reference)                    # Interval(value, lo, hi, level, resamples)
    >>> kid(generated, reference).value             # unbiased MMD^2, cubic polynomial kernel
    >>> fd_difference(editor_a, editor_b, reference)  # FD(a) - FD(b), rows of a and b = the same pairs
    >>> difference_of_draws(fd_draws(a, ref), fd_draws(b, ref))   # the same, from draws kept per editor

- FD: the Fréchet distance of Gaussians fitted to the two sets (`metrics.frechet_distance`; FID when
  the features are InceptionV3's pool features). Biased upward at small N: compare FDs of equal N only.
- KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimator of the squared MMD with
  the kernel k(x, y) = (x . y / D + 1)^3; its expectation does not depend on N, so sets of different
  sizes compare.
Intervals resample each set with replacement independently (`bootstrap`) and recompute the distance on
every draw; for a difference of two editors on the same pairs their rows are drawn together and the
reference once per draw, so what they share cancels. A draw repeats rows, which biases both distances
upward (FD: fewer distinct points per covariance; KID: a row meets its own copy), so the intervals are
the draws' percentile intervals recentred on the value (`interval_from_draws(recentre=True)`): the spread a new
draw of pairs gives, around the number reported. KID's draws also leave out the kernel of a row with its
own copies, as a new sample would have no such pair.
"""

from __future__ import annotations

import numpy as np

from .bootstrap import LEVEL, SEED, Interval, bootstrap_draws, interval_from_draws
from .metrics import feature_statistics, frechet_distance

RESAMPLES = 200  # draws of FD and KID (each FD draw: two D x D covariances and an eigenvalue solve)
KID_DEGREE = 3


def as_features(x) -> np.ndarray:
    """[N, D] float64 features from a NumPy array or a torch tensor; N >= 2 (FD needs a covariance)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be [N, D] with N >= 2, got shape {x.shape}")
    return x


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = KID_DEGREE) -> np.ndarray:
    """k(x, y) = (x . y / D + 1)^degree for every row of x against every row of y."""
    return (x @ y.T / x.shape[1] + 1.0) ** degree


def fd_value(a, b) -> float:
    """FD of two feature sets (no interval)."""
    return frechet_distance(*feature_statistics(as_features(a)), *feature_statistics(as_features(b)))


def _frechet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """`frechet_distance` for the bootstrap's many draws: with sigma1 = L L^T (Cholesky), L^T sigma2 L has the
    eigenvalues of sigma1 sigma2, so one eigenvalue solve replaces two eigen-decompositions (twice as fast);
    a singular sigma1 (fewer distinct rows than dimensions) takes `frechet_distance`'s way."""
    try:
        chol = np.linalg.cholesky(sigma1)
    except np.linalg.LinAlgError:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    inner = chol.T @ sigma2 @ chol
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * cross)


def _frechet_of_rows(x: np.ndarray, y: np.ndarray) -> float:
    """FD of two row sets [n, D] and [m, D]. With fewer rows than dimensions the covariances have rank below D,
    and the nonzero eigenvalues of S1 S2 are those of the small Gram product (Xc Yc^T)(Xc Yc^T)^T / ((n-1)(m-1))
    (Xc, Yc the centred rows): one n x m product and an eigenvalue solve of the smaller side, instead of two
    D x D covariances and a D x D solve (InceptionV3's D = 2048 against a few hundred pairs)."""
    n, m, d = len(x), len(y), x.shape[1]
    if min(n, m) >= d:
        return _frechet(*feature_statistics(x), *feature_statistics(y))
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    cross_rows = xc @ yc.T  # [n, m]
    gram = cross_rows @ cross_rows.T if n <= m else cross_rows.T @ cross_rows
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(gram / ((n - 1) * (m - 1))), 0, None)).sum()
    diff = x.mean(axis=0) - y.mean(axis=0)
    return float(diff @ diff + (xc * xc).sum() / (n - 1) + (yc * yc).sum() / (m - 1) - 2 * cross)


def kid_value(a, b) -> float:
    """The unbiased squared MMD of two feature sets under the cubic polynomial kernel (no interval)."""
    x, y = as_features(a), as_features(b)
    return _KernelSums(x, y).kid(np.ones(len(x)), np.ones(len(y)))


def fd_draws(a, b, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, np.ndarray]:
    """FD of `a` to `b` and its bootstrap draws (both sets resampled; `bootstrap_draws`)."""
    x, y = as_features(a), as_features(b)
    return bootstrap_draws(lambda i, j: _frechet_of_rows(x[i], y[j]), [len(x), len(y)], resamples, seed)


def kid_draws(a, b, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, np.ndarray]:
    """KID of `a` to `b` and its bootstrap draws (both sets resampled)."""
    x, y = as_features(a), as_features(b)
    sums = _KernelSums(x, y)
    return bootstrap_draws(lambda i, j: sums.kid(_counts(i, len(x)), _counts(j, len(y))), [len(x), len(y)],
                           resamples, seed)


def fd(a, b, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Interval:
    """FD of features `a` to `b`, with its bootstrap interval (both sets resampled)."""
    return interval_from_draws(*fd_draws(a, b, resamples, seed), level, recentre=True)


def kid(a, b, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Interval:
    """KID of features `a` to `b`, with its bootstrap interval (both sets resampled)."""
    return interval_from_draws(*kid_draws(a, b, resamples, seed), level, recentre=True)


def difference_of_draws(first: tuple[float, np.ndarray], second: tuple[float, np.ndarray],
                        level: float = LEVEL) -> Interval:
    """The interval of a difference from the (value, draws) of its two terms, drawn with the same seed on sets
    of the same sizes (`fd_draws`, `kid_draws` of two editors on the same pairs and the same reference): the
    draws pair up, so this equals `fd_difference` / `kid_difference` without recomputing either distance."""
    (v1, d1), (v2, d2) = first, second
    if d1.shape != d2.shape:
        raise ValueError(f"the two terms were drawn differently: {d1.shape} and {d2.shape} draws")
    return interval_from_draws(v1 - v2, d1 - d2, level, recentre=True)


def fd_difference(a1, a2, b, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Interval:
    """FD(a1, b) - FD(a2, b), where row i of a1 and of a2 come from the same pair i (two editors on the same
    pairs): the pairs are drawn together, the reference `b` independently."""
    _same_pairs(as_features(a1), as_features(a2))
    return difference_of_draws(fd_draws(a1, b, resamples, seed), fd_draws(a2, b, resamples, seed), level)


def kid_difference(a1, a2, b, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Interval:
    """KID(a1, b) - KID(a2, b) of two editors on the same pairs (see `fd_difference`)."""
    _same_pairs(as_features(a1), as_features(a2))
    return difference_of_draws(kid_draws(a1, b, resamples, seed), kid_draws(a2, b, resamples, seed), level)


class _KernelSums:
    """The kernel matrices of two sets, so that KID of any resample is a few matrix-vector products: a draw
    is the count c_i of each row in it; within a set its pairs of distinct rows sum to c K c - sum c_i^2 K_ii
    over m^2 - sum c_i^2 of them (with all counts 1, the unbiased estimator's sum over i != j)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"feature sets of different dimensions: {x.shape[1]} and {y.shape[1]}")
        self.kxx, self.kyy, self.kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        self.dxx, self.dyy = np.diag(self.kxx).copy(), np.diag(self.kyy).copy()

    def kid(self, cx: np.ndarray, cy: np.ndarray) -> float:
        m, n = cx.sum(), cy.sum()
        if m * m == cx @ cx or n * n == cy @ cy:
            return float("nan")  # a draw of one distinct row has no pair of rows (dropped from the interval)
        xx = (cx @ self.kxx @ cx - (cx * cx) @ self.dxx) / (m * m - cx @ cx)
        yy = (cy @ self.kyy @ cy - (cy * cy) @ self.dyy) / (n * n - cy @ cy)
        return float(xx + yy - 2 * (cx @ self.kxy @ cy) / (m * n))


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(indices, minlength=n).astype(np.float64)


def _same_pairs(x1: np.ndarray, x2: np.ndarray) -> None:
    if x1.shape != x2.shape:
        raise ValueError(f"a paired difference needs the features of the same pairs, got {x1.shape} and {x2.shape}")
