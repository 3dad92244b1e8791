"""Every bad input a careless or hostile user tried (issue 17): one line naming the input, exit 2, nothing left behind.

Each row is (command line, the text the one line must hold). The inputs live in one folder made
once per module; a row passes when the command exits with status 2, prints exactly one line on
stderr (`error: ...`) holding the expected text and no traceback, and leaves the folder exactly
as it was (no output, no stray .tmp, no file from a hostile payload).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from genfields.cli import app
from genfields.errors import cpu_count

runner = CliRunner()
HAS_DLIB = importlib.util.find_spec("dlib") is not None


class Payload:
    """A pickle that would create a file if anything ran it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _own_checkpoint(folder: Path, **config_changes) -> Path:
    """A tiny16 genfields checkpoint whose stored config claims `config_changes` (a hostile or broken file)."""
    from safetensors.torch import save_file

    from genfields.stylegan2 import Generator
    from genfields.stylegan2.checkpoints import CONFIG_KEY

    G = Generator.from_arch("tiny16")
    config = {**G.config.to_dict(), **config_changes}
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={CONFIG_KEY: json.dumps(config), "format": "genfields-generator-v1"})
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    Image.new("RGB", (64, 64), (150, 120, 100)).save(root / "face.png")
    Image.new("RGB", (128, 128), (150, 120, 100)).save(root / "wall.png")  # no face, not the generator's size
    Image.new("RGB", (1, 1), (150, 120, 100)).save(root / "one.png")
    Image.new("1", (10000, 10000)).save(root / "big.png")  # 100 MP claimed in the header, tiny on disk
    Image.new("1", (20000, 20000)).save(root / "huge.png")  # past PIL's own decompression-bomb limit
    (root / "afile").write_text("not a folder\n")
    (root / "adir").mkdir()
    (root / "adir.png").mkdir()
    (root / "adir.json").mkdir()
    _own_checkpoint(root / "wide", w_dim=100000)
    _own_checkpoint(root / "filter", resample_filter=["a", "b"])
    _own_checkpoint(root / "depth", mapping_layers="8; rm -rf /")
    torch.save({"g_ema": Payload(root / "PWNED")}, root / "evil.pt")
    (root / "evil.pkl").write_bytes(pickle.dumps(Payload(root / "PWNED")))
    run = root / "gan-run"  # a folder that holds a (finished) run: config and a checkpoint
    run.mkdir()
    from genfields.stylegan2.train import GANTrainConfig

    (run / "config.json").write_text(json.dumps({**GANTrainConfig(arch="tiny16", batch=8).__dict__}))
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "state.json").write_text("{}")
    (root / "dataset").mkdir()
    (root / "dataset" / "dataset.json").write_text("{}")
    perception_run = root / "perception-run"  # a stored config and a checkpoint
    (perception_run / "checkpoint").mkdir(parents=True)
    (perception_run / "checkpoint" / "state.json").write_text("{}")
    (perception_run / "config.json").write_text(json.dumps({"net": "landmarks", "batch": 64, "seed": 0}))
    editor_run = root / "editor-run"
    editor_run.mkdir()
    (editor_run / "config.json").write_text("{}")
    _broken_loaders(root)
    return root


def _broken_loaders(root: Path) -> None:
    """Editor, dataset and perception folders whose files are truncated, empty, of the wrong type or too wide,
    and inputs that are not regular files (issue 35)."""
    from safetensors.torch import save_file

    from genfields.editing.editor import editor_folder

    shipped = editor_folder("synth64")
    config = json.loads((shipped / "config.json").read_text())
    weights = (shipped / "editor.safetensors").read_bytes()
    for name, data in (("ed-trunc", weights[:1000]), ("ed-empty", b""), ("ed-int", None), ("ed-wide", None)):
        (root / name).mkdir()
        model = {**config["model"], "hidden": [1e7, 1e7]} if name == "ed-wide" else config["model"]
        (root / name / "config.json").write_text(json.dumps({**config, "model": model}))
        if data is None:
            save_file({"net.0.weight": torch.zeros(2, dtype=torch.int64)}, str(root / name / "editor.safetensors"))
        else:
            (root / name / "editor.safetensors").write_bytes(data)
    (root / "ds-trunc").mkdir()
    (root / "ds-trunc" / "dataset.json").write_text(json.dumps({"format": "genfields-editing-dataset-v1",
                                                                "config": {"preset": "tiny16"}}))
    (root / "ds-trunc" / "data.safetensors").write_bytes(b"\x10\x00\x00")
    (root / "ds-list").mkdir()
    (root / "ds-list" / "dataset.json").write_text("[]")
    (root / "net-wide").mkdir()
    (root / "net-wide" / "config.json").write_text(json.dumps({"network": {"kind": "attributes", "width": 10 ** 9}}))
    np.save(root / "nan_z.npy", np.full(512, np.nan, np.float32))
    os.mkfifo(root / "fifo.pt")
    os.mkfifo(root / "fifo.png")
    os.symlink(root / "loop", root / "loop")


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_size for p in sorted(root.rglob("*"))}


