"""Every rule of genfields.evaluation.rules on hand-made numbers, "within noise" included (docs/rules.md)."""

import numpy as np
import pytest

from genfields.evaluation import rules
from genfields.evaluation.rules import FAILS, HOLDS, NOISE, UNDECIDED, RuleCheck, RuleVerdict
from genfields.perception.bootstrap import Interval


def iv(lo: float, hi: float) -> Interval:
    return Interval((lo + hi) / 2, lo, hi)


@pytest.mark.parametrize("lo, hi, margin, outcome", [
    (0.1, 0.5, 0.0, HOLDS), (-0.5, -0.1, 0.0, FAILS), (-0.1, 0.5, 0.0, NOISE),
    (0.1, 0.5, 0.2, NOISE), (0.3, 0.5, 0.2, HOLDS), (0.0, 0.1, 0.2, FAILS),
    (float("nan"), float("nan"), 0.0, UNDECIDED),
])
def test_decide_against_a_margin(lo, hi, margin, outcome):
    assert rules.decide(iv(lo, hi), margin) == outcome


def test_check_orients_lower_is_better_metrics():
    # pose error a - b = -2 [-3, -1]: a's error is lower, so "a has a lower error" holds
    assert rules.check("lower pose", iv(-3, -1), higher=False).outcome == HOLDS
    assert rules.check("higher identity", iv(-3, -1), higher=True).outcome == FAILS
    assert rules.check("lower pose", iv(-3, 1), higher=False).outcome == NOISE
    assert rules.check("lower pose", iv(-3, -1), higher=False, margin=1.5).outcome == NOISE


@pytest.mark.parametrize("metric, fd, higher, standing", [
    ((0.1, 0.2), (-1, 1), True, rules.DOMINATES),      # better identity, realism within noise
    ((0.1, 0.2), (-3, -1), True, rules.DOMINATES),     # better identity and more realistic
    ((0.1, 0.2), (1, 3), True, rules.TRADE_OFF),       # better identity, less realistic beyond noise
    ((-0.2, -0.1), (-1, 1), True, rules.DOMINATED),
    ((-0.2, -0.1), (-3, -1), True, rules.TRADE_OFF),   # worse identity but more realistic
    ((-0.1, 0.2), (-3, -1), True, NOISE),
    ((-2, -1), (-1, 1), False, rules.DOMINATES),       # lower pose error at matched realism
    ((1, 2), (-1, 1), False, rules.DOMINATED),
])
def test_compare_points(metric, fd, higher, standing):
    assert rules.compare_points(iv(*metric), iv(*fd), higher) == standing


def test_matched_realism_holds_fails_crosses_is_within_noise_or_undecided():
    fd_same, fd_worse = iv(-1, 1), iv(2, 4)
    win, loss, tie = iv(0.1, 0.2), iv(-0.2, -0.1), iv(-0.1, 0.1)
    check = rules.matched_realism_check
    assert check("c", {("ours", "w1"): (win, fd_same), ("ours", "w2"): (tie, fd_same)}, True).outcome == HOLDS
    assert check("c", {("ours", "w1"): (loss, fd_same), ("ours", "w2"): (tie, fd_same)}, True).outcome == FAILS
    crossed = check("c", {("ours", "w1"): (win, fd_same), ("o2", "w2"): (loss, fd_same)}, True)
    assert crossed.outcome == FAILS and "fronts cross" in crossed.evidence
    assert check("c", {("ours", "w1"): (tie, fd_same), ("ours", "w2"): (tie, fd_worse)}, True).outcome == NOISE
    undecided = check("c", {("ours", "w1"): (win, fd_worse)}, True)
    assert undecided.outcome == UNDECIDED and "no matched realism" in undecided.evidence
    assert check("c", {}, True).outcome == UNDECIDED


def test_a_collapsed_editor_leaves_its_family():
    margins = {"wspace": iv(0.3, 0.4), "wspace-adv3": iv(0.01, 0.2), "wspace-adv10": iv(-0.05, 0.03)}
    kept, out = rules.family_members(["wspace", "wspace-adv3", "wspace-adv10", "wspace-adv1"], margins)
    assert kept == ["wspace", "wspace-adv3", "wspace-adv1"] and out == ["wspace-adv10"]
    assert rules.collapsed(iv(-0.3, -0.1)) and rules.collapsed(iv(-0.01, 0.01)) and not rules.collapsed(iv(0.01, 0.1))


