"""What changed from a previous report (`genfields reproduce --compare-with DIR`): each claim's verdict
before and now, and the key numbers of the Table 1-3 rows present in both, read from the previous
folder's JSON files. Written as `changes.json` and as a section of index.md."""

from __future__ import annotations

import json
from pathlib import Path

from genfields.errors import ConfigError

REPORT_FILES = ("claims.json", "table1.json", "table2.json", "table3.json")  # what a report folder must hold
CLAIM_KEYS = ("table1", "table2", "table3", "sparsity", "reuse")  # our run's verdicts (not the paper's)
# the key numbers of a table row: (key, title, format)
NUMBERS = (("fd", "FD", "{:.2f}"), ("identity", "identity", "{:.3f}"), ("expression", "expression", "{:.4f}"),
           ("pose", "pose", "{:.2f}"), ("tearing", "tearing", "{:+.4f}"))


def read_report(folder: Path) -> dict:
    """The verdicts and tables of a report folder (and its run.json when there), or one error line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--compare-with {folder}: no such directory")
    missing = [name for name in REPORT_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"--compare-with {folder}: not a genfields reproduce folder (no {', '.join(missing)})")
    found = {"folder": str(folder)}
    for name in (*REPORT_FILES, "run.json", "rules.json"):
        path = folder / name
        try:
            found[path.stem] = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--compare-with {folder}: cannot read {name} ({exc})") from None
    return found


def _checks_held(verdict: dict) -> str:
    checks = verdict.get("checks", [])
    return f"{sum(c.get('holds') is True for c in checks)}/{len(checks)}"


NOISE_RULE_KEYS = ("table1", "table2", "table3", "sparsity")  # verdicts under the noise rules (rules.json)


def _outcome_counts(verdict: dict) -> str:
    """'holds / fails / within noise / not decided' counts of a noise-rule verdict's checks."""
    outcomes = [c.get("outcome") for c in verdict.get("checks", [])]
    return " / ".join(str(outcomes.count(o)) for o in ("holds", "fails", "within noise", "not decided"))


def noise_rule_changes(previous: dict, numbers: dict) -> list[dict]:
    """Each claim's verdict in the previous report (by the rules it used, and by the noise rules where it had
    them) against the noise rules' verdict now: what the instruments alone change."""
    now, rules_before, claims_before = numbers.get("rules", {}), previous.get("rules", {}), previous["claims"]
    return [{"claim": now[key]["claim"], "before": claims_before.get(key, {}).get("status"),
             "noise_rules_before": rules_before.get(key, {}).get("status"), "now": now[key]["status"],
             "checks_now": _outcome_counts(now[key])} for key in NOISE_RULE_KEYS if key in now]


def _rows(before: dict, now: dict, label=lambda name, row: name) -> list[dict]:
    """Rows present in both tables, each with its key numbers (before, now); before is None for a number the
    previous report did not measure (e.g. tearing before it existed)."""
    rows = []
    for name, row in now.items():
        if name not in before:
            continue
        moved = {key: [before[name].get(key), row[key]] for key, _, _ in NUMBERS if key in row}
        rows.append({"row": label(name, row), "numbers": moved})
    return rows


