"""The editing commands on the tiny16 preset: make-dataset, train-editor (and --resume), edit, evaluate."""

from __future__ import annotations

import json

import numpy as np
import torch
import pytest
from typer.testing import CliRunner

from genfields.cli import app
from genfields.editing.evaluate import PairValues
from genfields.imageio import save_image
from genfields.perception.judges import judges_available
from genfields.synthface import render_batch

runner = CliRunner()
MODEL = "random:tiny16:1"


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("editing-cli")
    invoke("make-dataset", "--preset", "tiny16", "--out", str(root / "ds"), "--identities", "8", "--attributes", "4")
    invoke("train-editor", "--preset", "tiny16", "--config", "paper", "--dataset", str(root / "ds"),
           "--outdir", str(root / "run"), "--steps", "2", "--sample-every", "0", "--layers", "conv0-conv4")
    save_image(render_batch(1, res=64, seed=3).images, root / "attr.png")
    return root


def test_train_editor_writes_a_run_and_resumes_longer(run):
    assert json.loads((run / "run" / "status.json").read_text()) == {"step": 2, "done": True}
    config = json.loads((run / "run" / "config.json").read_text())
    assert config["config_name"] == "paper" and config["model"]["layers"] == "conv0-conv4"
    result = invoke("train-editor", "--preset", "tiny16", "--outdir", str(run / "run"), "--resume", "--steps", "3")
    assert "step 3/3" in result.output
    config = json.loads((run / "run" / "config.json").read_text())  # the new length, and when it changed
    assert config["steps"] == 3 and config["history"] == [{"at_step": 2, "steps_before": 2, "steps": 3}]
    invoke("train-editor", "--preset", "tiny16", "--outdir", str(run / "run"), "--resume", "--steps", "3")
    assert json.loads((run / "run" / "config.json").read_text())["history"] == config["history"]


def test_edit_writes_output_panel_and_json(run):
    out = run / "edit" / "out.png"
    result = invoke("edit", "--model", MODEL, "--editor", str(run / "run" / "final"), "--identity-seed", "5",
                    "--attribute", str(run / "attr.png"), "--out", str(out), "--json")
    data = json.loads(result.stdout)
    assert set(data["method"]) == {"identity", "expression", "pose"}
    assert out.is_file() and (run / "edit" / "out_panel.png").is_file()
    np.save(run / "z.npy", np.random.RandomState(5).randn(1, 32))
    again = invoke("edit", "--model", MODEL, "--editor", str(run / "run" / "final"), "--identity-z",
                   str(run / "z.npy"), "--attribute", str(run / "attr.png"), "--out", str(out), "--json",
                   "--layers", "conv0-conv2")
    assert json.loads(again.stdout)["unedited"] == data["unedited"]  # same z as seed 5


@pytest.mark.parametrize("args, message", [
    (["--identity-seed", "1", "--identity-z", "z.npy"], "exactly one of"),
    (["--identity-seed", "1", "--attribute-missing"], "no such image"),
    (["--identity-seed", "1", "--layers", "conv9"], "no layer"),
])
def test_edit_reports_bad_input_in_one_line(run, args, message):
    attribute = str(run / ("missing.png" if "--attribute-missing" in args else "attr.png"))
    args = [a for a in args if a != "--attribute-missing"]
    result = runner.invoke(app, ["edit", "--model", MODEL, "--editor", str(run / "run" / "final"),
                                 "--attribute", attribute, *args], catch_exceptions=True)
    assert result.exit_code != 0
    assert message in str(result.exception) or message in result.output


