"""Command-line smoke tests: each command runs, writes what it says, and reports errors in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from genfields.cli import app
from genfields.errors import parse_seeds

runner = CliRunner()


def test_fields_json_paper256():
    result = runner.invoke(app, ["fields", "--arch", "paper256", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == [f"conv{k}" for k in range(13)]
    assert sum(r["channels"] for r in rows) == 4928
    required = {"name", "conv", "s_index", "in_resolution", "resolution", "stride", "kernel", "channels", "offset", "gf"}
    assert all(required <= set(r) for r in rows)
    assert rows[2]["gf"] == 251 and rows[0]["gf_paper"] == 506


def test_fields_measure_csv_and_plot(tmp_path):
    plot = tmp_path / "fields.png"
    result = runner.invoke(app, ["fields", "--arch", "tiny16", "--measure", "--csv", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split(",")
    assert {"gf_exact", "gf_exact_clipped", "gf_effective"} <= set(header)
    assert plot.stat().st_size > 1000


def test_generate_and_info(tmp_path):
    out = tmp_path / "gen"
    result = runner.invoke(app, ["generate", "--model", "random:tiny16", "--seeds", "0-2", "--outdir", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png"]
    data = np.load(out / "seed0001.npz")
    assert np.allclose(data["z"], np.random.RandomState(1).randn(1, 32))
    assert data["S"].shape[1] == sum(layer["channels"] for layer in json.loads(
        runner.invoke(app, ["info", "--model", "random:tiny16", "--json"]).stdout)["layers"])


@pytest.mark.parametrize("args,message", [
    (["generate", "--model", "/no/such.pkl"], "no such model or file"),
    (["fields", "--arch", "paper999"], "unknown architecture"),
    (["generate", "--model", "random:tiny16", "--seeds", "a-b"], "cannot read seeds"),
])
def test_errors_are_one_line_without_traceback(args, message):
    proc = subprocess.run([sys.executable, "-m", "genfields", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
