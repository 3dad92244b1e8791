"""The report's text: index.md (and index.html) from the numbers `reproduce` computed. Every number
printed here is read from those numbers; every verdict comes from `claims`."""

from __future__ import annotations

from pathlib import Path

from genfields.evaluation import paper_numbers as paper
from genfields.evaluation.diagnosis import quoted_baseline

METRICS = (("fd", "fid", "FD (paper: FID)", "{:.2f}"), ("identity", "identity", "Identity ↑", "{:.3f}"),
           ("expression", "expression", "Expression ↓", "{:.4f}"), ("pose", "pose", "Pose ↓", "{:.2f}"))

MEANINGFUL = """\
**What compares and what does not.** Our numbers come from a different world than the paper's: a
{res}x{res} StyleGAN2 trained on rendered faces, synthetic perception networks (identity encoder,
landmark/pose network, FD feature network) and rendered faces in FFHQ's place. So:
- *Not comparable*: absolute values across the two columns. FD uses our feature network, not
  InceptionV3 on FFHQ (it is never called FID); identity is the cosine similarity of a different
  encoder; pose is in degrees squared (the paper does not state its 3DDFA unit); expression is
  normalised by the resolution in both, but measured by different detectors on different faces.
- *Comparable*: orderings and trends within a table (which configuration is best at what, how a
  metric moves as the fields shrink relative to the face), the shape of the sparsity histogram
  (relative to the dimension of S) and the overlap of the top-k sets across tests. The claims
  below are checked on those, by the rules in `genfields/evaluation/claims.py`, on our numbers and
  (where the paper prints them) on the paper's.
"""


