"""The report's noise-rule verdicts from per-pair values (genfields/evaluation/report_rules.py), on made-up rows."""

import numpy as np

from genfields.editing.evaluate import PairValues
from genfields.evaluation import report_rules
from genfields.evaluation.rules import FAILS, HOLDS

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(200, 3))


def row(identity: float, impostor: float = 0.0) -> PairValues:
    """A row whose outputs are as realistic as the others' (same feature law) with the given mean identity."""
    return PairValues(metrics={"method": {"identity": identity + RNG.normal(0, 0.01, 200), "pose": np.zeros(200)},
                               "unedited": {}},
                      features={"method": RNG.normal(size=(200, 3)), "real": REAL}, angles={},
                      impostor=np.full(200, impostor))


def test_families_are_compared_on_their_fronts_with_collapsed_rows_left_out():
    values = {"ours": row(0.9), "ours-weak": row(0.5), "w": row(0.7), "w-collapsed": row(0.02, impostor=0.05)}
    comparisons = report_rules.Comparisons(values, fd_resamples=200)
    verdict, families = report_rules.table1_verdict(comparisons, ["ours", "ours-weak"], ["w", "w-collapsed"])
    assert families == {"paper": ["ours", "ours-weak"], "wspace": ["w"], "collapsed": ["w-collapsed"]}
    identity = verdict.checks[0]
    # ours-weak is dominated by ours (its own family) and by w: off the front, so the fronts do not cross
    assert identity.outcome == HOLDS and "off their family's front" in identity.evidence
    assert report_rules.front(comparisons, ["ours", "ours-weak"], "identity") == ["ours"]
    worse = report_rules.table1_verdict(comparisons, ["ours-weak"], ["w"])[0]
    assert worse.checks[0].outcome == FAILS
    none_left = report_rules.table1_verdict(comparisons, ["ours"], ["w-collapsed"])[0]
    assert none_left.status == "not decided" and "every one collapsed" in none_left.checks[0].evidence


def test_the_papers_printed_tables_under_the_same_rules():
    verdicts = report_rules.paper_verdicts()
    # read as exact, every Table 1-2 comparison trades FID for the metric: no matched realism
    assert verdicts["table1"]["status"] == verdicts["table2"]["status"] == "not decided"
    assert verdicts["table3"]["status"] == "supported"  # its orderings hold on its own numbers
    assert len(verdicts["table3"]["checks"]) == 5  # no FD in the paper's Table 3
