"""Tests of the synthetic-face dataset writer and the synth-data command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from genfields.synthface import render_batch
from genfields.synthface.cli import synth_data
from genfields.imageio import to_uint8
from genfields.synthface.dataset import SynthFaceDataset, read_shard, write_dataset

N = 20


def _all(root) -> dict[str, np.ndarray]:
    ds = SynthFaceDataset(root)
    items = list(ds)
    return {k: np.stack([it[k] for it in items]) for k in items[0]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds_ref")
    write_dataset(root, n=N, res=32, seed=3, shard_size=7, workers=1, progress=False)
    return root


def test_writes_shards_with_labels(reference):
    meta = json.loads((reference / "meta.json").read_text())
    assert meta["n"] == N and meta["res"] == 32 and len(meta["names"]["identity"]) >= 12
    shards = sorted(reference.glob("shard_*.npz"))
    assert len(shards) == 3
    first = read_shard(shards[0])
    assert first["images"].shape == (7, 32, 32, 3) and first["images"].dtype == np.uint8
    assert first["landmarks"].shape == (7, 68, 2) and first["visible"].dtype == bool
    assert np.array_equal(first["index"], np.arange(7))
    batch = render_batch(3, res=32, seed=3)
    assert np.array_equal(first["images"][:3], to_uint8(batch.images))
    assert np.allclose(first["landmarks"][:3], batch.landmarks.numpy(), atol=1e-4)


def test_deterministic_whatever_the_shard_size_and_workers(reference, tmp_path):
    write_dataset(tmp_path, n=N, res=32, seed=3, shard_size=10, workers=2, progress=False)
    a, b = _all(reference), _all(tmp_path)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_resumes_after_a_kill(reference, tmp_path):
    write_dataset(tmp_path, n=N, res=32, seed=3, shard_size=7, workers=1, progress=False)
    (tmp_path / "shard_00001.npz").unlink()
    (tmp_path / "shard_00002.tmp.npz").write_bytes(b"partial")  # a shard cut off mid-write
    summary = write_dataset(tmp_path, n=N, res=32, seed=3, shard_size=7, workers=1, progress=False)
    assert summary["rendered"] == 7 and summary["resumed"] == N - 7
    assert not list(tmp_path.glob("*.tmp.npz"))
    a, b = _all(reference), _all(tmp_path)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_refuses_other_settings_and_bad_input(reference, tmp_path):
    with pytest.raises(ValueError, match="other settings"):
        write_dataset(reference, n=N, res=32, seed=4, shard_size=7, progress=False)
    with pytest.raises(ValueError, match="--n"):
        write_dataset(tmp_path, n=0)
    with pytest.raises(ValueError, match="pose-dist"):
        write_dataset(tmp_path, n=5, pose_dist="sideways")


def test_cli_command(tmp_path):
    app = typer.Typer()
    app.command("synth-data")(synth_data)
    app.command("other")(lambda: None)
    runner = CliRunner()
    out = tmp_path / "d"
    res = runner.invoke(app, ["synth-data", "--n", "5", "--res", "16", "--seed", "1", "--out", str(out),
                              "--shard-size", "4", "--workers", "1", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["n"] == 5 and summary["shards"] == 2
    bad = runner.invoke(app, ["synth-data", "--n", "5", "--res", "16", "--seed", "2", "--out", str(out)])
    assert bad.exit_code == 2 and "other settings" in bad.output