ROWS = [
    # out-of-range numbers, named with their range
    (["evaluate", "--preset", "tiny16", "--batch", "0"], "--batch must be in [1, 4096], got 0"),
    (["evaluate", "--preset", "tiny16", "--pairs", "1"], "--pairs must be in [2, 10000000], got 1"),
    (["edit", "--attribute", "{in}/face.png", "--identity-seed", "-1"], "--identity-seed must be in [0, 4294967295]"),
    (["fields", "--arch", "tiny16", "--measure", "--share", "5"], "--share must be in (0, 1], got 5"),
    (["fields", "--arch", "tiny16", "--measure", "--samples", "0"], "--samples must be in [1, 100000], got 0"),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/new", "--batch", "0"], "--batch must be in [1, 4096], got 0"),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/new", "--kimg", "-1"], "--kimg must be in (0, 1000000], got -1"),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/new", "--lr", "-1"], "--lr must be > 0, got -1"),
    (["gan-quality", "--model", "random:tiny16", "--n", "1"], "--n must be in [2, 10000000], got 1"),
    (["make-dataset", "--preset", "tiny16", "--outdir", "{in}/ds", "--identities", "0"],
     "--identities must be in [1, 10000000], got 0"),
    (["synth-data", "--outdir", "{in}/sd", "--n", "4", "--workers", "-1"], "--workers must be in [0, 1024], got -1"),
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/gen", "--trunc", "nan"],
     "--trunc must be a finite number, got nan"),
    (["train-editor", "--preset", "tiny16", "--outdir", "{in}/ed", "--lambda-id", "inf"],
     "--lambda-id must be >= 0, got inf"),
    (["fields", "--arch", "tiny16", "--samples", "x"], "Invalid value for '--samples'"),
    # seeds as NVIDIA's generate.py reads them
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/gen", "--seeds", "5-2"],
     "--seeds: range '5-2' is empty (start after end); write 2-5"),
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/gen", "--seeds", "1,1"],
     "--seeds: seed 1 is given more than once"),
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/gen", "--seeds", "a-b"], "cannot read seeds"),
    # options that exclude each other
    (["fields", "--arch", "tiny16", "--json", "--csv"], "--json and --csv cannot be used together"),
    # unwritable outputs, checked before any work
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/afile"], "--outdir {in}/afile: exists and is not a folder"),
    (["demo", "--outdir", "{in}/afile"], "exists and is not a folder"),
    (["synth-data", "--outdir", "{in}/afile", "--n", "4"], "--outdir {in}/afile: exists and is not a folder"),
    (["synth-data", "--out", "{in}/afile/x", "--n", "4"], "({in}/afile is a file, not a folder)"),
    (["make-dataset", "--preset", "tiny16", "--out", "{in}/afile"], "exists and is not a folder"),
    (["train-editor", "--preset", "tiny16", "--outdir", "{in}/afile"], "exists and is not a folder"),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/afile/run"], "cannot be created"),
    (["align", "{in}/face.png", "--out", "{in}/afile/x.png"], "cannot be created"),
    (["align", "{in}/face.png", "--out", "{in}/adir.png"], "--out {in}/adir.png: is a folder"),
    (["detect", "{in}/face.png", "--out", "{in}/adir.png"], "--out {in}/adir.png: is a folder"),
    (["detect", "{in}/face.png", "--out", "{in}/adir"], "expected a file name ending in .png or .jpg or .jpeg"),
    (["fields", "--arch", "tiny16", "--plot", "{in}/adir.png"], "--plot {in}/adir.png: is a folder"),
    (["evaluate", "--preset", "tiny16", "--out", "{in}/adir.json"], "--out {in}/adir.json: is a folder"),
    (["evaluate", "--preset", "tiny16", "--out", "{in}/afile/r.json"], "cannot be created"),
    (["edit", "--attribute", "{in}/face.png", "--identity-seed", "1", "--out", "{in}/x.gif"],
     "expected a file name ending in .png or .jpg or .jpeg"),
    # run folders that hold finished work
    (["train-gan", "--arch", "tiny16", "--batch", "8", "--outdir", "{in}/gan-run"],
     "holds a run (config.json, checkpoint); continue it with --resume, or replace it with --overwrite"),
    (["train-gan", "--resume", "--outdir", "{in}/gan-run", "--batch", "4"],
     "--resume: --batch 4 differs from the run's batch 8"),
    (["train-gan", "--resume", "--outdir", "{in}/gan-run", "--lr", "0.1"], "--change lr_g=0.1"),
    (["train-gan", "--resume", "--outdir", "{in}/gan-run", "--checkpoint-minutes", "5"],
     "--checkpoint-minutes 5.0 differs from the run's checkpoint_minutes 10.0"),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/new", "--checkpoint-minutes", "0"],
     "--checkpoint-minutes must be in (0, 527040], got 0"),
    (["train-gan", "--resume", "--overwrite", "--outdir", "{in}/gan-run"], "contradict each other"),
    (["train-editor", "--preset", "tiny16", "--outdir", "{in}/editor-run"],
     "holds a run that stopped before its first checkpoint (config.json): nothing to resume; replace it with "
     "--overwrite"),
    (["make-dataset", "--preset", "tiny16", "--outdir", "{in}/dataset"], "holds a dataset (dataset.json)"),
    (["train-perception", "--net", "lnd", "--outdir", "{in}/perception-run", "--resume", "--batch", "32"],
     "--resume: --batch 32 differs from the run's batch 64"),
    (["train-perception", "--net", "lnd", "--outdir", "{in}/editor-run", "--steps", "1"],
     "holds a run that stopped before its first checkpoint (config.json)"),
    (["train-perception", "--net", "lnd", "--outdir", "{in}/p", "--batch", "1"], "--batch must be in [2, 4096], got 1"),
    # hostile or broken checkpoints: refused before allocating or running anything
    (["info", "--model", "{in}/wide"], "w_dim must be in 1..8192, got 100000"),
    (["info", "--model", "{in}/filter"], "resample_filter must be 1..16 numbers"),
    (["info", "--model", "{in}/depth"], "mapping_layers must be an integer"),
    (["info", "--model", "{in}/evil.pt"], "refused by PyTorch's weights-only loader (Trying to load unsupported GLOBAL"),
    (["info", "--model", "{in}/evil.pkl"], "posix.system"),
    # photos
    (["detect", "{in}/big.png"], "10000x10000 pixels is above the 64-megapixel limit"),
    (["edit", "--attribute", "{in}/big.png", "--identity-seed", "1", "--out", "{in}/e.png"], "64-megapixel limit"),
    (["detect", "{in}/huge.png"], "huge.png: above the 64-megapixel limit"),
    (["align", "{in}/huge.png", "--out", "{in}/h.png"], "above the 64-megapixel limit"),
    (["detect", "{in}/nosuch.png"], "no such image"),
    # issue 35: upper bounds at parse time (nothing allocated, nothing created)
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/new", "--batch", "1" + "0" * 30],
     "--batch must be in [1, 4096], got 1" + "0" * 30),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/new", "--kimg", "1e30"], "--kimg must be in (0, 1000000]"),
    (["train-editor", "--preset", "tiny16", "--outdir", "{in}/new", "--steps", "1" + "0" * 30],
     "--steps must be in [1, 10000000]"),
    (["evaluate", "--preset", "tiny16", "--pairs", "1" + "0" * 30], "--pairs must be in [2, 10000000]"),
    (["make-dataset", "--preset", "tiny16", "--outdir", "{in}/ds", "--identities", "1" + "0" * 30],
     "--identities must be in [1, 10000000]"),
    (["make-dataset", "--preset", "tiny16", "--outdir", "{in}/ds", "--threads", "1000"],
     f"--threads must be in [1, {cpu_count()}], got 1000"),
    (["train-perception", "--net", "lnd", "--outdir", "{in}/p", "--threads", "1000"], "--threads must be in [1, "),
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/gen", "--seeds", "0-4294967295"],
     "--seeds: '0-4294967295' is 4294967296 seeds, more than the 1000000 one command takes"),
    (["generate", "--model", "random:tiny16", "--outdir", "{in}/gen", "--seeds", "0-999999"],
     "grid.png of 1000000 images at 16x16 would hold 3.1 GB in memory; pass --no-grid, or fewer seeds"),
    (["synth-data", "--outdir", "{in}/sd", "--n", "1" + "0" * 20], "--n must be in [1, 10000000]"),
    (["synth-data", "--outdir", "{in}/sd", "--n", "1000", "--res", "4096"],
     "a shard of 1000 faces at 4096x4096 would hold 50.3 GB in memory; lower --shard-size"),
    (["fields", "--arch", "tiny16", "--measure", "--channels", "1" + "0" * 20], "--channels must be in [1, 16384]"),
    # issue 35: output names and paths
    (["detect", "{in}/face.png", "--out", "{in}/" + "x" * 240 + ".png"], "is too long (at most 231"),
    (["train-gan", "--arch", "tiny16", "--outdir", "{in}/loop"], "--outdir {in}/loop: a symbolic link that leads "
     "nowhere"),
    # issue 35: every loader names its file; non-regular files refused before opening
    (["info", "--model", "{in}/fifo.pt"], "{in}/fifo.pt: not a regular file (a FIFO, device or socket)"),
    (["detect", "{in}/fifo.png"], "{in}/fifo.png: not a regular file"),
    (["edit", "--editor", "{in}/ed-trunc", "--attribute", "{in}/face.png", "--identity-seed", "1", "--out",
      "{in}/e.png"], "{in}/ed-trunc/editor.safetensors: truncated or corrupt safetensors file"),
    (["edit", "--editor", "{in}/ed-empty", "--attribute", "{in}/face.png", "--identity-seed", "1", "--out",
      "{in}/e.png"], "{in}/ed-empty/editor.safetensors: truncated or corrupt safetensors file"),
    (["edit", "--editor", "{in}/ed-int", "--attribute", "{in}/face.png", "--identity-seed", "1", "--out",
      "{in}/e.png"], "{in}/ed-int/editor.safetensors: tensor net.0.weight is torch.int64, not torch.float32"),
    (["edit", "--editor", "{in}/ed-wide", "--attribute", "{in}/face.png", "--identity-seed", "1", "--out",
      "{in}/e.png"], "{in}/ed-wide/config.json: not an editor configuration (hidden width must be in [1, 16384], "
     "got 10000000)"),
    (["train-editor", "--preset", "tiny16", "--dataset", "{in}/ds-trunc", "--outdir", "{in}/ed-out"],
     "{in}/ds-trunc/data.safetensors: truncated or corrupt dataset (Error while deserializing header"),
    (["train-editor", "--preset", "tiny16", "--dataset", "{in}/ds-list", "--outdir", "{in}/ed-out"],
     "{in}/ds-list/dataset.json: unknown dataset format 'list'"),
    (["fd-scale", "--net", "{in}/net-wide"], "{in}/net-wide/config.json: cannot load the perception network's "
     "config (width must be in [1, 1024], got 1000000000)"),
    (["download", "nope", "--list"], "unknown component 'nope'"),
    (["edit", "--identity-z", "{in}/nan_z.npy", "--attribute", "{in}/face.png", "--out", "{in}/e.png"],
     "{in}/nan_z.npy: z holds 512 NaN or infinite values; all 512 must be finite"),
]
DLIB_ROWS = [
    (["detect", "{in}/one.png", "--backend", "dlib"], "a 1x1 image is too small to hold a face"),
    (["align", "{in}/one.png", "--out", "{in}/o.png"], "a 1x1 image is too small to hold a face"),
    (["edit", "--attribute", "{in}/one.png", "--identity-seed", "1", "--out", "{in}/e.png"],
     "one.png: a 1x1 image is too small to hold a face"),
    (["edit", "--attribute", "{in}/wall.png", "--identity-seed", "1", "--out", "{in}/e.png"],
     "wall.png: no face found in the image"),
]


