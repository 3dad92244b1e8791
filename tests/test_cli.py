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


def _entry_point(argv: list[str], before: str = "") -> subprocess.CompletedProcess:
    """`genfields.cli.main()` (the console script) in a fresh interpreter, after `before`."""
    probe = (f"import atexit, sys, threading, time\nimport genfields.cli\n{before}\n"
             "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
             "class Kept:\n    def __del__(self):\n        print('torn down', file=sys.stderr)\n"
             "kept = Kept()  # freed by the interpreter's teardown, if there is one\n"
             f"sys.argv = ['genfields', *{argv!r}]\ngenfields.cli.main()\nprint('main returned')\n")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)


def test_the_entry_point_exits_with_the_status_and_all_output_after_the_atexit_handlers():
    done = _entry_point(["fields", "--arch", "synth64", "--json"])
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in json.loads(done.stdout)] == [f"conv{i}" for i in range(9)]  # all of it, flushed
    assert "atexit ran" in done.stderr and "main returned" not in done.stdout
    assert "torn down" not in done.stderr  # no teardown
    failed = _entry_point(["fields", "--arch", "paper999"])
    assert failed.returncode == 2 and "unknown architecture" in failed.stderr and "atexit ran" in failed.stderr


def test_the_entry_point_exits_normally_while_another_thread_works():
    worker = "threading.Thread(target=lambda: (time.sleep(0.5), print('worker finished', flush=True))).start()"
    done = _entry_point(["fields", "--arch", "synth64", "--json"], before=worker)
    assert done.returncode == 0 and "worker finished" in done.stdout and "atexit ran" in done.stderr
    assert "torn down" in done.stderr  # the ordinary exit
