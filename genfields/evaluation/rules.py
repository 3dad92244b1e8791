"""The paper's claims as checks that know the noise of the numbers (docs/rules.md states them in words).

A check compares a difference to a margin. The difference comes with its 95% bootstrap interval (pairs,
or tests, resampled: `perception.bootstrap`), oriented so that a positive difference favours the claim.
The check *holds* when the whole interval lies above the margin, *fails* when it lies below, and is
*within noise* when the interval contains the margin: the pairs we happened to draw cannot tell. A
check is *not decided* when the numbers do not meet the claim's precondition (no matched realism).

The rules were written before the report's numbers were regenerated with them and are not adjusted to
what they give; the paper's own numbers, printed without intervals, are read as exact (zero-width
intervals), which can only favour them.

Rules here:
- `decide`: one difference against a margin;
- `compare_points`, `pareto_front`, `matched_realism_check`: Tables 1 and 2, a metric compared at matched
  realism: operating points with intervals on both axes (FD and the metric), each family's Pareto front,
  dominance beyond noise;
- `collapsed`: an editor whose outputs are no more like their identity than another person's leaves its
  family;
- `ordering_check`: Table 3's "best of" and "worse than" orderings;
- `sparsity_checks`: Figure 7 against a Gaussian null scaled by S's per-channel standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from genfields.evaluation.sparsity import HIGH_FUNCTIONAL, normalised_magnitudes
from genfields.perception.bootstrap import LEVEL, RESAMPLES, SEED, Interval, bootstrap

HOLDS, FAILS, NOISE, UNDECIDED = "holds", "fails", "within noise", "not decided"
OUTCOMES = (HOLDS, FAILS, NOISE, UNDECIDED)
NULL_DRAWS = 200  # Gaussian dS draws of Figure 7's null


@dataclass
class RuleCheck:
    """One comparison: its statement, outcome (`OUTCOMES`), the margin and the numbers behind it."""

    claim: str
    outcome: str
    evidence: str
    margin: float = 0.0
    interval: dict | None = None  # the decisive difference's Interval, where one decides it

    @property
    def holds(self) -> bool | None:
        """True / False where the check holds / fails beyond noise; None within noise or not decided."""
        return {HOLDS: True, FAILS: False}.get(self.outcome)

    def to_dict(self) -> dict:
        return {"claim": self.claim, "outcome": self.outcome, "holds": self.holds, "evidence": self.evidence,
                "margin": self.margin, "interval": self.interval}


@dataclass
class RuleVerdict:
    """A claim and its checks: supported (all hold), partly supported (some hold or some fail, not all
    fail), not supported (some fail, none holds), within noise (none holds or fails), not decided."""

    claim: str
    checks: list[RuleCheck] = field(default_factory=list)

    @property
    def status(self) -> str:
        outcomes = [c.outcome for c in self.checks]
        held, failed = outcomes.count(HOLDS), outcomes.count(FAILS)
        if all(o == UNDECIDED for o in outcomes):
            return "not decided"
        if held == len(outcomes):
            return "supported"
        if failed and not held:
            return "not supported"
        if held or failed:
            return "partly supported"
        return "within noise"

    def to_dict(self) -> dict:
        return {"claim": self.claim, "status": self.status, "checks": [c.to_dict() for c in self.checks]}


def exact(value: float) -> Interval:
    """A number printed without noise (the paper's), as a zero-width interval."""
    return Interval(float(value), float(value), float(value))


def decide(diff: Interval, margin: float = 0.0) -> str:
    """`diff` (positive favours the claim) against `margin`: holds above it, fails below, else within noise."""
    if not (np.isfinite(diff.lo) and np.isfinite(diff.hi)):
        return UNDECIDED
    return HOLDS if diff.lo > margin else (FAILS if diff.hi < margin else NOISE)


def oriented(diff: Interval, higher: bool) -> Interval:
    """A difference a - b made positive where a is better (for a lower-is-better metric, b - a)."""
    if higher:
        return diff
    return Interval(-diff.value, -diff.hi, -diff.lo, diff.level, diff.resamples)


def describe(diff: Interval, digits: int = 4) -> str:
    return f"{diff.value:+.{digits}g} [{diff.lo:+.{digits}g}, {diff.hi:+.{digits}g}]"


def check(claim: str, diff: Interval, higher: bool = True, margin: float = 0.0, evidence: str = "") -> RuleCheck:
    """The claim that a's value exceeds b's by more than `margin` (`higher`), or falls below it by more than
    `margin` (not `higher`), from `diff` = a - b and its interval."""
    d = oriented(diff, higher)
    return RuleCheck(claim, decide(d, margin), (evidence + "; " if evidence else "") + f"difference {describe(diff)}"
                     f" (95% interval), margin {margin:g}", margin, d.to_dict())


# --- matched realism (Tables 1 and 2) -----------------------------------------------------------------
DOMINATES, DOMINATED, TRADE_OFF = "dominates", "dominated", "trade-off"


def compare_points(metric_diff: Interval, fd_diff: Interval, higher: bool) -> str:
    """How point a stands to point b on (realism, metric), from the paired differences a - b of the metric
    (`higher`: higher is better) and of FD (lower is better), each with its interval:
    - `dominates`: a's metric better beyond noise and a's FD not worse beyond noise;
    - `dominated`: b's metric better beyond noise and b's FD not worse beyond noise;
    - `within noise`: the metric difference is within noise of 0;
    - `trade-off`: one is better on the metric, the other on realism, both beyond noise (no matched realism)."""
    metric = decide(oriented(metric_diff, higher))
    realism = decide(oriented(fd_diff, higher=False))  # HOLDS: a more realistic, FAILS: less
    if metric == HOLDS:
        return DOMINATES if realism != FAILS else TRADE_OFF
    if metric == FAILS:
        return DOMINATED if realism != HOLDS else TRADE_OFF
    return NOISE


def pareto_front(names: Sequence[str], standing: dict[tuple[str, str], str]) -> list[str]:
    """The points of one family on its front: those no other point of the family dominates beyond noise.
    `standing[(q, p)]` is `compare_points` of q against p (q's differences minus p's)."""
    return [p for p in names if not any(standing.get((q, p)) == DOMINATES for q in names if q != p)]


def matched_realism_check(claim: str, comparisons: dict[tuple[str, str], tuple[Interval, Interval]],
                          higher: bool) -> RuleCheck:
    """Does the method's family beat the baseline's at matched realism? `comparisons` maps each (method point,
    baseline point) to the paired differences (metric, FD) of method minus baseline on the same pairs.
    Holds when some method point dominates a baseline point and no baseline point dominates a method point;
    fails when the reverse, or when both happen (the fronts cross: not better at every realism); within noise
    when no point dominates and some pair is within noise on the metric; not decided when every pair is a
    trade-off (no two points share a realism)."""
    if not comparisons:
        return RuleCheck(claim, UNDECIDED, "no operating points to compare")
    standing = {pair: compare_points(m, f, higher) for pair, (m, f) in comparisons.items()}
    wins = [p for p, s in standing.items() if s == DOMINATES]
    losses = [p for p, s in standing.items() if s == DOMINATED]
    outcome = (FAILS if losses else HOLDS) if wins else (
        FAILS if losses else (NOISE if NOISE in standing.values() else UNDECIDED))
    if wins and losses:
        note = "the fronts cross: "
    elif outcome == UNDECIDED:
        note = "no matched realism (every pair of points trades realism for the metric beyond noise): "
    else:
        note = ""
    evidence = note + "; ".join(
        f"{a} vs {b}: {standing[(a, b)]} ({'metric' if higher else 'error'} {describe(m)}, FD {describe(f, 3)})"
        for (a, b), (m, f) in comparisons.items())
    return RuleCheck(claim, outcome, evidence)


def collapsed(identity_minus_impostor: Interval) -> bool:
    """An editor has collapsed when its outputs are not more like their identity images than another
    person's images are, beyond noise: the interval of (identity similarity to the own identity image minus
    the similarity of that image to another pair's identity image) does not lie above 0."""
    return decide(identity_minus_impostor) != HOLDS


def family_members(names: Sequence[str], identity_minus_impostor: dict[str, Interval]) -> tuple[list[str], list[str]]:
    """A family's operating points split into (kept, collapsed) by `collapsed`; a name without an interval is
    kept."""
    out = [n for n in names if n in identity_minus_impostor and collapsed(identity_minus_impostor[n])]
    return [n for n in names if n not in out], out


# --- orderings (Table 3) -------------------------------------------------------------------------------
def ordering_check(claim: str, diffs: dict[str, Interval], higher: bool) -> RuleCheck:
    """The subject's value is above (`higher`) or below (not `higher`) each other row's: `diffs` maps each
    other row to the paired difference subject - other. Holds when every difference is on the claimed side
    beyond noise; fails when any is on the other side beyond noise; else within noise."""
    outcomes = {name: decide(oriented(d, higher)) for name, d in diffs.items()}
    values = list(outcomes.values())
    outcome = FAILS if FAILS in values else (HOLDS if values and all(o == HOLDS for o in values) else
                                             (UNDECIDED if not values or UNDECIDED in values else NOISE))
    return RuleCheck(claim, outcome, "; ".join(f"vs {n}: {describe(d)} {outcomes[n]}" for n, d in diffs.items()))


# --- Figure 7 ------------------------------------------------------------------------------------------
def per_test_share_above(dS: np.ndarray, threshold: float = HIGH_FUNCTIONAL) -> np.ndarray:
    """Per test (row), the share of dimensions whose normalised |dS| is at least `threshold`."""
    return (normalised_magnitudes(dS) >= threshold - 1e-12).mean(axis=1)


def scaled_gaussian_null(std: np.ndarray, draws: int = NULL_DRAWS, seed: int = SEED) -> np.ndarray:
    """`draws` dense dS ~ N(0, diag(std^2)): a control signal as spread over channels as S itself is."""
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    return np.random.default_rng(seed).standard_normal((draws, len(std))) * std


def sparsity_checks(observed: np.ndarray, null: np.ndarray, resamples: int = RESAMPLES, level: float = LEVEL,
                    seed: int = SEED) -> list[RuleCheck]:
    """Figure 7's checks from per-test shares of high-functional dimensions (`per_test_share_above`) of the
    observed dS and of the null's draws: (1) the observed mean share is under half the null's (difference
    0.5 null - observed above 0; tests and null draws resampled); (2) most dimensions lie below 0.6 (the
    observed mean share under 0.5)."""
    obs, nul = np.asarray(observed, dtype=np.float64), np.asarray(null, dtype=np.float64)
    half = bootstrap(lambda i, j: 0.5 * nul[j].mean() - obs[i].mean(), [len(obs), len(nul)], resamples, level, seed)
    most = bootstrap(lambda i: 0.5 - obs[i].mean(), [len(obs)], resamples, level, seed)
    return [
        RuleCheck("share of dimensions with normalised |dS| >= 0.6 is under half the scaled Gaussian null's",
                  decide(half), f"observed {obs.mean():.4%} per test, null {nul.mean():.4%}; half the null minus "
                  f"observed {describe(half)}", 0.0, half.to_dict()),
        RuleCheck("most dimensions lie below 0.6", decide(most),
                  f"0.5 minus the observed share {describe(most)}", 0.0, most.to_dict()),
    ]
