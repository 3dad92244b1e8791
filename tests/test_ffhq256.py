"""The `ffhq256` preset: one clear offline error naming every missing file, and the whole editing
pipeline end to end on random-weight files in the official formats (small sizes)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import require_nvidia_fixture
from genfields.cli import app
from genfields.downloads import REGISTRY
from genfields.editing import presets, trainer
from official_files import write_all

runner = CliRunner()
NEEDED = ("stylegan2-ffhq256", "inception-fid", "facenet-vggface2", "3ddfa-mobilenet", "3ddfa-param-mean-std",
          "3ddfa-bfm")


def _error(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0
    return str(result.exception) + result.output


def ok(*args: str):
    """Run a command that must succeed; its output and exception are the failure message."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_offline_commands_name_every_missing_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("GENFIELDS_HOME", str(home))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    messages = {
        "make-dataset": _error("make-dataset", "--preset", "ffhq256", "--out", str(tmp_path / "ds")),
        "train-editor": _error("train-editor", "--preset", "ffhq256", "--dataset", str(tmp_path / "ds")),
        "evaluate": _error("evaluate", "--preset", "ffhq256", "--editor", str(tmp_path / "run")),
        "edit": _error("edit", "--preset", "ffhq256", "--editor", str(tmp_path / "run"),
                       "--attribute", str(tmp_path / "a.png"), "--identity-seed", "1"),
        "reproduce": _error("reproduce", "--preset", "ffhq256", "--out", str(tmp_path / "report")),
        "reproduce --plan": _error("reproduce", "--preset", "ffhq256", "--plan"),
    }
    for command, message in messages.items():
        for name in NEEDED:
            assert REGISTRY[name].filename in message and str(home / REGISTRY[name].filename) in message, command
        assert "genfields download " + " ".join(NEEDED) in message, command
    assert "FFHQ photos" in messages["evaluate"] and str(home / "ffhq256") in messages["evaluate"]
    assert "FFHQ photos" in messages["reproduce"] and not (tmp_path / "report").exists()
    assert "FFHQ photos" not in messages["make-dataset"]


@pytest.fixture
def random_home(tmp_path, monkeypatch):
    """GENFIELDS_HOME with every ffhq256 file (random weights; the generator: the tiny NVIDIA-format pickle)."""
    home = tmp_path / "home"
    write_all(home, require_nvidia_fixture() / "nvidia_tiny64.pkl")
    rng = np.random.default_rng(0)
    (home / "ffhq256").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(home / "ffhq256" / f"{i:05d}.png")
    monkeypatch.setenv("GENFIELDS_HOME", str(home))
    small = dataclasses.replace(presets.PRESETS["ffhq256"], hidden=(32, 32))  # the paper's 4096 x 3 is too big here
    monkeypatch.setitem(presets.PRESETS, "ffhq256", small)
    monkeypatch.setattr(trainer, "SAMPLE_COUNT", 1)  # one sample edit instead of 4: InceptionV3 at 299 px is slow on a CPU
    return home


def test_pipeline_runs_end_to_end_on_random_official_files(random_home, tmp_path):
    ok("make-dataset", "--preset", "ffhq256", "--out", str(tmp_path / "ds"), "--identities", "4", "--attributes", "2",
       "--threads", "1")
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["config"]["perception"] == "ffhq256"
    ok("train-editor", "--preset", "ffhq256", "--dataset", str(tmp_path / "ds"), "--outdir", str(tmp_path / "run"),
       "--steps", "2", "--batch", "2", "--sample-every", "0", "--threads", "1")
    final = tmp_path / "run" / "final"
    assert json.loads((final / "config.json").read_text())["generator"] == "stylegan2-ffhq256"
    result = ok("evaluate", "--preset", "ffhq256", "--editor", str(final), "--pairs", "2", "--batch", "2", "--json")
    scores = json.loads(result.stdout)
    assert {"method", "unedited"} <= set(scores) and np.isfinite(scores["method"]["fd"])
    assert scores["judged_by"].startswith("loss networks")  # no judges for the real-world preset yet
    result = ok("edit", "--preset", "ffhq256", "--editor", str(final), "--attribute",
                str(random_home / "ffhq256" / "00000.png"), "--identity-seed", "3", "--out", str(tmp_path / "e.png"),
                "--json", "--no-align")  # random pixels stand in for an aligned photo: no face to find
    assert -1.001 <= json.loads(result.stdout)["method"]["identity"] <= 1.001
    assert Image.open(tmp_path / "e.png").size == (64, 64)


@pytest.mark.slow
def test_reproduce_runs_end_to_end_on_random_official_files(random_home, tmp_path, monkeypatch):
    """`reproduce --preset ffhq256 --quick` at the test sizes: trained paper and W-space editors, the rest
    fine-tuned, every table and figure written (the real sizes need a GPU; the code path is the same)."""
    from genfields.evaluation import reproduce as reproduce_module

    rng = np.random.default_rng(1)
    for i in range(4, 24):  # the report's figures read up to 8 attribute photos from several starting points
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(random_home / "ffhq256" / f"{i:05d}.png")
    smallest = dataclasses.replace(reproduce_module.TEST, pairs=2, tests=2, sparsity_tests=4, reuse_tests=2, top_k=5,
                                   face_images=4, steps=1, dataset=(4, 2), batch=4, grid=(1, 2), panels=1)
    monkeypatch.setattr(reproduce_module, "report_sizes", lambda preset, quick, **kw: smallest)

    ok("make-dataset", "--preset", "ffhq256", "--out", str(tmp_path / "ds"), "--identities", "4", "--attributes", "2",
       "--threads", "1")
    for config in ("paper", "wspace"):
        ok("train-editor", "--preset", "ffhq256", "--config", config, "--dataset", str(tmp_path / "ds"),
           "--outdir", str(tmp_path / "editors" / config), "--steps", "1", "--batch", "2", "--sample-every", "0")
    ok("reproduce", "--preset", "ffhq256", "--quick", "--editors", str(tmp_path / "editors"),
       "--out", str(tmp_path / "report"), "--threads", "1")
    run = json.loads((tmp_path / "report" / "run.json").read_text())
    assert run["editors"]["paper"].startswith("run ") and run["editors"]["gf5"].startswith("fine-tuned")
    t3 = json.loads((tmp_path / "report" / "table3.json").read_text())
    assert [r["convs"] for r in t3["ranges"]][:3] != [None] * 3 and len(t3["rows"]) == 5
    assert (tmp_path / "report" / "figure8_reuse.png").is_file() and (tmp_path / "report" / "index.html").is_file()
