"""The report's verdicts under the noise rules (`rules`, docs/rules.md), from the per-pair values of its rows.

Every comparison is paired: two editors evaluated on the same pairs (`editing.evaluate.PairValues`) give
the interval of their mean difference (identity, expression, pose) and of their FD difference. Pose is
read by the primary pose judge (`perception.judges.PRIMARY_POSE_JUDGE`, the real 3DDFA_V2) where the run
has it, and by the synthetic judge beside it; where the two judges' checks disagree beyond noise (one
holds, the other fails), the verdict says so.
"""

from __future__ import annotations

import numpy as np

from genfields.editing.evaluate import PairValues
from genfields.evaluation import paper_numbers as paper
from genfields.evaluation import rules
from genfields.evaluation.rules import FAILS, HOLDS, RuleCheck, RuleVerdict, exact
from genfields.perception import realism
from genfields.perception.bootstrap import paired_difference
from genfields.perception.judges import PRIMARY_POSE_JUDGE

PRIMARY_POSE = f"pose_{PRIMARY_POSE_JUDGE}"
HIGHER = {"identity": True, "expression": False, "pose": False, PRIMARY_POSE: False}


def pose_keys(values: PairValues) -> list[str]:
    """The pose metrics to check, the primary judge's first (the synthetic judge's `pose` beside it)."""
    return [k for k in (PRIMARY_POSE, "pose") if k in values.metrics["method"]]


def pose_label(key: str) -> str:
    return "pose by 3DDFA_V2" if key == PRIMARY_POSE else "pose by the synthetic judge"


class Comparisons:
    """Paired differences between rows (named like the report's editors) on the same pairs, computed once."""

    def __init__(self, values: dict[str, PairValues], fd_resamples: int = realism.RESAMPLES):
        self.values, self.fd_resamples = values, fd_resamples

    def metric(self, a: str, b: str, key: str):
        return paired_difference(self.values[a].metrics["method"][key], self.values[b].metrics["method"][key])

    def fd(self, a: str, b: str):
        """FD(a) - FD(b) on the same pairs and real set, from each row's FD draws (computed once per row); in the
        independent realism network's features where both rows have them, else the FD network's."""
        va, vb = self.values[a], self.values[b]
        if va.pairs != vb.pairs or not np.array_equal(va.features["real"], vb.features["real"]):
            raise ValueError(f"rows {a} and {b} were not evaluated on the same pairs")
        space = va.realism_space if va.realism_space == vb.realism_space else ""
        return realism.difference_of_draws(va.realism_draws("fd", resamples=self.fd_resamples, space=space),
                                           vb.realism_draws("fd", resamples=self.fd_resamples, space=space))


def front(comparisons: Comparisons, names: list[str], key: str) -> list[str]:
    """A family's Pareto front on (FD, `key`) beyond noise (`rules.pareto_front`)."""
    higher = HIGHER.get(key, False)
    standing = {(q, p): rules.compare_points(comparisons.metric(q, p, key), comparisons.fd(q, p), higher)
                for q in names for p in names if q != p}
    return rules.pareto_front(names, standing)


def matched_check(comparisons: Comparisons, claim: str, method: list[str], baseline: list[str], key: str) -> RuleCheck:
    """`rules.matched_realism_check` between the two families' Pareto fronts on `key`."""
    m_front, b_front = front(comparisons, method, key), front(comparisons, baseline, key)
    pairs = {(p, q): (comparisons.metric(p, q, key), comparisons.fd(p, q)) for p in m_front for q in b_front}
    check = rules.matched_realism_check(claim, pairs, HIGHER.get(key, False))
    off = [n for n in method + baseline if n not in m_front + b_front]
    if off:
        check.evidence = f"off their family's front (dominated within it): {', '.join(off)}; " + check.evidence
    return check


def judges_disagree(checks: list[RuleCheck]) -> bool:
    """One pose judge's check holds where the other's fails."""
    outcomes = {c.outcome for c in checks}
    return HOLDS in outcomes and FAILS in outcomes


def _pose_checks(make, keys: list[str], claim: str) -> list[RuleCheck]:
    checks = [make(f"{claim} ({pose_label(k)})", k) for k in keys]
    if judges_disagree(checks):
        for c in checks:
            c.evidence += "; the two pose judges disagree beyond noise"
    return checks


def collapse_split(values: dict[str, PairValues], names: list[str]) -> tuple[list[str], list[str]]:
    """`rules.family_members` on the rows' identity over the impostor level."""
    margins = {n: values[n].identity_over_impostor() for n in names if values[n].impostor is not None}
    return rules.family_members(names, margins)


def table1_verdict(comparisons: Comparisons, method: list[str], baseline: list[str]) -> tuple[RuleVerdict, dict]:
    """Sec. 4.1.1 under the noise rules: each family's collapsed rows left out, then identity and pose (each
    pose judge) compared at matched realism. Returns the verdict and the families as compared."""
    values = comparisons.values
    method_kept, method_out = collapse_split(values, method)
    base_kept, base_out = collapse_split(values, baseline)
    keys = pose_keys(values[method[0]])
    claims = ["identity higher than the W-space baseline's",
              *[f"pose error lower than the W-space baseline's ({pose_label(k)})" for k in keys]]
    if not method_kept or not base_kept:
        why = (f"no row left in the {'`paper`' if not method_kept else 'W'} family: every one collapsed "
               f"({', '.join(method_out if not method_kept else base_out)})")
        checks = [RuleCheck(claim, rules.UNDECIDED, why) for claim in claims]
    else:
        checks = [matched_check(comparisons, claims[0], method_kept, base_kept, "identity")]
        checks += _pose_checks(lambda c, k: matched_check(comparisons, c, method_kept, base_kept, k), keys,
                               "pose error lower than the W-space baseline's")
    return (RuleVerdict("Table 1: editing in S beats the W-space baseline on identity and pose (matched realism, "
                        "95% intervals)", checks),
            {"paper": method_kept, "wspace": base_kept, "collapsed": method_out + base_out})