def test_evaluate_prints_method_and_unedited(run):
    result = invoke("evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4",
                    "--batch", "4", "--json", "--out", str(run / "eval.json"))
    data = json.loads(result.stdout)
    plain = {"identity", "expression", "pose", "fd", "kid"}
    if judges_available("synth"):
        assert set(data) == {"method", "unedited", "pose_leak", "judged_by", "landmark_disagreement_attribute",
                             "intervals"}
        assert set(data["method"]) == plain | {"identity_loss_net", "expression_loss_net", "pose_loss_net",
                                               "landmark_disagreement", "tearing", "pose_3ddfa"}  # 3DDFA_V2 by default
        assert data["judged_by"] == {"identity": "judge_identity", "landmarks": "judge_landmarks",
                                     "pose_3ddfa": "3ddfa"}
    else:
        assert set(data) == {"method", "unedited", "pose_leak", "judged_by", "intervals"}
    assert set(data["pose_leak"]["method"]) == {"yaw", "pitch", "roll"}
    assert json.loads((run / "eval.json").read_text()) == {**data, "pairs": 4, "seed": 0,  # the file says how
                                                            "pairs_file": "eval.pairs.npz"}
    values = PairValues.load(run / "eval.pairs.npz")  # every per-pair value beside the JSON
    for side in ("method", "unedited"):
        assert set(values.metrics[side]) == set(data[side]) - {"fd", "kid", "tearing"}
        for name, per_pair in values.metrics[side].items():
            assert per_pair.shape == (4,) and per_pair.mean() == pytest.approx(data[side][name], rel=1e-5, abs=1e-7)
            ci = data["intervals"][side][name]
            assert ci["lo"] <= ci["value"] <= ci["hi"] and ci["value"] == pytest.approx(data[side][name])
        assert set(data["intervals"][side]) >= {"fd", "kid"}
        assert data["intervals"][side]["fd"]["value"] == pytest.approx(data[side]["fd"])
    assert values.features["method"].shape[0] == values.features["real"].shape[0] == 4
    assert values.angles["output"].shape == (4, 3) and values.meta["pairs"] == 4
    assert values.impostor.shape == (4,) and (values.impostor < 1 - 1e-4).all()  # other people
    assert data["intervals"]["method"]["identity_over_impostor"]["value"] == pytest.approx(
        data["method"]["identity"] - values.impostor.mean(), abs=1e-5)
    result = invoke("evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4",
                    "--batch", "4", "--no-judges")
    assert "b_id" in result.stdout and "judged by: loss networks" in result.stdout and "tearing" not in result.stdout
    if judges_available("synth"):
        plain_judges = invoke("evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4",
                              "--batch", "4", "--pose-judge", "none", "--json")
        assert "pose_3ddfa" not in json.loads(plain_judges.stdout)["method"]
    bad = runner.invoke(app, ["evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4",
                              "--pose-judge", "nonesuch"])
    assert bad.exit_code != 0 and "unknown pose judge" in str(bad.exception) + bad.output
    optimum = json.loads(invoke("evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs",
                                "4", "--batch", "4", "--per-pair-steps", "2", "--json").stdout)
    assert optimum["method"]["pose"] != data["method"]["pose"] and optimum["unedited"] == data["unedited"]
    store = run / "optimum.safetensors"
    per_pair = ["evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4", "--batch",
                "4", "--json", "--per-pair-store", str(store)]
    bad = runner.invoke(app, per_pair)
    assert bad.exit_code != 0 and "give --per-pair-steps too" in str(bad.exception)
    stored = json.loads(invoke(*per_pair, "--per-pair-steps", "2").stdout)
    again = json.loads(invoke(*per_pair, "--per-pair-steps", "2").stdout)  # read back, not recomputed
    assert stored["method"] == optimum["method"] == again["method"] and store.is_file()
    bad = runner.invoke(app, [*per_pair, "--per-pair-steps", "3"])
    assert bad.exit_code != 0 and "steps differ" in str(bad.exception)


def test_run_demo_on_a_trained_editor(run):
    from genfields.editing import run_demo

    summary = run_demo(run / "demo", seed=0, editor=str(run / "run" / "final"))
    assert (run / "demo" / "demo_edits.png").is_file() and 0 < summary["method"]["identity"] <= 1.0001


def test_train_editor_loss_weights_from_the_command_line(run):
    invoke("train-editor", "--preset", "tiny16", "--config", "paper", "--dataset", str(run / "ds"),
           "--outdir", str(run / "weights"), "--steps", "1", "--sample-every", "0",
           "--lambda-attr", "0.5", "--lambda-rec", "0", "--style-reg", "0.01")
    loss = json.loads((run / "weights" / "config.json").read_text())["loss"]
    assert (loss["identity"], loss["attribute"], loss["reconstruction"], loss["style_reg"]) == (1.0, 0.5, 0.0, 0.01)


@pytest.mark.parametrize("args, message", [
    (("--config", "default", "--style-reg", "0.1"), "has no style regulariser"),
    (("--lambda-attr", "-1"), "--lambda-attr must be >= 0, got -1"),
    (("--lambda-id", "nan"), "--lambda-id must be >= 0, got nan"),
])
def test_train_editor_refuses_bad_loss_weights(run, args, message):
    result = runner.invoke(app, ["train-editor", "--preset", "tiny16", "--dataset", str(run / "ds"),
                                 "--outdir", str(run / "bad"), "--steps", "1", *args])
    assert result.exit_code != 0 and message in str(result.exception), result.output


def test_ship_editor_writes_float16_weights_and_a_card_from_the_evaluation(run, tmp_path):
    result = runner.invoke(app, ["ship-editor", "--run", str(run / "run"), "--name", "tiny", "--out-dir", str(tmp_path)])
    assert result.exit_code != 0 and "evaluate --editor" in str(result.exception)  # evaluation.json first
    invoke("evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4",
           "--out", str(run / "run" / "evaluation.json"))
    notes = tmp_path / "notes.md"
    notes.write_text("Tried a larger learning rate first.")
    result = invoke("ship-editor", "--run", str(run / "run"), "--name", "tiny", "--out-dir", str(tmp_path),
                    "--notes", str(notes))
    shipped = tmp_path / "tiny"
    evaluation = json.loads((run / "run" / "evaluation.json").read_text())
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "over 4 identity/attribute pairs" in card
    assert card.startswith("# tiny: a trained M_ref editor (paper configuration)") and "std of S" in card
    assert "Started from" not in card  # trained from zero; a run with --init says where it started
    assert f"{evaluation['method']['pose']:.2f}" in card and "identity similarity" in result.output
    assert f"an excess of {evaluation['method']['tearing']:+.4f}" in card  # tiny16 has judges (synth)
    assert "## What was tried\n\nTried a larger learning rate first." in card
    for change in json.loads((run / "run" / "config.json").read_text()).get("history", []):  # set by the resume test
        assert f"at step {change['at_step']} from {change['steps_before']} to {change['steps']} steps" in card
    assert (shipped / "demo_edits.png").is_file() and (shipped / "curves.png").is_file()
    from safetensors.torch import load_file

    from genfields.editing import load_editor

    assert all(v.dtype == torch.float16 for v in load_file(str(shipped / "editor.safetensors")).values())
    shipped_editor = load_editor(shipped, model=MODEL)
    original = load_editor(run / "run" / "final", model=MODEL)
    for a, b in zip(shipped_editor.network.parameters(), original.network.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-6)