def _fmt(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


# ours only (the paper prints no such number): the tearing measure of `genfields.editing.evaluate`
TEARING = (("landmark_disagreement", "Landmarks judge vs loss net ↓", "{:.4f}"),
           ("tearing", "Tearing (excess over unedited) ↓", "{:+.4f}"))
TEARING_NOTE = ("*Landmarks judge vs loss net*: the mean distance between the judge's (`judge_landmarks`) and the "
                "loss network's (`synth_landmarks`) 68 landmarks on the same output, divided by the resolution; "
                "*tearing*: that distance minus the same on the unedited identity images of the same pairs. An "
                "editor that moves the loss network's landmarks by tearing the face, not by turning and reshaping "
                "it, leaves the judge's behind (docs/reproduce.md).")


def _metric_table(rows: list[tuple[str, dict | None, dict | None]], extra: tuple = ()) -> list[str]:
    """Rows (label, ours, paper's) with each metric as 'ours | paper', then `extra` (key, title, spec) columns
    of ours only."""
    head = ("| | " + " | ".join([f"{title} ours | paper" for _, _, title, _ in METRICS]
                                + [f"{title} ours" for _, title, _ in extra]) + " |")
    lines = [head, "|---" * (1 + 2 * len(METRICS) + len(extra)) + "|"]
    for label, ours, theirs in rows:
        cells = []
        for key, paper_key, _, spec in METRICS:
            cells += [_fmt((ours or {}).get(key), spec), _fmt((theirs or {}).get(paper_key), spec)]
        cells += [_fmt((ours or {}).get(key), spec) for key, _, spec in extra]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _has_tearing(rows) -> bool:
    return all("tearing" in r for r in rows)


def _verdict(v: dict, paper_v: dict | None = None) -> list[str]:
    lines = [f"**{v['claim']}: {v['status']} by our run**"
             + (f" (the same rules on the paper's numbers: {paper_v['status']})." if paper_v else ".")]
    for c in v["checks"]:
        word = "not decided" if c["holds"] is None else ("holds" if c["holds"] else "does not hold")
        lines.append(f"- {word}: {c['claim']} ({c['evidence']})")
    return lines + [""]


ROW_LABELS = {"ours": "paper (ours)", "wspace": "W-space baseline", "unedited": "unedited identity",
              "paper+id": "paper+id: M_ref also sees F_attr(I_id) (ours, beyond the paper)",
              "paper+ids": "paper+ids: M_ref also sees S_id (ours, beyond the paper)",
              "per-pair optimum": "per-pair optimum of dS (ours, beyond the paper)"}


SAME_PAIRS = "ours, per-pair optimum's pairs"  # the paper editor scored on the per-pair optimum's fewer pairs


def _row_label(name: str, t1: dict | None = None) -> str:
    t1 = t1 or {}
    if name == "per-pair optimum" and t1.get("per_pair_steps"):
        on = f", on the first {t1['per_pair_pairs']} pairs" if t1.get("paper_on_per_pair_pairs") else ""
        return f"per-pair optimum of dS, {t1['per_pair_steps']} Adam steps{on} (ours, beyond the paper)"
    if name == SAME_PAIRS:
        return f"paper (ours) on the same {t1.get('per_pair_pairs')} pairs as the per-pair optimum"
    frozen = " (E_attr frozen)" if (t1.get("attribute_encoder") or {}).get(name) == "frozen" else ""
    if name in ROW_LABELS:
        return ROW_LABELS[name] + frozen
    return f"{name} (operating point){frozen}"


def table1_detail(t1: dict) -> list[str]:
    """Table 1 in full: every trained row, the judges' and the loss networks' scores, the pose leak, the
    matched-FD figure and the rule, and what the numbers say about the four questions of the comparison."""
    from genfields.evaluation.report_editors import EXTENSION_NAMES, OPERATING_POINTS

    rows, leak, fams = dict(t1["rows"]), t1.get("pose_leak", {}), t1.get("families", {})
    if t1.get("paper_on_per_pair_pairs"):
        rows[SAME_PAIRS] = t1["paper_on_per_pair_pairs"]
    judged = isinstance(t1.get("judged_by"), dict)
    by = "judge" if judged else "loss net"
    tearing = any("tearing" in r for r in rows.values())
    extra_pose = sorted({k for r in rows.values() for k in r if k.startswith("pose_") and k != "pose_loss_net"})
    head = (["row", "FD", f"identity ({by}) ↑"] + (["identity (loss net) ↑"] if judged else [])
            + [f"expression ({by}) ↓", f"pose ({by}) ↓"] + [f"pose ({k[5:]}) ↓" for k in extra_pose]
            + (["pose (loss net) ↓"] if judged else []) + (["tearing ↓"] if tearing else [])
            + ["b_id yaw / pitch / roll", "b_attr yaw / pitch / roll"])
    order = ["ours", *[n for n in fams.get("paper", []) if n != "ours"], *EXTENSION_NAMES, "per-pair optimum",
             SAME_PAIRS, "wspace", *[n for n in fams.get("wspace", []) if n != "wspace"], "unedited"]
    lines = ["### Table 1 in full: judges, loss networks, operating points, pose leak", "",
             ("Identity, expression and pose by the **judges** (`genfields/perception/judges.py`: networks trained "
              "apart, on other people, that no editor is trained against or fed: " + ", ".join(
                  f"`{v}`" for v in t1["judged_by"].values()) + "), and by the **loss networks** the editors were "
              "trained against (`synth_identity`, `synth_landmarks`)." if judged else
              "No judges for this preset: every metric is by the loss networks the editors were trained against."),
             "b_id, b_attr: per angle, the output's angles regressed on the attribute's and the identity's "
             f"(least squares, angles by the {by}): a perfect pose transfer has b_attr = 1, b_id = 0."
             + (" Tearing: the judge's and the loss network's landmarks of the output apart (distance / resolution), "
                "minus the same on the unedited image (Table 2 says more)." if tearing else ""), "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name in order:
        if name not in rows:
            continue
        r, lk = rows[name], leak.get(name)
        cells = [_row_label(name, t1), f"{r['fd']:.2f}", f"{r['identity']:.3f}"]
        cells += [f"{r['identity_loss_net']:.3f}"] if judged else []
        cells += [f"{r['expression']:.4f}", f"{r['pose']:.2f}"] + [f"{r[k]:.2f}" for k in extra_pose]
        cells += [f"{r['pose_loss_net']:.2f}"] if judged else []
        cells += [_fmt(r.get("tearing"), "{:+.4f}")] if tearing else []
        cells += ([" / ".join(f"{lk[a][b]:.2f}" for a in ("yaw", "pitch", "roll")) for b in ("b_id", "b_attr")]
                  if lk else ["-", "-"])
        lines.append("| " + " | ".join(cells) + " |")
    if SAME_PAIRS in rows:
        lines += ["", f"The per-pair optimum costs {t1['per_pair_steps']} forward and backward passes per pair, so it "
                  f"runs on the first {t1['per_pair_pairs']} pairs only; compare it with the row below it, the paper "
                  "editor on those same pairs. FD in particular is not comparable across numbers of images (it is "
                  "biased upward for fewer)."]
    if (t1.get("per_pair_source") or "").startswith("stored"):
        lines += ["", f"The per-pair optimum costs {t1['per_pair_steps']} forward and backward passes per pair, so it "
                  "is computed once and shipped: each pair's dS is read from the store it was computed into "
                  f"({t1['per_pair_source'][len('stored: '):]}), made under the same generator, networks, losses and "
                  "Adam settings, as their SHA-256 in its key shows (`genfields evaluate --per-pair-steps "
                  f"{t1['per_pair_steps']} --per-pair-store FILE` remakes it; docs/reproduce.md)."]
    encoders = t1.get("attribute_encoder") or {}
    if len(set(encoders.values())) > 1:
        frozen = [n for n, e in encoders.items() if e == "frozen"]
        shown = ", ".join(f"`{n}`" for n in frozen)
        left_out = t1.get("outside_family", [])
        lines += ["", f"The W-space rows use two attribute encoders: {shown} kept E_attr frozen (trained before "
                  "the IDDISEN-faithful option), the others trained it with the mapper, as IDDISEN does. "
                  + ("A frozen E_attr is another method than IDDISEN's, so those rows are shown but left out of the "
                     "W-space family that the matched-FD verdict and its figure read."
                     if set(left_out) == set(frozen) else
                     "The family's operating points differ in more than the adversarial weight until every one "
                     "trains E_attr.")]
    absent = [n for n in (*OPERATING_POINTS, *EXTENSION_NAMES, "per-pair optimum") if n not in rows]
    if absent:
        lines += ["", "Rows absent (editors not trained yet; `genfields reproduce --plan` lists their commands): "
                  + ", ".join(f"`{n}`" for n in absent) + "."]
    lines += [""] + _image("table1_matched_fd.png", f"Identity and pose ({by}) against FD: the `paper` and "
                           "`wspace` families of operating points, joined in FD order as the matched-FD rule "
                           "interpolates them.")
    if "matched_fd_rule" in t1:
        lines += [f"**The verdict rule (matched realism).** {t1['matched_fd_rule']}", ""]
    lines += _findings(t1, judged)
    return lines


def _findings(t1: dict, judged: bool) -> list[str]:
    """The four questions of the comparison, answered with this run's numbers."""
    rows, leak, fams = t1["rows"], t1.get("pose_leak", {}), t1.get("families", {})
    wname = quoted_baseline(t1)
    ours, w = rows["ours"], rows[wname]
    wlabel = "W-space baseline" + ("" if wname == "wspace" else f" (`{wname}`, the family's point nearest ours in FD)")
    out = ["**What the numbers say.**", ""]
    if judged:
        out.append(f"1. *Independent scoring.* Identity by the judge vs by the loss network: ours "
                   f"{ours['identity']:.3f} vs {ours['identity_loss_net']:.3f}, {wlabel} {w['identity']:.3f} "
                   f"vs {w['identity_loss_net']:.3f}; pose MSE ours {ours['pose']:.2f} vs {ours['pose_loss_net']:.2f}, "
                   f"W {w['pose']:.2f} vs {w['pose_loss_net']:.2f}.")
    else:
        out.append("1. *Independent scoring.* Not available: no judges for this preset.")
    span = {f: ", ".join(f"{rows[n]['fd']:.1f}" for n in names) for f, names in fams.items()}
    out.append(f"2. *Operating points.* FD of the `paper` family: {span.get('paper', '-')}; of the W-space "
               f"family: {span.get('wspace', '-')}; unedited {rows['unedited']['fd']:.1f}.")
    if "ours" in leak and wname in leak:
        fmt = lambda name: " / ".join(f"{leak[name][a]['b_id']:.2f}" for a in ("yaw", "pitch", "roll"))  # noqa: E731
        more = "".join(f"; {n} {fmt(n)}" for n in ("paper+id", "paper+ids", "per-pair optimum") if n in leak)
        family = [n for n in fams.get("paper", []) if n in leak]
        along = ("" if len(family) < 2 else " Along the `paper` family, in FD order: " + "; ".join(
            f"{'ours' if n == 'ours' else n} (FD {rows[n]['fd']:.1f}) {fmt(n)}" for n in family)
            + ": how much of the identity's pose shows through depends on the operating point too.")
        out.append(f"3. *Pose leak.* b_id (yaw / pitch / roll) ours {fmt('ours')}, {wlabel} {fmt(wname)}"
                   f"{more} (0 = the identity's own head pose does not show through).{along}")
    extensions = _extensions(rows)
    if extensions:
        out.append(f"4. *Beyond the paper.* {extensions}")
    out.append(f"{5 if extensions else 4}. *Verdict at matched FD*: below, by the rule above.")
    return out + [""]


def _every_w(cl: dict, t1: dict) -> list[str]:
    """The same rule with the W rows that kept E_attr frozen put back into the W family, so that a reader sees
    whether leaving them out decides the verdict."""
    if "table1_every_w" not in cl:
        return []
    v = cl["table1_every_w"]
    left_out = ", ".join(f"`{n}`" for n in t1.get("outside_family", []))
    same = v["status"] == cl["table1"]["status"]
    return [f"With {left_out} (E_attr frozen) kept in the W-space family, the same rule gives **{v['status']}**"
            + (" as well" if same else "") + ": " + "; ".join(
                f"{c['claim']}: {'not decided' if c['holds'] is None else ('holds' if c['holds'] else 'does not hold')}"
                f" ({c['evidence']})" for c in v["checks"]) + ".", ""]


def _dominates(a: dict, b: dict) -> bool:
    """a is at least as good as b on identity (higher) and pose (lower), and better on one."""
    return a["identity"] >= b["identity"] and a["pose"] <= b["pose"] and (a["identity"], -a["pose"]) != (
        b["identity"], -b["pose"])


def _extensions(rows: dict) -> str:
    """The identity-aware editors against the paper editor and each other (the better of the two identity inputs:
    the one no worse on identity and pose, by the judges), and the per-pair optimum as the ceiling of S space."""
    from genfields.evaluation.report_editors import EXTENSION_NAMES

    found = [n for n in EXTENSION_NAMES if n in rows]
    ours = rows["ours"]
    say = lambda n: (f"`{n}` identity {rows[n]['identity']:.3f}, pose {rows[n]['pose']:.2f}, "  # noqa: E731
                     f"FD {rows[n]['fd']:.1f}")
    parts = []
    if found:
        parts.append(f"Against the `paper` editor (identity {ours['identity']:.3f}, pose {ours['pose']:.2f}, FD "
                     f"{ours['fd']:.1f}): " + "; ".join(say(n) for n in found) + ".")
        if len(found) == 2:
            a, b = found
            if _dominates(rows[a], rows[b]) or _dominates(rows[b], rows[a]):
                best, other = (a, b) if _dominates(rows[a], rows[b]) else (b, a)
                parts.append(f"Of the two identity inputs `{best}` is the better (no worse than `{other}` on "
                             "identity and pose).")
            else:
                lower = min(found, key=lambda n: rows[n]["pose"])
                higher = max(found, key=lambda n: rows[n]["identity"])
                parts.append(f"Neither identity input is better on both: `{lower}` has the lower pose error, "
                             f"`{higher}` the higher identity.")
    if "per-pair optimum" in rows:
        parts.append(f"The per-pair optimum (dS optimised for each pair, the ceiling of an additive edit in S under "
                     f"the same losses): {say('per-pair optimum')[len('`per-pair optimum` '):]}.")
    return " ".join(parts)


def diagnosis_markdown(items: list[dict]) -> list[str]:
    """The checks that fail or cannot be decided, each with what the run's other numbers point to
    (`diagnosis.py`)."""
    if not items:
        return []
    out = ["## Where a claim fails: what the numbers point to", "",
           "For each check of Tables 1-3 that does not hold (or cannot be decided), the run's other measurements "
           "beside it: the pose leak, the judges against the loss networks, tearing, FD, the fields against the "
           "face and the per-pair optimum (`genfields/evaluation/diagnosis.py`; `diagnosis.json`).", ""]
    for it in items:
        state = "cannot be decided" if it["holds"] is None else "does not hold"
        out.append(f"- **{it['check']}** ({it['claim'].split(':')[0]}, {state}). What the numbers point to: "
                   f"{it['points_to']}. *Evidence:* {it['evidence']}.")
    return out + [""]


def _image(name: str, caption: str) -> list[str]:
    return [f"![{caption}]({name})", "", f"*{caption}*", ""]


def report_markdown(numbers: dict, run: dict) -> str:
    """The text of index.md."""
    face, t1, t2, t3 = numbers["face_size"], numbers["table1"], numbers["table2"], numbers["table3"]
    f7, f8, cl = numbers["figure7"], numbers["figure8"], numbers["claims"]
    res = face["resolution"]
    out = [f"# Reproduction report: {run['preset']}{' (quick)' if run['quick'] else ''}", "",
           f"Produced by `{run['command'] or 'genfields reproduce'}` in {run['total_s']:.0f} s (seed {run['seed']}, "
           f"generator `{run['generator']}`). Numbers: the JSON files beside this page; paper numbers: "
           "`genfields/evaluation/paper_numbers.py`.", "",
           "| editor | source |", "|---|---|"]
    out += [f"| {name} | {origin} |" for name, origin in run["editors"].items()]
    tuned = [name for name, origin in run["editors"].items() if origin.startswith("fine-tuned")]
    if tuned:
        out += ["", f"**Fine-tuned rows.** {', '.join(f'`{n}`' for n in tuned)} are short fine-tunes of the `paper` "
                "editor (this is a quick report), not configurations trained from scratch as in the paper. Their "
                "rows show where each configuration's losses or mask move a trained editor in a few steps; the "
                "verdicts of Tables 2 and 3 on them are provisional until a full run (docs/reproduce.md)."]
    out += ["", MEANINGFUL.format(res=res), "## The paper's claims", "",
            "| claim | our run | paper's numbers, same rules |", "|---|---|---|"]
    for key, paper_key in (("table1", "table1_paper"), ("table2", "table2_paper"), ("table3", "table3_paper"),
                           ("sparsity", None), ("reuse", "reuse_paper")):
        out.append(f"| {cl[key]['claim']} | {cl[key]['status']} | "
                   f"{cl[paper_key]['status'] if paper_key else 'not printed (Figure 7 only)'} |")
    out += [""] + noise_markdown(numbers)
    out += [""] + diagnosis_markdown(numbers.get("diagnosis", []))
    if "changes" in numbers:
        from genfields.evaluation.report_changes import changes_markdown

        out += changes_markdown(numbers["changes"])

    out += ["## Table 1: comparison with the W-space baseline", "",
            f"{t1['pairs']} random pairs (the paper: 1,000). Ours = the `paper` configuration; W-space baseline = "
            "IDDISEN-like mapper to w (the paper's IDDISEN row); unedited = the identity image scored as the output.", ""]
    out += _metric_table([("Ours", t1["rows"]["ours"], t1["paper"]["Ours"]),
                          ("W-space baseline / IDDISEN", t1["rows"]["wspace"], t1["paper"]["IDDISEN"]),
                          ("unedited identity", t1["rows"]["unedited"], None),
                          ("LORD (paper only)", None, t1["paper"]["LORD"]),
                          ("FSGAN (paper only)", None, t1["paper"]["FSGAN"])])
    out += [""] + table1_detail(t1)
    out += [""] + _verdict(cl["table1"], cl["table1_paper"]) + _every_w(cl, t1)
    out += ["## Table 2: ablation", "", f"{t2['pairs']} random pairs, each configuration on top of the previous one.", ""]
    tearing2 = _has_tearing(t2["rows"].values())
    rows2 = [(f"{paper.TABLE_2_LABELS[k]} (`{k}`)", t2["rows"][k], t2["paper"][k]) for k in paper.TABLE_2]
    rows2 += [(_row_label(k, t1), m, None) for k, m in t2.get("extensions", {}).items()]  # ours: no paper column
    if "unedited" in t2:
        rows2.append(("unedited identity", t2["unedited"], None))
    out += _metric_table(rows2, TEARING if tearing2 else ())
    out += ([""] + [TEARING_NOTE] if tearing2 else []) + [""] + _verdict(cl["table2"], cl["table2_paper"])

    tearing3 = _has_tearing(t3["rows"].values()) and "unedited" in t3
    out += ["## Table 3: generative fields of the control units", "",
            f"Average face size: **{face['mean_px']:.2f} px of {res} ({face['relative']:.3f} of the width)**; the "
            f"paper: {face['paper_px']} px of 256 ({face['paper_relative']:.3f}). Each paper configuration (a, b) is "
            "mapped to the contiguous conv range of our generator whose largest and smallest Eq. 1 fields, divided by "
            "our face size, lie on the same side of 1 as the paper's and are nearest to the paper's ratios in log "
            "scale (`genfields/evaluation/gf_ranges.py`). GF: Eq. 1 (exact field in brackets, "
            "`docs/generative-fields.md`); ratio: field / face.", "",
            "| config | ours: units | GF Eq. 1 (exact) | GF / face | paper: units | paper GFs | GF / face | "
            "Identity ours / paper | Expression ours / paper | Pose ours / paper | FD ours |"
            + (" Landmarks judge vs loss net ours | Tearing ours |" if tearing3 else ""),
            "|---" * (11 + 2 * tearing3) + "|"]
    for r, p in zip(t3["ranges"], t3["paper"]):
        m = t3["rows"][str(r["config"])]
        out.append(f"| {r['config']} | {r['convs']} | {r['gf_min']}-{r['gf_max']} ({r['gf_exact_min']}-"
                   f"{r['gf_exact_max']}) | {r['ratio_min']:.2f}-{r['ratio_max']:.2f} | conv{p['convs'][0]}-conv"
                   f"{p['convs'][1]} | {p['gfs'][0]}-{p['gfs'][1]} | {r['paper_ratio_min']:.2f}-{r['paper_ratio_max']:.2f}"
                   f" | {m['identity']:.3f} / {p['identity']:.2f} | {m['expression']:.4f} / {p['expression']:.3f} | "
                   f"{m['pose']:.2f} / {p['pose']:.2f} | {m['fd']:.2f} |"
                   + (f" {m['landmark_disagreement']:.4f} | {m['tearing']:+.4f} |" if tearing3 else ""))
    if tearing3:
        u = t3["unedited"]
        out += ["", f"The unedited identity images of the same tests: FD {u['fd']:.2f}, landmarks judge vs loss net "
                f"{u['landmark_disagreement']:.4f} (the zero of the tearing column). " + TEARING_NOTE]
    if not all(r["sides_match"] for r in t3["ranges"]):
        out.append("\nSome configurations have no range on the same side of the face as the paper's "
                   "(`sides_match` false in table3.json): this generator cannot reproduce those relations.")
    out += ["", f"{t3['tests']} tests per configuration (the paper: 100).", ""] + _verdict(cl["table3"], cl["table3_paper"])

    out += ["## Figure 7: sparsity of dS", ""]
    out += _image("figure7_sparsity.png", f"Mean count per bin of the normalised |dS| over {f7['tests']} tests "
                  f"(one identity), log scale, standard deviation as error bars; {f7['dim']} dimensions.")
    hf = f7["high_functional_per_test"]
    out += [f"High-functional dimensions (normalised |dS| >= {paper.HIGH_FUNCTIONAL}): {hf['mean']:.1f} ± "
            f"{hf['std']:.1f} per test, {f7['share_high_functional']:.3%} of S (a dense Gaussian dS would give "
            f"{f7['gaussian_share_high_functional']:.3%}).", ""] + _verdict(cl["sparsity"])

    out += ["## Figure 8: channel reuse", ""]
    out += _image("figure8_reuse.png", f"Reuse rate of the top-{f8['k']} channels of {f8['tests']} tests over their "
                  f"union T_u ({f8['union_size']} channels; the paper: {f8['paper_union_size']} of 4928).")
    out += ["Most reused channels (flat = the paper's 1-based notation; StyleSpace = layer_channel counting toRGB):", "",
            "| flat | StyleSpace | conv | layer | GF Eq. 1 | reuse rate |", "|---|---|---|---|---|---|"]
    out += [f"| {c['paper']} | {c['stylespace']} | {c['layer']}:{c['channel']} | {c['layer']} | {c['gf']} | "
            f"{c['reuse_rate']:.2f} |" for c in f8["most_reused"]]
    layers = ", ".join(f"{k} {v['channels']} (GF {v['gf']})" for k, v in f8["by_layer"].items())
    pd = ", ".join(f"{c['paper']} = {c['stylespace']} in {c['layer']} (GF {c['gf']})" for c in f8["paper_dimensions"])
    out += ["", f"T_u by layer: {layers}. Share of the reuse in layers whose field is larger than the face: "
            f"{f8['reuse_mass_in_fields_larger_than_face']:.0%}. The paper's named dimensions in paper256: {pd}.", ""]
    out += _verdict(cl["reuse"], cl["reuse_paper"])

    out += ["## Qualitative figures", ""]
    out += _image("figure5_edits.png", "Figure 5: identities (left) edited towards attribute images (top).")
    out += _image("figure6_ablation.png", "Figure 6: the same pairs under each ablation configuration.")
    drawn = run.get("figure_landmarks", "loss network")
    by = (f"the judge landmark network `{drawn}` (nothing is trained against it)" if drawn != "loss network" else
          "the loss landmark network (no judges for this preset)")
    out += _image("figure9_small_fields.png", f"Figure 9: fields much smaller than the face (config 5) against all "
                  f"layers; red: attribute landmarks, green: output landmarks, both by {by}. Where an editor fools "
                  "the loss network by tearing the face, the green points stay off the red ones"
                  + ("; each edited row's label gives its panels' mean judge vs loss-net landmark distance / "
                     "resolution (the gap)." if drawn != "loss network" else "."))
    out += _image("appendix_figure1.png", f"Appendix Figure 1: all fields, smallest field below / above the face; "
                  f"landmarks as in Figure 9, by {by}.")
    out += _image("appendix_figure2.png", "Appendix Figure 2: only smaller fields (largest slightly above / below the "
                  f"face); landmarks by {by}.")
    out += _image("appendix_figure3.png", f"Appendix Figure 3: config 5 with the attribute (red), output (green) and "
                  f"identity (cyan) landmarks by {by}"
                  + ("; magenta: the output's landmarks by the loss network the editor was trained against." if
                     drawn != "loss network" else "."))

    fields = numbers["fields"]
    out += ["## Generative fields (Figure 2 and appendix Table 1)", ""]
    out += _image("figure2_generative_fields.png", f"Fields of {', '.join(fields['figure2_layers'])} over a "
                  "generated image (the paper's conv2, conv6, conv10, scaled to our depth).")
    out += ["| layer | S | res | channels | Eq. 1 | exact | exact in image | effective | Eq. 1 / face |",
            "|---|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['name']} | s{r['s_index']} | {r['resolution']} | {r['channels']} | {r['gf']} | {r['gf_exact']} | "
            f"{r['gf_exact_clipped']} | {_fmt(r.get('gf_effective'), '{}')} | {r['gf_over_face']:.2f} |"
            for r in fields["ours"]]
    out += ["", "The paper's appendix Table 1 (paper256) with Eq. 1 and the exact field computed for that "
            "architecture:", "", "| layer | S | res | channels | printed | Eq. 1 | exact | Eq. 1 / face |",
            "|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['name']} | s{r['s_index']} | {r['resolution']} | {r['channels']} | {r['gf_printed']} | {r['gf']} | "
            f"{r['gf_exact']} | {r['gf_over_face']:.2f} |" for r in fields["paper256"]]
    out += ["", "## Files", "", "Numbers: " + ", ".join(f"`{k}.json`" for k in numbers) + ", `run.json` (settings, "
            "editors, timings).", ""]
    return "\n".join(out)


def _ci(iv: dict | None, spec: str) -> str:
    """'value [lo, hi]' of an interval dict, '-' without one."""
    if not iv:
        return "-"
    return f"{spec.format(iv['value'])} [{spec.format(iv['lo'])}, {spec.format(iv['hi'])}]"


INTERVAL_COLUMNS = (("fd_realism", "FD (realism net)", "{:.2f}"), ("kid_realism", "KID (realism net)", "{:.4f}"),
                    ("fd", "FD (E_attr)", "{:.2f}"), ("kid", "KID (E_attr)", "{:.4f}"), ("identity", "identity ↑", "{:.3f}"),
                    ("identity_over_impostor", "identity - impostor ↑", "{:.3f}"),
                    ("expression", "expression ↓", "{:.4f}"), ("pose_3ddfa", "pose 3DDFA_V2 ↓", "{:.2f}"),
                    ("pose", "pose (judge) ↓", "{:.2f}"))


def _interval_table(rows: dict[str, dict]) -> list[str]:
    cols = [c for c in INTERVAL_COLUMNS if any(c[0] in r for r in rows.values())]
    lines = ["| row | " + " | ".join(title for _, title, _ in cols) + " |", "|---" * (1 + len(cols)) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(_ci(r.get(key), spec) for key, _, spec in cols) + " |")
    return lines


def noise_markdown(numbers: dict) -> list[str]:
    """The verdicts under the noise rules (docs/rules.md), each row with its 95% intervals, and the pose
    judges' floor on renders."""
    verdicts = numbers.get("rules")
    if not verdicts:
        return []
    out = ["## The claims under the noise rules (docs/rules.md)", "",
           "Every number with its 95% bootstrap interval (pairs resampled; FD and KID recomputed on every draw); "
           "two editors compared by the paired difference on the same pairs. A check *holds* or *fails* only when "
           "the interval of its difference excludes the margin (0), else it is *within noise*. Pose is read first "
           "by the real 3DDFA_V2 where the run has it, the synthetic judge beside it. Realism (FD in the checks) is read "
           f"in {numbers['table1'].get('realism_features', 'the FD network features')}.", "",
           "| claim | our run | paper's numbers, read as exact |", "|---|---|---|"]
    paper_v = verdicts.get("paper", {})
    for key in ("table1", "table2", "table3", "sparsity"):
        if key in verdicts:
            theirs = paper_v.get(key, {}).get("status", "not printed (Figure 7 only)")
            out.append(f"| {verdicts[key]['claim']} | {verdicts[key]['status']} | {theirs} |")
    out.append("")
    for key in ("table1", "table2", "table3", "sparsity"):
        if key in verdicts:
            out.append(f"**{verdicts[key]['claim']}: {verdicts[key]['status']}.**")
            out += [f"- {c['outcome']}: {c['claim']} ({c['evidence']})" for c in verdicts[key]["checks"]]
            out.append("")
    fams = numbers["table1"].get("noise_families")
    if fams:
        out += [f"Families compared: `paper` {', '.join(fams['paper'])}; W {', '.join(fams['wspace'])}; collapsed "
                "(identity not above another person's beyond noise, left out): "
                f"{', '.join(fams['collapsed']) or 'none'}.", ""]
    floor = numbers["table1"].get("pose_judge_floor")
    if floor:
        out.append("Pose judges' floor on renders (error against the renderer's labels, pose-metric unit deg^2; "
                   "a bias common to both images of a pair cancels in the metric, `centred` removes it):")
        for name, f in floor.items():
            out.append(f"- {name}: MSE {_ci(f['mse'], '{:.2f}')}, centred {f['mse_centred']:.2f}; bias yaw / pitch "
                       f"/ roll {f['bias']['yaw']:+.1f} / {f['bias']['pitch']:+.1f} / {f['bias']['roll']:+.1f} "
                       f"({f['images']} images, {f['renders']})")
        out.append("")
    for key, title in (("table1", "Table 1"), ("table2", "Table 2"), ("table3", "Table 3")):
        rows = numbers[key].get("intervals")
        if rows:
            out += [f"{title} with 95% intervals:", ""] + _interval_table(rows) + [""]
    return out


def write_report(out: Path, numbers: dict, run: dict) -> None:
    """index.md and index.html in `out`."""
    from markdown_it import MarkdownIt

    text = report_markdown(numbers, run)
    (out / "index.md").write_text(text)
    body = MarkdownIt("commonmark").enable("table").render(text)
    (out / "index.html").write_text(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>genfields reproduce</title><style>"
        "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{max-width:100%}</style></head><body>\n"
        + body + "</body></html>\n")
