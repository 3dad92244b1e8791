"""Where a claim of the paper fails on our run, what part of the mechanism the numbers point to.

`claims` says whether each check holds; this module reads the same run's other measurements (the
pose leak b_id, the judges against the loss networks, tearing, FD, the fields against the face, the
per-pair optimum) beside every check that does not hold, and says which of them moved with it. It
states what was measured, never a cause that was not: each item names its evidence, and where no
measurement separates the rows it says so.

Items are keyed by the position of the check in its verdict (`claims.table1_verdict`,
`table2_verdict`, `table3_verdict` build them in a fixed order; `tests/test_diagnosis.py` pins it).
"""

from __future__ import annotations

ANGLES = ("yaw", "pitch", "roll")
LEAK_MARGIN = 0.05  # mean b_id apart by more than this counts as a different pose leak
GAP_MARGIN = 0.1  # judge and loss network apart by more than this share (of the smaller) disagree
NOTHING_SEPARATES = "nothing else measured here (pose leak, FD, judges against loss networks) separates the rows"


def mean_b_id(leak: dict | None) -> float | None:
    """The pose leak of a row, b_id averaged over yaw, pitch and roll (None when not measured)."""
    if not leak:
        return None
    return sum(leak[a]["b_id"] for a in ANGLES) / len(ANGLES)


def _leak_text(leak: dict) -> str:
    return " / ".join(f"{leak[a]['b_id']:.2f}" for a in ANGLES)


def leaks_more(leak: dict, row: tuple[str, str], other: tuple[str, str]) -> tuple[bool, str] | None:
    """Whether `row` (key, label) leaks more of the identity's head pose than `other` (mean b_id higher by
    more than LEAK_MARGIN), with the evidence; None when either was not measured."""
    (a, a_label), (b, b_label) = row, other
    if not (leak.get(a) and leak.get(b)):
        return None
    return (mean_b_id(leak[a]) > mean_b_id(leak[b]) + LEAK_MARGIN,
            f"b_id (yaw / pitch / roll) {a_label} {_leak_text(leak[a])}, {b_label} {_leak_text(leak[b])}")


def _item(claim: str, check: dict, points_to: str, evidence: str) -> dict:
    return {"claim": claim, "check": check["claim"], "holds": check["holds"], "points_to": points_to,
            "evidence": evidence}


def _failing(verdict: dict) -> list[tuple[int, dict]]:
    return [(i, c) for i, c in enumerate(verdict["checks"]) if c["holds"] is not True]


def _judge_vs_loss(row: dict, key: str) -> str:
    """'x by the judge, y by the loss network' for a metric that both scored."""
    fmt = "{:.3f}" if key == "identity" else ("{:.4f}" if key == "expression" else "{:.1f}")
    judge = fmt.format(row[key])
    loss = f", {fmt.format(row[key + '_loss_net'])} by the loss network" if key + "_loss_net" in row else ""
    return f"{judge} by the judge{loss}"


def _fools_loss_net(row: dict, key: str) -> bool:
    """The loss network scores the row's error clearly lower than the judge does (it is being fooled)."""
    loss = row.get(key + "_loss_net")
    return loss is not None and row[key] > loss * (1 + GAP_MARGIN)


# --- Table 1 -----------------------------------------------------------------------------------------
def quoted_baseline(t1: dict) -> str:
    """The W-space row the findings quote: `wspace` when it is in the family the verdict reads, else the family's
    point nearest the paper editor in FD (`wspace` kept E_attr frozen: `reproduce.faithful_baseline`)."""
    family = t1.get("families", {}).get("wspace") or ["wspace"]
    if "wspace" in family:
        return "wspace"
    return min(family, key=lambda n: abs(t1["rows"][n]["fd"] - t1["rows"]["ours"]["fd"]))


