"""Ship a trained editor: float16 weights, a demo grid, training curves and a model card with its evaluation.

The card's numbers come from files the run's commands wrote, never from typing:
`RUN/evaluation.json` is `genfields evaluate --editor RUN/final --out RUN/evaluation.json`, and
an optional baseline run (the W-space editor of Table 1) contributes its own evaluation.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from genfields.editing.editor import EDITORS_DIR, editor_folder
from genfields.errors import ConfigError
from genfields.evaluation.plots import plot_editor_run
from genfields.evaluation.quality_bar import QualityCheck, what_was_tried

EVALUATION_FILE = "evaluation.json"
METRICS = ("identity", "expression", "pose", "fd")


def quality_bar(evaluation: dict, max_pose_ratio: float = 0.2, max_expression_ratio: float = 0.5,
                min_identity: float = 0.8) -> list[QualityCheck]:
    """The editing issue's bar: pose MSE and expression distance against the unedited baseline's, identity."""
    method, unedited = evaluation["method"], evaluation["unedited"]
    return [QualityCheck("pose MSE", method["pose"], max_pose_ratio * unedited["pose"], False),
            QualityCheck("expression distance", method["expression"], max_expression_ratio * unedited["expression"],
                         False),
            QualityCheck("identity similarity", method["identity"], min_identity, True)]


def read_evaluation(run: Path) -> dict:
    """A run's evaluation.json, or an error that says which command writes it."""
    path = run / EVALUATION_FILE
    if not path.is_file():
        raise ConfigError(f"{run}: no {EVALUATION_FILE}; write it with "
                          f"`genfields evaluate --editor {run / 'final'} --out {path}`")
    evaluation = json.loads(path.read_text())
    missing = [f"{side}.{k}" for side in ("method", "unedited") for k in METRICS if k not in evaluation.get(side, {})]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    return evaluation


def ship_editor(run: str | Path, name: str, command: str, baseline: str | Path | None = None,
                editors_dir: Path = EDITORS_DIR, notes: str = "") -> Path:
    """Copy `run`'s final editor into `editors_dir/name` (float16 weights) with a demo grid, curves and card.

    `notes` (markdown: what was tried, and why a bar line is missed if one is) goes into the card as written.
    """
    from genfields.editing.demo import run_demo

    run = Path(run)
    status = json.loads((run / "status.json").read_text()) if (run / "status.json").is_file() else {}
    if not status.get("done"):
        raise ConfigError(f"{run} has not finished training (step {status.get('step', 0)})")
    evaluation = read_evaluation(run)
    baseline_eval = read_evaluation(Path(baseline)) if baseline else None
    source = editor_folder(run / "final")
    out = Path(editors_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(source / "editor.safetensors"))
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()},
              str(out / "editor.safetensors"), metadata={"format": "genfields-editor-v1"})
    shutil.copy(source / "config.json", out / "config.json")
    shutil.copy(run / EVALUATION_FILE, out / EVALUATION_FILE)
    demo = run_demo(out, editor=str(out))
    plot_editor_run(run, out / "curves.png")
    cfg = json.loads((run / "config.json").read_text())
    card = model_card(name, cfg, status, evaluation, baseline_eval, demo, command, notes, training_curve(run))
    (out / "MODEL_CARD.md").write_text(card)
    return out


def _length_changes(cfg: dict) -> str:
    """The run-length changes made on resume, as a sentence (the lr schedule stretched with each)."""
    changes = [f"at step {h['at_step']} from {h['steps_before']} to {h['steps']} steps" for h in cfg.get("history", [])]
    return f" Run length changed on resume {'; '.join(changes)} (the lr schedule stretched)." if changes else ""


def _started_from(cfg: dict) -> str:
    return (f" Started from the trained editor `{cfg['init']}` (a fine-tune; its own card or run has its training)."
            if cfg.get("init") else "")