def _check_refused(inputs: Path, args: list[str], message: str) -> None:
    before = _files(inputs)
    result = runner.invoke(app, [a.replace("{in}", str(inputs)) for a in args])
    message = message.replace("{in}", str(inputs))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0] and "Traceback" not in result.output, lines[0]
    assert _files(inputs) == before  # no output, no stray temporary file, no payload's file


@pytest.mark.parametrize("args, message", ROWS, ids=[" ".join(a[:3]) + f" [{i}]" for i, (a, _) in enumerate(ROWS)])
def test_bad_input_is_one_line_and_exit_2(inputs, args, message):
    _check_refused(inputs, args, message)


@pytest.mark.skipif(not HAS_DLIB, reason="dlib is not installed (the [real] extra)")
@pytest.mark.parametrize("args, message", DLIB_ROWS)
def test_dlib_bad_photo_is_one_line_and_exit_2(inputs, args, message):
    _check_refused(inputs, args, message)


def test_debug_shows_the_traceback(inputs):
    result = runner.invoke(app, ["--debug", "fields", "--arch", "paper999"])
    assert result.exit_code != 0 and type(result.exception).__name__ == "ConfigError"
    result = runner.invoke(app, ["fields", "--arch", "paper999", "--debug"], env={"GENFIELDS_DEBUG": "0"})
    assert type(result.exception).__name__ == "ConfigError"  # --debug anywhere on the line
    result = runner.invoke(app, ["fields", "--arch", "paper999"], env={"GENFIELDS_DEBUG": "1"})
    assert type(result.exception).__name__ == "ConfigError"
    result = runner.invoke(app, ["fields", "--arch", "paper999"], env={"GENFIELDS_DEBUG": "0"})
    assert result.exit_code == 2 and type(result.exception).__name__ == "CommandFailed"


