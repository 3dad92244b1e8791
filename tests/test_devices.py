"""`--device` and `--amp` of the editing pipeline, on the CPU (the only device here).

- device names resolve, and an unavailable device (cuda without a GPU) is a one-line error on every command;
- `--device cpu` gives bit-identical files and numbers to the default;
- `--amp` (bfloat16 autocast on the CPU) trains with finite losses and evaluates close to float32; the
  float16 path (CUDA/MPS) with its GradScaler runs here under a float16 CPU autocast;
- a spy emulating a second device on the CPU checks that every tensor an editor step touches was
  moved to (or made on) the editor's device.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary
from typer.testing import CliRunner

from genfields.cli import app
from genfields.devices import resolve_device, to_float32
from genfields.editing import GeneratedSet, get_preset, load_editor
from genfields.editing.dataset import TrainBatch
from genfields.editing.evaluate import evaluate_editor
from genfields.editing.trainer import EditorTrainer
from genfields.errors import ConfigError
from genfields.perception import LandmarksPose, load_perception
from genfields.stylegan2 import load_generator
from genfields.training import Distributed, RunFolder

runner = CliRunner()
TINY = get_preset("tiny16")
NO_CUDA = not torch.cuda.is_available()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """One tiny set and a 10-step run (one log line) made by default, the same with `--device cpu`, and both with `--amp`."""
    root = tmp_path_factory.mktemp("devices")
    for name, extra in (("default", ()), ("cpu", ("--device", "cpu")), ("amp", ("--amp",))):
        invoke("make-dataset", "--preset", "tiny16", "--out", str(root / f"ds-{name}"), "--identities", "8",
               "--attributes", "4", *extra)
        invoke("train-editor", "--preset", "tiny16", "--config", "paper", "--dataset", str(root / f"ds-{name}"),
               "--outdir", str(root / f"run-{name}"), "--steps", "10", "--sample-every", "0", *extra)
    return root


def evaluate_json(editor: Path, *extra: str) -> dict:
    return json.loads(invoke("evaluate", "--preset", "tiny16", "--editor", str(editor), "--pairs", "4", "--batch",
                             "4", "--json", *extra).stdout)


# --- device names ------------------------------------------------------------------------------------
def test_device_names_resolve_or_fail_in_one_clear_line():
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(None)
    for bad, message in (("tpu0", "unknown device"), ("meta", "unsupported device")):
        with pytest.raises(ConfigError, match=message):
            resolve_device(bad)
    if NO_CUDA:
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ConfigError, match=r"requested but torch.cuda.is_available\(\) is False"):
                resolve_device(name)
    if not torch.backends.mps.is_available():
        with pytest.raises(ConfigError, match="torch.backends.mps.is_available"):
            resolve_device("mps")


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [
    ["make-dataset", "--preset", "tiny16", "--out", "{tmp}/ds"],
    ["train-editor", "--preset", "tiny16", "--dataset", "{tmp}/ds", "--outdir", "{tmp}/run"],
    ["edit", "--model", "random:tiny16:1", "--identity-seed", "1", "--attribute", "{tmp}/a.png"],
    ["evaluate", "--preset", "tiny16", "--pairs", "4"],
    ["reproduce", "--preset", "tiny16", "--out", "{tmp}/report"],
])
def test_unavailable_device_is_a_config_error_before_any_work(command, tmp_path):
    args = [a.format(tmp=tmp_path) for a in command] + ["--device", "cuda"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and isinstance(result.exception.error, ConfigError), result.output
    assert "cuda requested but torch.cuda.is_available() is False" in str(result.exception)
    assert "\n" not in str(result.exception) and not any(tmp_path.iterdir())


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_unavailable_device_exits_with_one_line_on_stderr(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genfields", "evaluate", "--preset", "tiny16", "--device", "cuda"],
                          check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: cuda requested but torch.cuda.is_available() is False")


# --- --device cpu is the default -----------------------------------------------------------------------
def test_device_cpu_is_bit_identical_to_the_default(root):
    for path in ("ds-{}/data.safetensors", "run-{}/checkpoint/tensors.safetensors", "run-{}/final/editor.safetensors"):
        assert (root / path.format("cpu")).read_bytes() == (root / path.format("default")).read_bytes(), path
    losses = [[json.loads(x)["loss"] for x in (root / f"run-{n}" / "metrics.jsonl").read_text().splitlines()]
              for n in ("default", "cpu")]
    assert losses[0] == losses[1]
    editor = root / "run-default" / "final"
    assert evaluate_json(editor, "--device", "cpu") == evaluate_json(editor)


# --- mixed precision -----------------------------------------------------------------------------------
def test_amp_trains_with_finite_losses_and_evaluates_close_to_float32(root):
    assert json.loads((root / "ds-amp" / "dataset.json").read_text())["config"]["amp"] is True
    assert json.loads((root / "run-amp" / "config.json").read_text())["amp"] is True
    lines = [json.loads(x) for x in (root / "run-amp" / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(math.isfinite(v) for x in lines for v in x.values() if isinstance(v, float))
    assert all(v.dtype == torch.float32 for v in load_editor(root / "run-amp" / "final").network.state_dict().values())
    editor = root / "run-default" / "final"
    fp32, bf16 = evaluate_json(editor), evaluate_json(editor, "--amp")
    assert bf16 != fp32  # autocast really ran
    for side in ("method", "unedited"):
        a, b = fp32[side], bf16[side]
        assert b["identity"] == pytest.approx(a["identity"], abs=0.02)
        assert b["expression"] == pytest.approx(a["expression"], abs=0.005)
        assert b["pose"] == pytest.approx(a["pose"], rel=0.05, abs=1.0)
        assert b["fd"] == pytest.approx(a["fd"], rel=0.05)


def test_float16_amp_steps_through_a_grad_scaler_that_resumes(root, tmp_path, monkeypatch):
    """The CUDA/MPS path (float16 + GradScaler), run under a float16 CPU autocast."""
    import genfields.devices
    import genfields.editing.trainer

    def half(device: torch.device) -> torch.dtype:
        return torch.float16

    monkeypatch.setattr(genfields.devices, "amp_dtype", half)
    monkeypatch.setattr(genfields.editing.trainer, "amp_dtype", half)
    cfg = dataclasses.replace(TINY.train_config("paper", dataset=str(root / "ds-default"), sample_every=0),
                              steps=2, amp=True)
    data, G, nets = GeneratedSet(cfg.dataset), load_generator(TINY.generator), load_perception("synth")

    def trainer() -> EditorTrainer:
        return EditorTrainer(cfg, RunFolder(tmp_path), Distributed(), G, nets, data, "cpu")

    first = trainer()
    assert first.scaler.is_enabled()
    losses = [first.train_step()["loss"] for _ in range(2)]  # float16 CPU autocast is slow: two steps
    assert all(math.isfinite(x) for x in losses)
    tensors, state = first.state()
    assert state["scaler"]["scale"] == first.scaler.get_scale() > 0
    again = trainer()
    again.load_state(tensors, json.loads(json.dumps(state)))  # state.json round trip
    assert again.step == 2 and again.scaler.state_dict() == first.scaler.state_dict()


def test_to_float32_keeps_named_tuples():
    found = to_float32(LandmarksPose(torch.zeros(1, 68, 2, dtype=torch.bfloat16), torch.zeros(1, 3)))
    assert isinstance(found, LandmarksPose) and found.landmarks.dtype == torch.float32


# --- every tensor on the editor's device -------------------------------------------------------------
class VirtualDevice(TorchFunctionMode):
    """Emulates a second device on the CPU. A tensor is "on the device" when `.to(device)` moved it, a factory
    made it with `device=device`, or an op computed it from one; `.cpu()` brings it back. An op that mixes a
    tensor on the device with another CPU tensor (0-dim ones excepted, as on CUDA) is recorded: a GPU refuses it.
    """

    CROSS_DEVICE = (torch.Tensor.copy_, torch.Tensor.to)

    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.device = torch.device(device)
        self.on = WeakTensorKeyDictionary()
        self.violations: list[str] = []
        self.paused = False

    def outside(self, fn):
        """`fn` run unobserved: host-side data (renders) whose own `device=x.device` the spy cannot tell apart."""
        def run(*args, **kwargs):
            self.paused = True
            try:
                return fn(*args, **kwargs)
            finally:
                self.paused = False
        return run

    def _target(self, func, args, kwargs) -> torch.device | None:
        if kwargs.get("device") is not None:
            return torch.device(kwargs["device"])
        if func is torch.Tensor.to:
            for a in args[1:]:
                if isinstance(a, (str, torch.device)):
                    return torch.device(a)
                if torch.is_tensor(a):
                    return self.device if a in self.on else torch.device("cpu:1")  # "like a" on the host
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if torch.is_tensor(t)]
        on = [t for t in tensors if t in self.on]
        off = [t for t in tensors if t not in self.on and t.dim() > 0]
        if on and off and func not in self.CROSS_DEVICE:
            self.violations.append(f"{getattr(func, '__name__', func)}: {[tuple(t.shape) for t in off]} not moved")
        out = func(*args, **kwargs)
        target = self._target(func, args, kwargs)
        mark = func is not torch.Tensor.cpu and (target == self.device if target is not None else bool(on))
        if mark:
            for t in tree_flatten(out)[0]:
                if torch.is_tensor(t):
                    self.on[t] = True
        return out


@pytest.mark.parametrize("config", ["paper", "wspace"])
def test_every_tensor_of_a_step_an_edit_and_an_evaluation_is_on_the_editors_device(root, config, monkeypatch):
    import genfields.editing.evaluate

    cfg = dataclasses.replace(TINY.train_config(config, dataset=str(root / "ds-default"), sample_every=0), steps=4)
    data = GeneratedSet(cfg.dataset)
    G, nets = load_generator(TINY.generator), load_perception("synth")
    with VirtualDevice("cpu") as spy:
        monkeypatch.setattr(genfields.editing.evaluate, "attribute_images",
                            spy.outside(genfields.editing.evaluate.attribute_images))
        trainer = EditorTrainer(cfg, RunFolder(root / f"spy-{config}"), Distributed(), G, nets, data, "cpu")
        for _ in range(4):  # three cross steps and a reconstruction step
            trainer.train_step()
        result = trainer.editor.edit(torch.randn(2, G.z_dim), torch.rand(1, 3, 16, 16) * 2 - 1)
        assert all(p in spy.on for p in [*trainer.editor.parameters(), *trainer.editor.buffers()])
        assert result.image in spy.on and result.output.pose in spy.on
        if config == "paper":
            evaluate_editor(load_editor(root / "run-default" / "final", device="cpu"), TINY, pairs=4, batch=4)
    assert spy.violations == [], sorted(set(spy.violations))


def test_the_device_spy_catches_a_batch_that_was_not_moved(root, monkeypatch):
    monkeypatch.setattr(TrainBatch, "to", lambda self, device: self)
    cfg = TINY.train_config("paper", dataset=str(root / "ds-default"), sample_every=0)
    data, G, nets = GeneratedSet(cfg.dataset), load_generator(TINY.generator), load_perception("synth")
    with VirtualDevice("cpu") as spy:
        EditorTrainer(cfg, RunFolder(root / "spy-bad"), Distributed(), G, nets, data, "cpu").train_step()
    assert any(v.startswith("linear: [(6, ") for v in spy.violations), spy.violations


def test_the_cli_launcher_keeps_freed_memory_unless_told_not_to():
    """The launcher (genfields.cli.launch, which the entry point runs) sets glibc's allocator once;
    GENFIELDS_KEEP_FREED_MEMORY=0 leaves it alone.

    Checked in fresh interpreters, with mallopt replaced by a recorder."""
    probe = ("import ctypes, sys\n"
             "calls = []\n"
             "class LibC:\n"
             "    def mallopt(self, param, value):\n"
             "        calls.append((param, value)); return 1\n"
             "ctypes.CDLL = lambda *a, **k: LibC()\n"
             "import genfields.cli\n"
             "assert genfields.cli.launch(['--version']) == 0\n"
             "print(sorted(calls))\n"
             "from genfields.devices import freed_memory_kept\n"
             "print(freed_memory_kept())\n")
    import os

    def run(env: dict[str, str]) -> str:
        full = {k: v for k, v in os.environ.items() if k != "GENFIELDS_KEEP_FREED_MEMORY"} | env
        return tuple(subprocess.run([sys.executable, "-c", probe], env=full, capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-2:])

    # no mmap, no trim, top pad; and the process knows it (the Winograd convolutions check it)
    assert run({}) == (str(sorted([(-4, 0), (-1, 2**31 - 1), (-2, 1 << 28)])), "True")
    assert run({"GENFIELDS_KEEP_FREED_MEMORY": "0"}) == ("[]", "False")