def table2_verdict(comparisons: Comparisons) -> RuleVerdict:
    """Sec. 4.1.2 under the noise rules, each comparison at matched realism (one point a side)."""
    keys = pose_keys(comparisons.values["paper"])

    def one(claim: str, a: str, b: str, key: str) -> RuleCheck:
        return matched_check(comparisons, claim, [a], [b], key)

    checks = [one("no-concat has a lower expression error than default", "no-concat", "default", "expression")]
    checks += _pose_checks(lambda c, k: one(c, "no-concat", "default", k), keys,
                           "no-concat has a lower pose error than default")
    checks += _pose_checks(lambda c, k: one(c, "paper", "style-reg", k), keys,
                           "paper (+ Euler-angle loss) has a lower pose error than style-reg")
    return RuleVerdict("Table 2: removing F_id improves editing; the Euler-angle loss improves pose (matched "
                       "realism, 95% intervals)", checks)


class ExactRows:
    """Printed rows (the paper's) behind the `Comparisons` interface: differences as exact intervals."""

    def __init__(self, rows: dict[str, dict]):
        self.rows = rows

    def metric(self, a: str, b: str, key: str):
        return exact(self.rows[a][key] - self.rows[b][key])


def table3_verdict(comparisons: Comparisons | ExactRows, keys: list[str] | None = None,
                   realism_check: bool = True) -> RuleVerdict:
    """Sec. 4.2.2 under the noise rules: each ordering from paired differences on the same tests (rows named
    "1" ... "5"); `keys`: the pose metrics (default: those of the rows' values); `realism_check`: with the
    FD ordering (the paper prints no FD for Table 3)."""
    keys = keys or pose_keys(comparisons.values["1"])

    def order(claim: str, subject: str, others: list[str], key: str, higher: bool) -> RuleCheck:
        diffs = {o: (comparisons.fd(subject, o) if key == "fd" else comparisons.metric(subject, o, key))
                 for o in others}
        return rules.ordering_check(claim, diffs, higher)

    all_but = lambda k: [c for c in "12345" if c != k]  # noqa: E731
    checks = _pose_checks(lambda c, k: order(c, "3", all_but("3"), k, False), keys,
                          "config 3 (fields larger than the face) has the best pose of the five")
    checks += [order("config 3 loses expression: worse than configs 1, 2 and 4", "3", ["1", "2", "4"],
                     "expression", True),
               order("config 5 (fields much smaller than the face) has the worst identity", "5", all_but("5"),
                     "identity", False),
               order("config 5 has the worst expression", "5", all_but("5"), "expression", True)]
    checks += _pose_checks(lambda c, k: order(c, "5", ["4"], k, False), keys,
                           "config 5 matches pose better than config 4 (at the cost of torn faces)")
    if realism_check:
        checks.append(order("config 5 has the worst image quality (highest FD)", "5", all_but("5"), "fd", True))
    return RuleVerdict("Table 3: fields larger than the face control pose but lose expression; fields much smaller "
                       "than the face break identity and image quality (95% intervals)", checks)


def sparsity_verdict(dS: np.ndarray, style_std: np.ndarray) -> RuleVerdict:
    """Figure 7 under the noise rules: the observed shares of high-functional dimensions against a Gaussian
    null scaled by S's per-channel standard deviation."""
    observed = rules.per_test_share_above(dS)
    null = rules.per_test_share_above(rules.scaled_gaussian_null(style_std))
    return RuleVerdict("Figure 7: dS is sparse (few high-functional dimensions; null scaled by S's per-channel "
                       "std, 95% intervals)", rules.sparsity_checks(observed, null))


def paper_verdicts() -> dict[str, dict]:
    """The paper's printed Tables 1-3 under the same rules, its numbers read as exact (no intervals)."""
    t1o, t1w = paper.TABLE_1["Ours"], paper.TABLE_1["IDDISEN"]

    def point(claim: str, a: dict, b: dict, key: str, higher: bool) -> RuleCheck:
        return rules.matched_realism_check(claim, {("a", "b"): (exact(a[key] - b[key]), exact(a["fid"] - b["fid"]))},
                                           higher)

    t2 = paper.TABLE_2
    return {
        "table1": RuleVerdict("Table 1 (paper's numbers, exact)", [
            point("identity higher than IDDISEN's", t1o, t1w, "identity", True),
            point("pose error lower than IDDISEN's", t1o, t1w, "pose", False)]).to_dict(),
        "table2": RuleVerdict("Table 2 (paper's numbers, exact)", [
            point("no-concat has a lower expression error than default", t2["no-concat"], t2["default"],
                  "expression", False),
            point("no-concat has a lower pose error than default", t2["no-concat"], t2["default"], "pose", False),
            point("paper has a lower pose error than style-reg", t2["paper"], t2["style-reg"], "pose",
                  False)]).to_dict(),
        "table3": table3_verdict(ExactRows({str(r["config"]): r for r in paper.TABLE_3}), ["pose"],
                                 realism_check=False).to_dict(),
    }
