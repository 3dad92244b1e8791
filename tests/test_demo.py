"""`genfields demo` before anything is shipped, with a shipped synth64 generator but no editor, and on the shipped models."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genfields.cli import app


def _isolate(monkeypatch, models):
    """Point the shipped-model and shipped-editor lookups at `models` (empty unless a test ships there)."""
    monkeypatch.setattr("genfields.stylegan2.checkpoints.MODELS_DIR", models)
    monkeypatch.setattr("genfields.editing.editor.EDITORS_DIR", models / "editing")


def test_demo_without_shipped_models_says_its_generator_is_random(tmp_path, monkeypatch):
    _isolate(monkeypatch, tmp_path / "models")
    result = CliRunner().invoke(app, ["demo", "--outdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "RANDOMLY INITIALISED" in result.output and (tmp_path / "demo" / "grid.png").is_file()
    rows = json.loads((tmp_path / "demo" / "fields_paper256.json").read_text())
    assert len(rows) == 13 and rows[0]["gf"] > rows[-1]["gf"] and "gf_exact" not in rows[0]  # paper256, Eq. 1 only


def test_demo_with_a_shipped_generator_shows_its_grid_and_measured_fields(tmp_path, monkeypatch):
    from genfields.evaluation.gan_card import ship_gan
    from genfields.stylegan2.train import GANTrainConfig, train_gan

    run = tmp_path / "run"
    cfg = GANTrainConfig(arch="tiny16", batch=8, total_kimg=0.016, r1_interval=4, snapshot_kimg=0.016, log_steps=2)
    train_gan(cfg, run, progress=False)
    assert CliRunner().invoke(app, ["gan-quality", "--run", str(run), "--n", "40"]).exit_code == 0
    models = tmp_path / "models"
    ship_gan(run, "synth64", "test", models_dir=models, allow_below_bar=True)  # a 16-px stand-in
    stored = json.loads((models / "synth64" / "fields.json").read_text())
    assert {"gf_exact", "gf_effective"} <= set(stored[0])
    _isolate(monkeypatch, models)
    result = CliRunner().invoke(app, ["demo", "--outdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "synth64 (measured when shipped)" in result.output and "no shipped editor yet" in result.output
    assert json.loads((tmp_path / "demo" / "fields_synth64.json").read_text()) == stored


def test_demo_on_the_shipped_models_edits_towards_the_attribute_faces(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "edited by the shipped synth64 editor" in result.output and (tmp_path / "demo_edits.png").is_file()
    metrics = json.loads(result.output.strip().splitlines()[-1])
    method, unedited = metrics["method"], metrics["unedited"]
    assert method["pose"] < 0.2 * unedited["pose"] and method["expression"] < 0.5 * unedited["expression"]
    assert method["identity"] > 0.8
    assert json.loads((tmp_path / "demo_edits.json").read_text())["method"] == method