def test_ordering_holds_fails_or_is_within_noise():
    best = {"1": iv(-3, -1), "2": iv(-2, -0.5)}  # pose of config 3 minus the others: lower everywhere
    assert rules.ordering_check("3 has the best pose", best, higher=False).outcome == HOLDS
    assert rules.ordering_check("3 has the best pose", {**best, "4": iv(-1, 0.5)}, False).outcome == NOISE
    assert rules.ordering_check("3 has the best pose", {**best, "4": iv(0.2, 0.5)}, False).outcome == FAILS
    assert rules.ordering_check("3 has the best pose", {}, False).outcome == UNDECIDED


def test_sparsity_checks_against_a_scaled_null():
    sparse = np.zeros((40, 100))
    sparse[:, :2] = 1.0  # 2% of the dimensions at the maximum
    sparse[::2, 2] = 0.7  # every other test one more above 0.6
    observed = rules.per_test_share_above(sparse)
    assert observed.mean() == pytest.approx(0.025)
    null_high = np.full(200, 0.2)  # half of it: 0.1 > 0.025
    null_low = np.full(200, 0.04)  # half of it: 0.02 < 0.025
    null_near = np.random.default_rng(0).choice([0.0, 0.1], 200)  # half of it ~0.025: within noise
    assert [c.outcome for c in rules.sparsity_checks(observed, null_high)] == [HOLDS, HOLDS]
    assert rules.sparsity_checks(observed, null_low)[0].outcome == FAILS
    assert rules.sparsity_checks(observed, null_near)[0].outcome == NOISE
    dense = rules.per_test_share_above(np.random.default_rng(1).uniform(0.5, 1, (40, 100)))
    assert rules.sparsity_checks(dense, null_high)[1].outcome == FAILS
    near_half = np.random.default_rng(2).choice([0.3, 0.7], 40)
    assert rules.sparsity_checks(near_half, null_high)[1].outcome == NOISE


def test_scaled_null_follows_the_channel_spread():
    std = np.concatenate([np.full(990, 0.3), np.full(10, 3.0)])
    wide = rules.per_test_share_above(rules.scaled_gaussian_null(std)).mean()
    unit = rules.per_test_share_above(rules.scaled_gaussian_null(np.ones(1000))).mean()
    assert wide < 0.02 < unit  # a few wide channels take the maximum: fewer dims reach 0.6 of it


def test_verdict_status():
    def c(outcome):
        return RuleCheck("x", outcome, "")
    assert RuleVerdict("v", [c(HOLDS), c(HOLDS)]).status == "supported"
    assert RuleVerdict("v", [c(HOLDS), c(NOISE)]).status == "partly supported"
    assert RuleVerdict("v", [c(HOLDS), c(FAILS)]).status == "partly supported"
    assert RuleVerdict("v", [c(FAILS), c(NOISE)]).status == "not supported"
    assert RuleVerdict("v", [c(NOISE), c(UNDECIDED)]).status == "within noise"
    assert RuleVerdict("v", [c(UNDECIDED)]).status == "not decided"
    assert RuleVerdict("v", [c(HOLDS)]).to_dict()["checks"][0]["holds"] is True


def test_the_papers_numbers_read_as_exact():
    assert rules.check("identity higher", rules.exact(0.82 - 0.60)).outcome == HOLDS  # Table 1: Ours vs IDDISEN
    assert rules.check("pose lower", rules.exact(1.67 - 9.74), higher=False).outcome == HOLDS
    assert rules.check("pose lower", rules.exact(0.0), higher=False).outcome == NOISE  # a tie decides nothing


def test_pareto_front_drops_points_their_own_family_dominates():
    standing = {("a", "b"): rules.DOMINATES, ("b", "a"): rules.DOMINATED, ("a", "c"): NOISE, ("c", "a"): NOISE,
                ("b", "c"): rules.TRADE_OFF, ("c", "b"): rules.TRADE_OFF}
    assert rules.pareto_front(["a", "b", "c"], standing) == ["a", "c"]
    assert rules.pareto_front(["a"], {}) == ["a"]