def compare_reports(previous: dict, numbers: dict, run: dict) -> dict:
    """The changes from `previous` (`read_report`) to this run's `numbers`: verdicts, editors, table rows."""
    prev_run, claims = previous.get("run", {}), previous["claims"]
    verdicts = [{"claim": numbers["claims"][key]["claim"],
                 "before": claims[key]["status"], "now": numbers["claims"][key]["status"],
                 "checks_before": _checks_held(claims[key]), "checks_now": _checks_held(numbers["claims"][key])}
                for key in CLAIM_KEYS if key in claims and key in numbers["claims"]]
    editors = {name: [prev_run.get("editors", {}).get(name), origin] for name, origin in run["editors"].items()
               if prev_run.get("editors", {}).get(name) != origin}
    weights_before, weights_now = prev_run.get("editor_weights", {}), run.get("editor_weights", {})
    editors |= {name: [f"{run['editors'][name]} (weights {weights_before[name]})",
                       f"{run['editors'][name]} (weights {sha})"]  # retrained under the same name
                for name, sha in weights_now.items()
                if name not in editors and name in weights_before and weights_before[name] != sha}
    ranges_before = {str(r["config"]): r["convs"] for r in previous["table3"].get("ranges", [])}
    ranges_now = {str(r["config"]): r["convs"] for r in numbers["table3"]["ranges"]}

    def config_label(name: str, _row: dict) -> str:
        before, now = ranges_before.get(name), ranges_now.get(name)
        return f"config {name} ({now})" if before in (None, now) else f"config {name} ({before} -> {now})"

    return {"previous": previous["folder"], "previous_quick": prev_run.get("quick"),
            "previous_command": prev_run.get("command"), "verdicts": verdicts,
            "noise_rules": noise_rule_changes(previous, numbers), "editors": editors,
            "tables": {"table1": _rows(previous["table1"].get("rows", {}), numbers["table1"]["rows"]),
                       "table2": _rows(previous["table2"].get("rows", {}), numbers["table2"]["rows"]),
                       "table3": _rows(previous["table3"].get("rows", {}), numbers["table3"]["rows"], config_label)}}


def _cell(pair: list | None, spec: str) -> str:
    if pair is None:
        return "-"
    if pair[0] is None:
        return f"(new) {spec.format(pair[1])}"
    before, now = (spec.format(v) for v in pair)
    return now if before == now else f"{before} → **{now}**"


def changes_markdown(changes: dict) -> list[str]:
    """The 'what changed' section of index.md (numbers that moved in bold, as printed)."""
    kind = {True: "a quick report", False: "a full report"}.get(changes["previous_quick"], "a report")
    how = f", made by `{changes['previous_command']}`" if changes.get("previous_command") else ""
    out = ["## What changed from the previous report", "",
           f"Against `{changes['previous']}` ({kind}{how}); every number is read from the two folders' JSON files "
           "(`changes.json`).", "", "| claim | before | now | checks held before → now |", "|---|---|---|---|"]
    out += [f"| {v['claim']} | {v['before']} | {'**' + v['now'] + '**' if v['now'] != v['before'] else v['now']} | "
            f"{v['checks_before']} → {v['checks_now']} |" for v in changes["verdicts"]]
    if changes.get("noise_rules"):
        out += ["", "Under the noise rules (docs/rules.md) against the previous report's verdicts:", "",
                "| claim | before (its rules) | before (noise rules) | now (noise rules) | checks now: holds / fails / "
                "within noise / not decided |", "|---|---|---|---|---|"]
        out += [f"| {v['claim']} | {v['before'] or '-'} | {v['noise_rules_before'] or 'not measured'} | {v['now']} | "
                f"{v['checks_now']} |" for v in changes["noise_rules"]]
    if changes["editors"]:
        out += ["", "Editors whose source changed: " + "; ".join(
            f"`{name}`: {before or 'absent'} → {now}" for name, (before, now) in changes["editors"].items()) + "."]
    head = "| row | " + " | ".join(title for _, title, _ in NUMBERS) + " |"
    for key, title in (("table1", "Table 1"), ("table2", "Table 2"), ("table3", "Table 3")):
        rows = changes["tables"][key]
        if not rows:
            continue
        out += ["", f"{title} (rows in both reports; before → **now** where the printed number moved; (new): not "
                "measured before):", "", head,
                "|---" * (1 + len(NUMBERS)) + "|"]
        out += ["| " + " | ".join([r["row"]] + [_cell(r["numbers"].get(k), spec) for k, _, spec in NUMBERS]) + " |"
                for r in rows]
    return out + [""]