def table1_diagnosis(t1: dict, verdict: dict) -> list[dict]:
    """Table 1: matched-FD undecided (the families' FD ranges apart), or a check that fails (the pose leak,
    the per-pair optimum's reach on the same pairs, the judges against the loss networks)."""
    rows, fams, leak = t1["rows"], t1.get("families", {}), t1.get("pose_leak", {})
    failing = _failing(verdict)
    if not failing:
        return []
    wname = quoted_baseline(t1)
    ours, w = rows["ours"], rows[wname]
    wtag = "W" if wname == "wspace" else f"W {wname}"
    if all(c["holds"] is None for _, c in failing):
        spans = {fam: [rows[n]["fd"] for n in names] for fam, names in fams.items()}
        text = "; ".join(f"`{fam}` family {min(v):.1f}-{max(v):.1f}" for fam, v in spans.items() if v)
        return [_item(verdict["claim"], failing[0][1],
                      "realism, not editing: the two families' FD ranges are too far apart for any FD to hold a "
                      "point of each (within the rule's tolerance), so identity and pose cannot be read at the "
                      "same realism; operating points that close the gap decide it",
                      f"FD {text}; at their own FDs identity {ours['identity']:.3f} (ours) vs {w['identity']:.3f} "
                      f"({wtag}), pose {ours['pose']:.1f} vs {w['pose']:.1f}")]
    items = []
    optimum, same = rows.get("per-pair optimum"), t1.get("paper_on_per_pair_pairs") or rows["ours"]
    for _, check in failing:
        if check["holds"] is None:
            continue
        key = "pose" if "pose" in check["claim"] else "identity"
        where = _failing_fds(t1, key)
        notes, evidence = [], [f"{key} ours {_judge_vs_loss(ours, key)}; {wtag} {_judge_vs_loss(w, key)}"]
        mine = "ours"
        if where is not None:
            failures, held, shared = where
            evidence.insert(0, "; ".join(
                f"at FD {fd:.1f} the `paper` family gives {key} {m:.4g} ({_span(mine_names, rows)}) against the W "
                f"family's {b:.4g} ({_span(w_names, rows)}), {_gap(m, b):.0%} apart"
                for fd, m, b, mine_names, w_names in failures) + f"; the check holds at {held} of the {shared} FDs "
                "compared")
            # the leak is compared between the rows beside the widest gap
            fd, _, _, mine_names, w_names = max(failures, key=lambda f: _gap(f[1], f[2]))
            mine = min(mine_names, key=lambda n: abs(rows[n]["fd"] - fd))
            wname = min(w_names, key=lambda n: abs(rows[n]["fd"] - fd))
            wtag = "W" if wname == "wspace" else f"W {wname}"
        more = leaks_more(leak, (mine, mine), (wname, wtag)) if key == "pose" else None
        if more is not None:
            evidence.append(more[1])
            if more[0]:
                notes.append("the pose leak: an additive dS = M_ref(F_attr) does not see the identity's own head "
                             "pose, and more of it shows through in our outputs than in W's")
            else:
                notes.append("not the pose leak (ours leaks no more of the identity's head pose than W)")
        if optimum is not None:
            better = optimum[key] > same[key] if key == "identity" else optimum[key] < same[key]
            evidence.append(f"per-pair optimum {key} {optimum[key]:.3g} vs the paper editor's {same[key]:.3g} on "
                            "the same pairs")
            notes.append("the mapping M_ref, not S space: optimising dS per pair reaches a better " + key
                         if better else "S space itself at this size: even dS optimised per pair does no better")
        items.append(_item(verdict["claim"], check, "; ".join(notes) or NOTHING_SEPARATES,
                           "; ".join(evidence)))
    return items