def test_unexpected_exception_is_one_line_with_the_debug_hint(inputs, monkeypatch):
    import genfields.stylegan2.field_measurement

    def broken(*args, **kwargs):
        raise RuntimeError("something deep broke\nsecond line")

    monkeypatch.setattr(genfields.stylegan2.field_measurement, "field_table", broken)
    result = runner.invoke(app, ["fields", "--arch", "tiny16"])
    assert result.exit_code == 2
    assert result.stderr == "error: RuntimeError: something deep broke second line (rerun with --debug for the traceback)\n"


def test_version():
    from genfields import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"genfields {__version__}"


def test_seeds_and_counts(tmp_path):
    from genfields.errors import parse_seeds

    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7] and parse_seeds("4294967295") == [4294967295]
    result = runner.invoke(app, ["generate", "--model", "random:tiny16", "--seeds", "3", "--outdir", str(tmp_path)])
    assert result.exit_code == 0 and "wrote 1 image and grid.png" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "seed0003.npz", "seed0003.png"]


def test_tables_are_not_cut_when_piped():
    result = runner.invoke(app, ["fields", "--arch", "paper256"])
    assert result.exit_code == 0
    assert "conv12" in result.stdout and "…" not in result.stdout
    assert any(len(line) > 80 for line in result.stdout.splitlines())  # the legend is one line, not wrapped at 80


def test_edit_writes_jpeg_under_a_jpg_name(tmp_path):
    from genfields.imageio import save_image
    from genfields.synthface import render_batch

    save_image(render_batch(1, res=64, seed=3).images, tmp_path / "attr.png")
    result = runner.invoke(app, ["edit", "--attribute", str(tmp_path / "attr.png"), "--identity-seed", "1",
                                 "--out", str(tmp_path / "e.jpg"), "--no-align"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes under a .jpg name
    assert (tmp_path / "e_panel.png").read_bytes()[:4] == b"\x89PNG"