def _network_inputs(model: dict) -> str:
    """What the network reads, beyond F_attr: F_id (the paper's concatenation), the identity's own features
    (our extensions) and whether its attribute encoder is trained (the IDDISEN baseline)."""
    extra = {"f_attr": " ++ F_attr(I_id) (the identity's own attribute features; beyond the paper)",
             "styles": " ++ S_id (the identity's own styles; beyond the paper)"}.get(model.get("identity_input", "none"), "")
    encoder = (" (E_attr trained with the mapper, as IDDISEN trains it)" if model.get("train_attributes")
               else "")
    return f"F_attr{encoder}{' ++ F_id' if model['concat'] else ''}{extra}"


def _adversarial(loss: dict) -> str:
    return f", adversarial (W discriminator) {loss['adversarial']}" if loss.get("adversarial") else ""


def _pose_3ddfa(evaluation: dict) -> str:
    """The real 3DDFA_V2's pose MSE as a sentence ('' when the evaluation ran without it)."""
    method, unedited = evaluation["method"], evaluation["unedited"]
    if "pose_3ddfa" not in method:
        return ""
    return (f"\nPose by the real 3DDFA_V2 (`--pose-judge 3ddfa`, trained by no one here): MSE "
            f"{method['pose_3ddfa']:.2f} deg^2 (unedited {unedited['pose_3ddfa']:.2f}).\n")


