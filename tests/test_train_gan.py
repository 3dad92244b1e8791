"""GAN training: a 16x16 run trains with finite losses, resumes exactly, and runs on 2 processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from genfields.stylegan2 import load_generator
from genfields.stylegan2.train import GANTrainConfig, train_gan

TINY = GANTrainConfig(arch="tiny16", batch=8, total_kimg=0.064, r1_interval=4, pl_weight=1.0, pl_interval=3,
                      sample_kimg=0.032, snapshot_kimg=0.032, log_steps=2)


def test_tiny_run_trains_with_finite_losses_and_writes_its_folder(tmp_path):
    trainer = train_gan(TINY, tmp_path, progress=False)
    assert trainer.step == 8
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(torch.isfinite(torch.tensor(r["loss_G"])) for r in records)
    assert json.loads((tmp_path / "config.json").read_text())["arch"] == "tiny16"
    assert (tmp_path / "samples" / "reals.png").is_file() and (tmp_path / "samples" / "fakes000000.png").is_file()
    G = load_generator(tmp_path / "final")  # the finished run's G_ema loads like any checkpoint
    assert G.config.img_resolution == 16
    assert any((tmp_path / "snapshots").iterdir())
    # the weights moved away from their initialisation
    assert not torch.equal(trainer.G.synthesis.b4.const, trainer.G_ema.synthesis.b4.const) or trainer.step > 0


def test_resume_is_exact(tmp_path):
    straight = train_gan(TINY, tmp_path / "a", progress=False)
    train_gan(dataclasses.replace(TINY, total_kimg=0.032), tmp_path / "b", progress=False)
    resumed = train_gan(TINY, tmp_path / "b", resume=True, progress=False)
    assert straight.step == resumed.step == 8
    assert json.loads((tmp_path / "b" / "config.json").read_text())["total_kimg"] == TINY.total_kimg  # the new length
    a, b = straight.state()[0], resumed.state()[0]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [2, 4, 6, 8]


def _pl_trainer(tmp_path):
    from genfields.stylegan2.train import GANTrainer
    from genfields.training import Distributed, RunFolder

    cfg = dataclasses.replace(TINY, pl_weight=2.0, pl_interval=1)
    return GANTrainer(cfg, RunFolder(tmp_path), Distributed())


def test_path_length_step_computes_a_penalty_moves_its_mean_and_reaches_every_part_of_g(tmp_path):
    trainer = _pl_trainer(tmp_path)
    before = {name: p.detach().clone() for name, p in trainer.G.named_parameters()}
    penalty = trainer._path_length_step(torch.Generator().manual_seed(0))
    assert penalty > 0 and torch.isfinite(torch.tensor(penalty))
    assert trainer.pl_mean > 0  # lerp(0, batch mean, 0.01)
    moved = {name for name, p in trainer.G.named_parameters() if not torch.equal(p, before[name])}
    # its gradient reaches the synthesis and, through the style-mixed codes, the mapping
    assert any(n.startswith("mapping.") for n in moved) and any(n.startswith("synthesis.") for n in moved)


def test_path_length_mean_is_saved_and_restored_and_resume_depends_on_it(tmp_path):
    cfg = dataclasses.replace(TINY, pl_weight=2.0, pl_interval=1)
    straight = train_gan(cfg, tmp_path / "a", progress=False)
    assert straight.pl_mean > 0 and "pl_penalty" in straight.last_reg
    train_gan(dataclasses.replace(cfg, total_kimg=0.032), tmp_path / "b", progress=False)
    resumed = train_gan(cfg, tmp_path / "b", resume=True, progress=False)
    assert torch.equal(resumed.pl_mean, straight.pl_mean)
    a, b = straight.state()[0], resumed.state()[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # without the stored mean the continuation differs: the test above would notice a mean not restored
    train_gan(dataclasses.replace(cfg, total_kimg=0.032), tmp_path / "c", progress=False)
    from genfields.training import RunFolder

    tensors, state = RunFolder(tmp_path / "c").load_checkpoint()
    tensors["pl_mean"] = torch.zeros(1)
    RunFolder(tmp_path / "c").save_checkpoint(tensors, state)
    forgetful = train_gan(cfg, tmp_path / "c", resume=True, progress=False).state()[0]
    assert any(not torch.equal(a[k], forgetful[k]) for k in a if k.startswith("G."))


def test_resume_without_checkpoint_is_an_error(tmp_path):
    from genfields.errors import ConfigError

    with pytest.raises(ConfigError, match="no checkpoint"):
        train_gan(TINY, tmp_path, resume=True, progress=False)


def test_max_minutes_stops_cleanly_with_a_checkpoint(tmp_path):
    trainer = train_gan(dataclasses.replace(TINY, total_kimg=10), tmp_path, max_minutes=0.0, progress=False)
    assert trainer.step == 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert status == {"step": 0, "images_seen": 0, "done": False, "stopped_by": "time"}
    assert (tmp_path / "checkpoint" / "state.json").is_file()


def test_two_process_ddp_smoke_run(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "genfields", "train-gan", "--arch", "tiny16", "--kimg", "0.032", "--batch", "8", "--pl-weight", "2",
           "--sample-kimg", "1", "--snapshot-kimg", "1", "--outdir", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((tmp_path / "ddp" / "status.json").read_text())
    assert status["done"] and status["images_seen"] == 32
    G = load_generator(tmp_path / "ddp" / "final")
    with torch.no_grad():
        assert torch.isfinite(G(torch.randn(2, G.z_dim))).all()


def test_training_reads_synth_data_shards(tmp_path):
    from genfields.synthface.dataset import write_dataset

    write_dataset(tmp_path / "data", n=24, res=16, seed=0, shard_size=16, workers=1, progress=False)
    cfg = dataclasses.replace(TINY, data=str(tmp_path / "data"), total_kimg=0.016)
    trainer = train_gan(cfg, tmp_path / "run", progress=False)
    assert trainer.step == 2
    assert trainer.data.batch(20, 8).shape == (8, 3, 16, 16)  # wraps around the 24 images


def test_gan_quality_on_a_run_folder(tmp_path):
    from typer.testing import CliRunner

    from genfields.cli import app

    train_gan(TINY, tmp_path, progress=False)
    result = CliRunner().invoke(app, ["gan-quality", "--run", str(tmp_path), "--n", "40", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (tmp_path / "quality.jsonl").read_text().splitlines()]
    assert [q["kimg"] for q in lines] == [0.032, 0.064]  # a snapshot at every 32 images, each under its own name
    q = lines[0]
    assert q["fd"] > q["fd_floor"] >= 0 and 0 < q["yaw_std_ratio"] < 100
    assert (tmp_path / "curves.png").stat().st_size > 5000
    again = CliRunner().invoke(app, ["gan-quality", "--run", str(tmp_path), "--n", "40", "--json"])
    assert again.exit_code == 0 and len((tmp_path / "quality.jsonl").read_text().splitlines()) == 2
    other = CliRunner().invoke(app, ["gan-quality", "--run", str(tmp_path), "--n", "50"])
    assert other.exit_code == 2 and "measured with --n 40" in str(other.exception)
    # ...and ship it: float16 weights that load, a samples grid, curves and a card written from the run's files
    from genfields.evaluation.gan_card import ship_gan

    with pytest.raises(ValueError, match="below the quality bar"):  # one snapshot cannot show FD falling
        ship_gan(tmp_path, "tiny", "genfields train-gan --arch tiny16", models_dir=tmp_path / "models")
    out = ship_gan(tmp_path, "tiny", "genfields train-gan --arch tiny16", models_dir=tmp_path / "models",
                   notes="Raised R1 gamma.", allow_below_bar=True)
    G = load_generator(out)
    assert G.config.img_resolution == 16
    card = (out / "MODEL_CARD.md").read_text()
    assert "genfields train-gan --arch tiny16" in card and f"| 0.032 | {q['fd']:.2f} |" in card
    assert "(`train-gan --resume --change`): none" in card
    assert "**is below the quality bar**" in card and "## What was tried\n\nRaised R1 gamma." in card
    assert (out / "samples.png").is_file() and (out / "curves.png").is_file()


def test_resume_can_change_the_recipe_and_records_it(tmp_path):
    from genfields.errors import ConfigError

    train_gan(dataclasses.replace(TINY, total_kimg=0.032), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="only .* can change"):
        train_gan(TINY, tmp_path, resume=True, progress=False, changes={"batch": "8"})
    with pytest.raises(ConfigError, match="not a boolean"):
        train_gan(TINY, tmp_path, resume=True, progress=False, changes={"bf16": "maybe"})
    trainer = train_gan(TINY, tmp_path, resume=True, progress=False, changes={"r1_gamma": "0.5", "lr_d": "0.001"})
    assert trainer.cfg.r1_gamma == 0.5 and trainer.step == 8
    ratio = TINY.r1_interval / (TINY.r1_interval + 1)
    assert all(g["lr"] == pytest.approx(0.001 * ratio) for g in trainer.opt_D.param_groups)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["r1_gamma"] == 0.5 and saved["history"] == [{"images_seen": 32, "set": {
        "r1_gamma": 0.5, "lr_d": 0.001, "total_kimg": 0.064}}]  # the longer run is recorded with the change
    with pytest.raises(ConfigError, match="applies to a resumed run"):
        train_gan(TINY, tmp_path / "new", progress=False, changes={"r1_gamma": "0.5"})
    from typer.testing import CliRunner

    from genfields.cli import app

    result = CliRunner().invoke(app, ["train-gan", "--arch", "tiny16", "--outdir", str(tmp_path), "--resume",
                                      "--change", "r1_gamma"])
    assert result.exit_code != 0 and "expected NAME=VALUE" in str(result.exception)


def test_mapping_learning_rate_scales_alone_and_old_single_group_checkpoints_resume(tmp_path):
    """G's optimizer groups the mapping apart; a checkpoint saved with one group resumes to the same state."""
    from genfields.stylegan2.train import split_single_group

    half = dataclasses.replace(TINY, total_kimg=0.032)
    train_gan(half, tmp_path / "two", progress=False)
    trainer = train_gan(half, tmp_path / "one", progress=False)
    # rewrite "one"'s checkpoint as an older trainer wrote it: one parameter group over all of G
    tensors, state = trainer.run.load_checkpoint()
    groups = state["opt_G"]["param_groups"]
    state["opt_G"]["param_groups"] = [{**groups[1], "params": groups[0]["params"] + groups[1]["params"]}]
    trainer.run.save_checkpoint(tensors, state)
    assert split_single_group(state["opt_G"], trainer.opt_G)["param_groups"] == groups
    a = train_gan(TINY, tmp_path / "two", resume=True, progress=False)
    b = train_gan(TINY, tmp_path / "one", resume=True, progress=False, changes={"lr_mapping_scale": "10"})
    lr_g = [g["lr"] for g in b.opt_G.param_groups]
    assert lr_g[0] == pytest.approx(10 * lr_g[1]) and lr_g[1] == pytest.approx(a.opt_G.param_groups[1]["lr"])
    assert len(b.opt_G.param_groups[0]["params"]) == len(list(b.G.mapping.parameters()))
    # the same synthesis updates; a 10x larger step for the mapping
    assert not torch.equal(a.G.mapping.fc0.weight, b.G.mapping.fc0.weight)