def _failing_fds(t1: dict, key: str) -> tuple[list[tuple], int, int] | None:
    """Where a matched-FD check fails: every FD at which the `paper` family's curve is not better than the W
    family's (the FD, the two values, the family points each curve is read between), how many FDs held and how
    many were compared; None when none fails."""
    from genfields.evaluation.claims import curve_at

    rows, fams = t1["rows"], t1.get("families", {})
    paper_fam, w_fam = fams.get("paper"), fams.get("wspace")
    if not paper_fam or not w_fam:
        return None
    higher = key == "identity"
    compared, failures = 0, []
    for fd in sorted({rows[n]["fd"] for n in paper_fam + w_fam}):
        m = curve_at([rows[n] for n in paper_fam], fd, key)
        b = curve_at([rows[n] for n in w_fam], fd, key)
        if m is None or b is None:
            continue
        compared += 1
        if not (m > b if higher else m < b):
            failures.append((fd, m, b, _neighbours(paper_fam, rows, fd), _neighbours(w_fam, rows, fd)))
    return (failures, compared - len(failures), compared) if failures else None


def _gap(mine: float, w: float) -> float:
    """How far apart the two curves are at a failing FD, relative to the W family's value."""
    return abs(mine - w) / abs(w)


def _neighbours(family: list[str], rows: dict, fd: float) -> list[str]:
    """The family points a curve is read between at `fd` (one when `fd` is a point or beyond an end)."""
    ordered = sorted(family, key=lambda n: rows[n]["fd"])
    for a, b in zip(ordered, ordered[1:]):
        if rows[a]["fd"] <= fd <= rows[b]["fd"]:
            return [n for n in (a, b) if rows[n]["fd"] == fd] or [a, b]
    return [ordered[0] if fd < rows[ordered[0]]["fd"] else ordered[-1]]


def _span(names: list[str], rows: dict) -> str:
    return " and ".join(f"{n} at FD {rows[n]['fd']:.1f}" for n in names) if len(names) > 1 else \
        f"{names[0]}, measured at FD {rows[names[0]]['fd']:.1f}"


# --- Table 2 -----------------------------------------------------------------------------------------
def table2_diagnosis(t2: dict, verdict: dict) -> list[dict]:
    """Table 2: removing F_id (checks 0 and 1: the pose leak and FD of default and no-concat), and the
    Euler-angle loss (check 2: pose by the network it trains on against the judge)."""
    rows, leak = t2["rows"], t2.get("pose_leak", {})
    d, n, s, p = rows["default"], rows["no-concat"], rows["style-reg"], rows["paper"]
    items = []
    for i, check in _failing(verdict):
        if i in (0, 1):
            key = "expression" if i == 0 else "pose"
            notes = []
            evidence = [f"{key} no-concat {_judge_vs_loss(n, key)}; default {_judge_vs_loss(d, key)}",
                        f"FD no-concat {n['fd']:.1f}, default {d['fd']:.1f}"]
            more = leaks_more(leak, ("no-concat", "no-concat"), ("default", "default"))
            if more is not None:
                evidence.append(more[1])
                if more[0]:
                    notes.append("the identity's own head pose: without F_id, dS cannot depend on the identity, "
                                 "and more of the identity's pose shows through (a larger pose leak)")
            if n["fd"] < d["fd"]:
                notes.append("a smaller edit: no-concat's outputs stay closer to the data (lower FD) while "
                             f"matching the attribute's {key} less")
            items.append(_item(verdict["claim"], check, "; ".join(notes) or NOTHING_SEPARATES,
                               "; ".join(evidence)))
        else:
            by_loss = "pose_loss_net" in p and p["pose_loss_net"] < s["pose_loss_net"]
            note = ("the loss network, not the pose: with the Euler-angle loss the pose improves on the network "
                    "it is trained against but not by the judge" if by_loss else
                    "the Euler-angle loss itself: it does not lower the pose error even by the network it is "
                    "trained against")
            items.append(_item(verdict["claim"], check, note, f"pose paper {_judge_vs_loss(p, 'pose')}; "
                               f"style-reg {_judge_vs_loss(s, 'pose')}"))
    return items


# --- Table 3 -----------------------------------------------------------------------------------------
def _range_text(r: dict) -> str:
    return (f"config {r['config']} ({r['convs']}, Eq. 1 fields {r['gf_min']}-{r['gf_max']} px, "
            f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f} of the face)")


