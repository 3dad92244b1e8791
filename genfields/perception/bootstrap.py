"""Bootstrap confidence intervals of statistics of paired measurements.

A measurement here is one value (or one feature vector) per evaluation pair; a statistic maps index
arrays into one or more samples to a number (a mean, FD, KID, a difference of two editors on the same
pairs). `bootstrap` draws every sample's indices with replacement, recomputes the statistic on each
draw and returns the percentile interval: the pairs' sampling noise, with no assumption on the
statistic's distribution. Draws are seeded, so a report's intervals are reproducible.

    >>> ci = mean_interval(per_pair_pose)                    # Interval(value, lo, hi, level, resamples)
    >>> diff = paired_difference(pose_paper, pose_wspace)    # the mean of a - b over the same pairs
    >>> diff.excludes(0.0)                                   # the difference is not within noise of 0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

LEVEL = 0.95  # the intervals' coverage
RESAMPLES = 2000  # draws for cheap statistics (means); FD and KID use fewer (`realism`)
SEED = 0

Statistic = Callable[..., float]  # one index array per sample -> the statistic on that draw


@dataclass(frozen=True)
class Interval:
    """A statistic's value on the full samples and its percentile bootstrap interval [lo, hi]."""

    value: float
    lo: float
    hi: float
    level: float = LEVEL
    resamples: int = 0

    def excludes(self, margin: float) -> bool:
        """Whether `margin` lies outside [lo, hi] (the statistic differs from it beyond noise)."""
        return margin < self.lo or margin > self.hi

    def above(self, margin: float) -> bool:
        """The whole interval lies above `margin`."""
        return self.lo > margin

    def below(self, margin: float) -> bool:
        """The whole interval lies below `margin`."""
        return self.hi < margin

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Interval":
        return cls(**{k: data[k] for k in ("value", "lo", "hi", "level", "resamples") if k in data})

    def shifted(self, offset: float) -> "Interval":
        """The interval of the statistic plus a constant."""
        return Interval(self.value + offset, self.lo + offset, self.hi + offset, self.level, self.resamples)


def resample_indices(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[resamples, n] indices into a sample of n, drawn with replacement."""
    if n < 1:
        raise ValueError("a bootstrap needs a sample of at least one value")
    return rng.integers(0, n, size=(resamples, n))


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` interval of the bootstrap draws (percentile method; NaN draws are dropped)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if not draws.size:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_draws(statistic: Statistic, sizes: Sequence[int], resamples: int = RESAMPLES,
                    seed: int = SEED) -> tuple[float, np.ndarray]:
    """`statistic(*indices)` on the full samples (of `sizes`) and on each of `resamples` draws, each sample
    resampled with replacement independently of the others. The draws depend only on `sizes`, `resamples`
    and `seed`: statistics of two editors on the same pairs, drawn with one seed, see the same draws, so the
    draws of their difference are the differences of their draws."""
    value = float(statistic(*(np.arange(n) for n in sizes)))
    if resamples < 1:
        return value, np.zeros(0)
    rng = np.random.default_rng(seed)
    draws = [resample_indices(n, resamples, rng) for n in sizes]
    return value, np.array([statistic(*(d[r] for d in draws)) for r in range(resamples)], dtype=np.float64)


def interval_from_draws(value: float, draws: np.ndarray, level: float = LEVEL, recentre: bool = False) -> Interval:
    """The percentile interval of bootstrap draws around `value`.

    `recentre` moves the draws' percentile interval by the draws' median minus the value: for statistics
    that a draw with repeated rows biases (FD, KID: a repeated feature vector sits closer to itself than a
    new sample would), the spread of the draws is kept and centred on the value itself."""
    if not 0 < level < 1:
        raise ValueError(f"the interval's level must be in (0, 1), got {level}")
    draws = np.asarray(draws, dtype=np.float64)
    if not draws.size:
        return Interval(value, float("nan"), float("nan"), level, 0)
    lo, hi = percentile_interval(draws, level)
    finite = draws[np.isfinite(draws)]
    if recentre and finite.size:
        shift = float(np.median(finite)) - value
        lo, hi = lo - shift, hi - shift
    return Interval(value, lo, hi, level, len(draws))


def bootstrap(statistic: Statistic, sizes: Sequence[int], resamples: int = RESAMPLES, level: float = LEVEL,
              seed: int = SEED, recentre: bool = False) -> Interval:
    """`statistic(*indices)` on the full samples and its percentile interval over `resamples` draws
    (`bootstrap_draws`, `interval_from_draws`)."""
    if not 0 < level < 1:
        raise ValueError(f"the interval's level must be in (0, 1), got {level}")
    return interval_from_draws(*bootstrap_draws(statistic, sizes, resamples, seed), level, recentre)


def mean_interval(values: np.ndarray, resamples: int = RESAMPLES, level: float = LEVEL,
                  seed: int = SEED) -> Interval:
    """The mean of per-pair values and its bootstrap interval (pairs resampled)."""
    x = _finite_1d(values)
    return bootstrap(lambda i: x[i].mean(), [len(x)], resamples, level, seed)


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, level: float = LEVEL,
                      seed: int = SEED) -> Interval:
    """mean(a) - mean(b) of two measurements of the same pairs (a[i] and b[i] of pair i), with its bootstrap
    interval: pairs are resampled together, so what the pairs share cancels."""
    x, y = _finite_1d(a), _finite_1d(b)
    if x.shape != y.shape:
        raise ValueError(f"a paired difference needs values of the same pairs, got {x.shape} and {y.shape}")
    d = x - y
    return bootstrap(lambda i: d[i].mean(), [len(d)], resamples, level, seed)


def _finite_1d(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(x).all():
        raise ValueError("bootstrap values must be finite")
    return x