def test_gan_quality_bar_checks_every_angle_and_the_fd_trend():
    from genfields.evaluation.quality_bar import gan_quality_bar

    row = {"kimg": 0, "fd": 30.0, "yaw_std_ratio": 1.0, "pitch_std_ratio": 0.7, "roll_std_ratio": 1.3}
    assert all(c.passed for c in gan_quality_bar([row, {**row, "kimg": 300, "fd": 3.0}]))
    failed = [c.describe() for c in gan_quality_bar([row, {**row, "kimg": 300, "fd": 3.0, "roll_std_ratio": 0.34}])
              if not c.passed]
    assert failed == ["roll std ratio: 0.34 >= 0.7 -> FAIL"]
    failed = [c.name for c in gan_quality_bar([row, {**row, "kimg": 300, "fd": 31.0, "yaw_std_ratio": 1.31}])
              if not c.passed]
    assert failed == ["yaw std ratio", "FD at 300 kimg (against 0 kimg)"]


def test_a_gan_config_out_of_bounds_is_refused_before_anything_is_built(tmp_path):
    from genfields.errors import ConfigError

    with pytest.raises(ConfigError, match="GAN config batch must be in"):
        dataclasses.replace(TINY, batch=10**30)
    train_gan(dataclasses.replace(TINY, total_kimg=0.016), tmp_path, progress=False)
    stored = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**stored, "mbstd_group": 10**9}))  # a hand-edited file
    with pytest.raises(ConfigError, match="GAN config mbstd_group must be in"):
        train_gan(TINY, tmp_path, resume=True, progress=False)