def training_curve(run: Path) -> str:
    """The run's cross-step losses in ten windows of its `metrics.jsonl` (the windows `genfields reproduce`
    records as `loss_curve`), and how much the last three fell against the three before: whether the run
    has flattened out. '' when the run logged nothing."""
    from genfields.evaluation.report_editors import loss_curve

    path = run / "metrics.jsonl"
    logged = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    curve = loss_curve(logged)
    keys = [k for k in ("lnd", "pose", "id", "adv") if curve and all(k in w for w in curve)]
    if len(curve) < 6 or not keys:
        return ""
    lines = ["| window ending at step | " + " | ".join(f"L_{k}" for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    lines += [f"| {w['step']} | " + " | ".join(f"{w[k]:.4g}" for k in keys) + " |" for w in curve]
    last, before = (sum(w[keys[0]] for w in part) / 3 for part in (curve[-3:], curve[-6:-3]))
    change = (before - last) / before if before else 0.0
    trend = f"{change:.0%} lower" if change >= 0 else f"{-change:.0%} higher"
    return (f"\n## Training curve\n\nMeans of the cross steps' losses in {len(curve)} windows of `metrics.jsonl`. "
            f"L_{keys[0]} over the last three windows averages {last:.4g}, over the three before {before:.4g} "
            f"({trend}).\n\n" + "\n".join(lines) + "\n")


def _table(rows: dict[str, dict]) -> str:
    """Metrics by the judges (or the loss networks, for evaluations without judges), then by the loss networks."""
    judged = all("identity_loss_net" in r for r in rows.values())
    by = " by the judges" if judged else ""
    head = (f"| | identity{by} (cos, higher) | expression{by} (landmarks / res, lower) | pose{by} (MSE deg^2, lower) "
            "| FD (lower) |")
    lines = [head + (" identity / expression / pose by the loss networks |" if judged else ""),
             "|---|---|---|---|---|" + ("---|" if judged else "")]
    for label, r in rows.items():
        line = f"| {label} | {r['identity']:.3f} | {r['expression']:.4f} | {r['pose']:.2f} | {r['fd']:.2f} |"
        if judged:
            line += f" {r['identity_loss_net']:.3f} / {r['expression_loss_net']:.4f} / {r['pose_loss_net']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def _pose_leak(evaluation: dict) -> str:
    """The pose-leak regression of the evaluation as a sentence ('' when it has none)."""
    leak = evaluation.get("pose_leak", {}).get("method")
    if not leak:
        return ""
    fmt = lambda key: " / ".join(f"{leak[a][key]:.2f}" for a in ("yaw", "pitch", "roll"))  # noqa: E731
    return (f"\nPose leak (output angles regressed on the attribute's and the identity's, judge's angles): "
            f"b_attr {fmt('b_attr')}, b_id {fmt('b_id')} (yaw / pitch / roll; a perfect transfer: 1 and 0).\n")


TEARING_NEAR_ZERO = 1.25  # outputs' landmark disagreement up to this multiple of the unedited images' reads as none


def _tearing(evaluation: dict) -> str:
    """The tearing measure of the evaluation as a sentence ('' when it has none: no judges)."""
    method, unedited = evaluation["method"], evaluation["unedited"]
    if "tearing" not in method:
        return ""
    ratio = method["landmark_disagreement"] / max(unedited["landmark_disagreement"], 1e-12)
    reading = ("near 0: the edits move the face as both networks see it" if ratio <= TEARING_NEAR_ZERO else
               f"{ratio:.1f} times the unedited disagreement: the loss network sees landmarks the judge does not, "
               "as when an edit fools it by tearing the face")
    return (f"\nTearing: the judge's and the loss network's landmarks of the outputs lie "
            f"{method['landmark_disagreement']:.4f} of the resolution apart, of the unedited images "
            f"{unedited['landmark_disagreement']:.4f}: an excess of {method['tearing']:+.4f} ({reading}; "
            "docs/reproduce.md, \"The tearing measure\").\n")


def model_card(name: str, cfg: dict, status: dict, evaluation: dict, baseline: dict | None, demo: dict,
               command: str, notes: str = "", curve: str = "") -> str:
    loss, model = cfg["loss"], cfg["model"]
    rows = {f"{name} ({cfg['config_name']})": evaluation["method"], "unedited identity": evaluation["unedited"]}
    if baseline is not None:
        rows["W-space baseline"] = baseline["method"]
    checks = "\n".join(f"- {c.describe()}" for c in quality_bar(evaluation))
    versus = ""
    if baseline is not None:
        better = [k for k, hi in (("identity", True), ("pose", False))
                  if (evaluation["method"][k] > baseline["method"][k]) == hi]
        versus = (f"\nAgainst the W-space baseline: better on {', '.join(better) or 'neither'} of identity and pose "
                  "(the paper's Table 1 has the style-space method better on both).\n")
    tried = what_was_tried(notes)
    kind, space = ("M_ref", "S") if model["kind"] == "style" else ("W-space", "w")
    return f"""# {name}: a trained {kind} editor ({cfg['config_name']} configuration)

- **Generator**: `{cfg['generator'] or cfg['preset']}`; perception networks and attribute images of the
  `{cfg['preset']}` preset. Weights stored as float16 safetensors; `genfields.editing.load_editor("{name}")`.
- **Network**: {model['kind']} mapper, hidden {model['hidden']}, input {_network_inputs(model)},
  output in units of the per-channel std of {space}: {model['scale_by_std']}; control units {model['layers'] or model['gf'] or 'all'}.
- **Losses**: lambda_1 (L_id) {loss['identity']}, lambda_2 (L_lnd{' + L_pose' if loss['pose'] else ''}) {loss['attribute']},
  lambda_3 (L_rec) {loss['reconstruction']}, style regulariser {loss['style_reg']}{_adversarial(loss)}.
- **Training**: {status['step']} steps, batch {cfg['batch']}, Adam ({cfg['beta1']}, {cfg['beta2']}), learning rate
  {cfg['lr_start']:g} -> {cfg['lr_end']:g} (log-linear), cross : reconstruction = {cfg['cross_ratio']} : 1,
  dataset `{cfg['dataset']}`.{_length_changes(cfg)}{_started_from(cfg)}
- **Command**: `{command}`

## Evaluation

`genfields evaluate` over {evaluation.get('pairs', 'the')} identity/attribute pairs (attribute images never used in
training; FD in the synthetic feature network, not FID):

{_table(rows)}
{_pose_3ddfa(evaluation)}{_pose_leak(evaluation)}{_tearing(evaluation)}
Quality bar of the editing issue:
{checks}
{versus}
## Demo

The shipped demo (`genfields demo`): identities down the left, attribute renders along the top. Mean
over its 16 edits: identity {demo['method']['identity']:.3f}, pose MSE {demo['method']['pose']:.2f}
(unedited {demo['unedited']['pose']:.2f}).

![demo](demo_edits.png)

![training curves](curves.png)
{curve}{tried}"""