def table3_diagnosis(t3: dict, verdict: dict) -> list[dict]:
    """Table 3: where the fields-to-face ordering fails, which configuration does best instead and how big
    its fields are; where config 5 fails to break, whether it fools the loss network (tearing) and whether
    the identity networks can see torn faces (FD)."""
    rows = t3["rows"]
    ranges = {str(r["config"]): r for r in t3.get("ranges", [])}
    items = []

    def best(key: str, higher: bool) -> str:
        return (max if higher else min)(rows, key=lambda k: rows[k][key])

    for i, check in _failing(verdict):
        if i == 0:
            b = best("pose", higher=False)
            text = (f"pose follows the fields' size against the face only in part: config {b}, not config 3, "
                    "matches the pose best")
            ev = "; ".join(f"{_range_text(ranges[k])} pose {rows[k]['pose']:.1f}" for k in (b, "3") if k in ranges)
        elif i == 1:
            e3 = rows["3"]["expression"]
            kept = [k for k in ("1", "2", "4") if k in rows and rows[k]["expression"] >= e3]
            worse = [k for k in ("1", "2", "4") if k in rows and k not in kept]
            text = ((f"config 3 does lose expression against config{'s' if len(worse) > 1 else ''} "
                     f"{' and '.join(worse)}, " if worse else "") + "but "
                    + " and ".join(_range_text(ranges[k]) if k in ranges else f"config {k}" for k in kept)
                    + " loses more: the expression lost follows which layers are edited, not only whether their "
                    "fields exceed the face")
            ev = "expression " + ", ".join(f"{k}: {_judge_vs_loss(v, 'expression')}" for k, v in rows.items())
        elif i in (2, 3):
            key = "identity" if i == 2 else "expression"
            r5 = rows["5"]
            worst = best(key, higher=(key == "expression"))
            notes = []
            if key == "identity" and best("fd", higher=True) == "5":
                notes.append("the identity networks, not the edit: config 5 has the worst FD (its faces are "
                             "broken) yet keeps a high identity score; both identity networks were trained on clean "
                             "faces and cannot score images this far from their data")
            if key == "expression" and _fools_loss_net(r5, "expression"):
                notes.append("tearing that fools the loss landmark network: config 5's expression is scored "
                             "better by it than by the judge")
            ev = (f"{key} 5: {_judge_vs_loss(r5, key)}; worst: config {worst} ({rows[worst][key]:.4g}); FD 5: "
                  f"{r5['fd']:.1f}" + (f"; tearing 5: {r5['tearing']:+.4f}" if "tearing" in r5 else ""))
            text = "; ".join(notes) or f"config 5 does not break {key} more than config {worst} here"
        elif i == 4:
            r5, r4 = rows["5"], rows["4"]
            fooled = "pose_loss_net" in r5 and r5["pose_loss_net"] < r4["pose_loss_net"]
            text = ("the judge sees through the torn faces: by the loss network config 5 does match pose better "
                    "than config 4" if fooled else "config 5's small fields cannot turn the head, and the tearing "
                    "does not fool even the loss network on pose")
            ev = f"pose 5: {_judge_vs_loss(r5, 'pose')}; 4: {_judge_vs_loss(r4, 'pose')}"
        else:
            w = best("fd", higher=True)
            text = f"config {w}, not config 5, has the worst FD: the smallest fields do not degrade the image most here"
            ev = "FD " + ", ".join(f"{k}: {v['fd']:.1f}" for k, v in rows.items())
        items.append(_item(verdict["claim"], check, text, ev))
    return items


def diagnose(numbers: dict) -> list[dict]:
    """Every failing or undecided check of Tables 1-3 with what the run's other numbers point to."""
    verdicts = numbers["claims"]
    return (table1_diagnosis(numbers["table1"], verdicts["table1"])
            + table2_diagnosis(numbers["table2"], verdicts["table2"])
            + table3_diagnosis(numbers["table3"], verdicts["table3"]))
