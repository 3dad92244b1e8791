"""Nothing lost (issue 17): Ctrl-C in the middle of synth-data, train-gan and train-editor, then --resume,
gives the same bytes as an uninterrupted run; a finished run is never replaced without --overwrite.

synth-data runs as a real process group that gets SIGINT (as a terminal's Ctrl-C does: the
worker processes get it too). The trainers run in-process and raise SIGINT on themselves at a
fixed step, so that the interruption lands at the same place on every machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genfields.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def _same_files(a: Path, b: Path, names: list[str]) -> None:
    """Equal bytes; for safetensors, equal tensor bytes and metadata (its header orders metadata at random)."""
    from safetensors import safe_open

    for name in names:
        if not name.endswith(".safetensors"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
            continue
        with safe_open(str(a / name), "pt") as fa, safe_open(str(b / name), "pt") as fb:
            assert fa.metadata() == fb.metadata() and sorted(fa.keys()) == sorted(fb.keys()), name
            for key in fa.keys():
                ta, tb = fa.get_tensor(key), fb.get_tensor(key)
                assert ta.dtype == tb.dtype and ta.shape == tb.shape, (name, key)
                assert ta.contiguous().view(-1).view(torch.uint8).equal(tb.contiguous().view(-1).view(torch.uint8)), \
                    (name, key)


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _interrupt_at(monkeypatch, cls, step: int) -> None:
    """Make `cls.train_step` send SIGINT to this process right after step `step` (as Ctrl-C would)."""
    original = cls.train_step

    def train_step(self, *args, **kwargs):
        stats = original(self, *args, **kwargs)
        if self.step == step:
            signal.raise_signal(signal.SIGINT)
        return stats

    monkeypatch.setattr(cls, "train_step", train_step)


def test_synth_data_interrupted_and_resumed_is_byte_identical(tmp_path):
    from genfields.synthface.dataset import write_dataset

    args = ["--n", "256", "--res", "16", "--shard-size", "32", "--supersample", "1", "--seed", "5"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "genfields", "synth-data", "--outdir", str(tmp_path / "a"), *args, "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    meta, deadline = tmp_path / "a" / "meta.json", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if meta.is_file() and json.loads(meta.read_text() or "{}").get("shards"):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # the whole process group, as a terminal does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in stderr and "SpawnPoolWorker" not in stderr, stderr
    resumed = _invoke("synth-data", "--outdir", str(tmp_path / "a"), *args, "--workers", "1", "--json")
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["resumed"] > 0 and summary["rendered"] > 0  # the interruption landed in the middle
    write_dataset(tmp_path / "b", n=256, res=16, shard_size=32, supersample=1, seed=5, workers=1, progress=False)
    shards = sorted(p.name for p in (tmp_path / "b").glob("shard_*.npz"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in (tmp_path / "b").iterdir())
    _same_files(tmp_path / "a", tmp_path / "b", shards)
    assert json.loads(meta.read_text()) == json.loads((tmp_path / "b" / "meta.json").read_text())


def test_synth_data_redoes_a_damaged_shard_and_training_refuses_one(tmp_path):
    from genfields.synthface.dataset import SynthFaceDataset, write_dataset

    settings = dict(n=40, res=16, shard_size=16, supersample=1, seed=2, workers=1, progress=False)
    write_dataset(tmp_path, **settings)
    good = (tmp_path / "shard_00001.npz").read_bytes()
    (tmp_path / "shard_00001.npz").write_bytes(good[: len(good) // 2])  # cut off, as a full disk would
    with pytest.raises(ValueError, match="incomplete or damaged"):
        SynthFaceDataset(tmp_path)
    result = runner.invoke(app, ["train-gan", "--arch", "tiny16", "--data", str(tmp_path), "--outdir",
                                 str(tmp_path / "run"), "--kimg", "0.016", "--batch", "8"])
    assert result.exit_code == 2 and "incomplete or damaged" in result.stderr and "Traceback" not in result.output
    summary = write_dataset(tmp_path, **settings)
    assert summary["rendered"] == 16 and (tmp_path / "shard_00001.npz").read_bytes() == good


GAN_ARGS = ["--arch", "tiny16", "--batch", "8", "--kimg", "0.096", "--sample-kimg", "0", "--snapshot-kimg", "0.032"]


def test_train_gan_interrupted_and_resumed_is_byte_identical(tmp_path, monkeypatch):
    from genfields.stylegan2.train import GANTrainer

    _invoke("train-gan", *GAN_ARGS, "--outdir", str(tmp_path / "straight"))
    with monkeypatch.context() as patch:
        _interrupt_at(patch, GANTrainer, 5)
        _invoke("train-gan", *GAN_ARGS, "--outdir", str(tmp_path / "a"))
    status = json.loads((tmp_path / "a" / "status.json").read_text())
    assert status["step"] == 5 and not status["done"]
    refused = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "--resume" in refused.stderr  # a fresh start would lose the 5 steps
    resumed = _invoke("train-gan", "--resume", "--outdir", str(tmp_path / "a"))  # no --kimg: the run's own length
    assert "0.096 of 0.096 kimg" in resumed.stdout
    snapshots = sorted(p.name for p in (tmp_path / "straight" / "snapshots").iterdir())
    assert snapshots == ["kimg000000.032", "kimg000000.064", "kimg000000.096"]
    assert sorted(p.name for p in (tmp_path / "a" / "snapshots").iterdir()) == snapshots
    _same_files(tmp_path / "straight", tmp_path / "a", ["final/model.safetensors", "checkpoint/tensors.safetensors",
                                                         *[f"snapshots/{s}/model.safetensors" for s in snapshots]])


def test_train_gan_overwrite_replaces_a_finished_run(tmp_path):
    _invoke("train-gan", *GAN_ARGS, "--kimg", "0.016", "--outdir", str(tmp_path))
    (tmp_path / "notes.txt").write_text("mine\n")
    _invoke("train-gan", *GAN_ARGS, "--kimg", "0.008", "--outdir", str(tmp_path), "--overwrite")
    assert json.loads((tmp_path / "status.json").read_text())["images_seen"] == 8
    assert (tmp_path / "notes.txt").read_text() == "mine\n"  # only the run's own files go


def test_train_editor_interrupted_and_resumed_is_byte_identical(tmp_path, monkeypatch):
    from genfields.editing.trainer import EditorTrainer

    _invoke("make-dataset", "--preset", "tiny16", "--outdir", str(tmp_path / "ds"), "--identities", "8",
            "--attributes", "4")
    args = ["--preset", "tiny16", "--config", "paper", "--dataset", str(tmp_path / "ds"), "--steps", "6",
            "--sample-every", "0"]
    _invoke("train-editor", *args, "--outdir", str(tmp_path / "straight"))
    with monkeypatch.context() as patch:
        _interrupt_at(patch, EditorTrainer, 3)
        stopped = _invoke("train-editor", *args, "--outdir", str(tmp_path / "a"))
    assert "step 3/6; rerun with --resume to continue" in stopped.stdout
    refused = runner.invoke(app, ["train-editor", *args, "--outdir", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "holds a run" in refused.stderr
    refused = runner.invoke(app, ["train-editor", "--outdir", str(tmp_path / "a"), "--resume", "--batch", "4"])
    assert refused.exit_code == 2 and "--batch 4 differs from the run's batch 6" in refused.stderr
    _invoke("train-editor", "--outdir", str(tmp_path / "a"), "--resume")
    _same_files(tmp_path / "straight", tmp_path / "a", ["final/editor.safetensors", "final/config.json",
                                                         "checkpoint/tensors.safetensors"])