def test_train_editor_init_starts_from_a_trained_editor(run):
    invoke("train-editor", "--preset", "tiny16", "--dataset", str(run / "ds"), "--outdir", str(run / "tuned"),
           "--init", str(run / "run" / "final"), "--steps", "1", "--lr-start", "1e-12", "--lr-end", "1e-12",
           "--sample-every", "0", "--layers", "conv0-conv4")
    from genfields.editing.editor import load_editor_network

    tuned, _, meta = load_editor_network(run / "tuned" / "final")
    start, _, _ = load_editor_network(run / "run" / "final")
    assert meta["train"]["init"] == str(run / "run" / "final")
    from genfields.evaluation.editor_card import _started_from

    assert f"Started from the trained editor `{run / 'run' / 'final'}`" in _started_from(meta["train"])
    for a, b in zip(tuned.state_dict().values(), start.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-9)  # one step at lr 1e-12: still the starting weights
    result = runner.invoke(app, ["train-editor", "--preset", "tiny16", "--dataset", str(run / "ds"),
                                 "--outdir", str(run / "tuned2"), "--init", str(run / "nowhere"), "--steps", "1"])
    assert result.exit_code != 0 and "nowhere" in str(result.exception)
    result = runner.invoke(app, ["train-editor", "--preset", "tiny16", "--config", "wspace", "--dataset", str(run / "ds"),
                                 "--outdir", str(run / "tuned3"), "--init", str(run / "run" / "final"), "--steps", "1"])
    assert result.exit_code != 0 and "--init" in str(result.exception) and "network kinds" in str(result.exception)


def test_card_training_curve_reads_ten_windows_of_the_cross_steps(tmp_path):
    from genfields.evaluation.editor_card import training_curve

    assert training_curve(tmp_path) == ""  # no metrics.jsonl: no section
    records = [{"step": s, "stage": "cross" if s % 20 else "reconstruction", "lnd": 100.0 / s, "id": 0.5}
               for s in range(10, 2010, 10)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    section = training_curve(tmp_path)
    assert section.count("\n| ") == 11 and "| L_lnd | L_id |" in section  # header and ten windows
    cross = [r["lnd"] for r in records if r["stage"] == "cross"]
    last, before = sum(cross[-30:]) / 30, sum(cross[-60:-30]) / 30
    assert f"averages {last:.4g}, over the three before {before:.4g} ({(before - last) / before:.0%} lower)" in section


def test_card_network_line_names_the_inputs_beyond_the_paper():
    from genfields.evaluation.editor_card import _network_inputs

    assert _network_inputs({"concat": True}) == "F_attr ++ F_id"
    assert "S_id" in _network_inputs({"concat": False, "identity_input": "styles"})
    assert "F_attr(I_id)" in _network_inputs({"concat": False, "identity_input": "f_attr"})
    assert "IDDISEN" in _network_inputs({"concat": True, "train_attributes": True})


def test_card_tearing_sentence_reads_the_excess():
    from genfields.evaluation.editor_card import _tearing

    def evaluation(out, unedited):
        return {"method": {"landmark_disagreement": out, "tearing": out - unedited},
                "unedited": {"landmark_disagreement": unedited}}

    assert _tearing({"method": {}, "unedited": {}}) == ""  # no judges: no sentence
    assert "near 0: the edits move the face" in _tearing(evaluation(0.0080, 0.0079))
    torn = _tearing(evaluation(0.0157, 0.0079))
    assert "an excess of +0.0078 (2.0 times the unedited disagreement" in torn and "near 0" not in torn


def test_evaluate_scores_realism_with_the_shipped_realism_network(run, monkeypatch):
    from genfields.perception import realism_net

    if not judges_available("synth"):
        pytest.skip("the realism network is read where the judges are (perception preset synth)")
    final = realism_net.train_realism_network(realism_net.RealismTrainConfig(steps=1, batch=2, heldout=2, width=8,
                                                                             feature_dim=8), run / "realism",
                                              progress=False)
    monkeypatch.setattr(realism_net, "shipped_realism_network", lambda: realism_net.load_realism_network(final))
    result = invoke("evaluate", "--preset", "tiny16", "--editor", str(run / "run" / "final"), "--pairs", "4",
                    "--batch", "4", "--pose-judge", "none")
    assert "realism net: FD" in result.stdout
