"""Machinery shared by our trainers (GAN, editor, perception networks).

- `RunFolder`: config.json, metrics.jsonl, and atomic, resumable checkpoints (safetensors for
  tensors, JSON for the rest; never pickle).
- `Distributed`: PyTorch distributed from `torchrun`'s environment (gloo on CPU, nccl on GPU),
  gradient averaging, rank-aware printing.
- `StopWatch`: `--max-minutes` budgets and SIGTERM/SIGINT turned into a clean stop.
- `step_generator`: the random stream of one training step, a pure function of (seed, step,
  rank, stream), so that a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from genfields.errors import CheckpointError, ConfigError

CHECKPOINT_DIR = "checkpoint"
RUN_FILES = ("config.json", "metrics.jsonl", CHECKPOINT_DIR, CHECKPOINT_DIR + ".old")  # what makes a folder a run


# --- randomness ----------------------------------------------------------------------------------
def step_generator(seed: int, step: int, rank: int = 0, stream: int = 0) -> torch.Generator:
    """A torch RNG determined by (seed, step, rank, stream) alone."""
    mixed = (seed * 1_000_003 + step) * 1_000_033 + rank * 7_919 + stream * 104_729
    return torch.Generator().manual_seed(mixed % (2 ** 63 - 1))


# --- distributed -----------------------------------------------------------------------------------
class Distributed:
    """Rank, world size and gradient averaging; a single process when not launched by torchrun."""

    def __init__(self, device: str = "cpu"):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world_size > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if str(device).startswith("cuda") else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def split_batch(self, batch: int) -> int:
        if batch % self.world_size:
            raise ConfigError(f"batch {batch} is not divisible by the {self.world_size} processes")
        return batch // self.world_size

    def average_gradients(self, params) -> None:
        """All-reduce and average the gradients of `params` across processes (one flat buffer)."""
        if not self.enabled:
            return
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def average(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t) / self.world_size

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is true on any (so that all leave a loop at the same step)."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


# --- time budget ----------------------------------------------------------------------------------
class StopWatch:
    """Says when to stop: after `max_minutes`, or once SIGTERM/SIGINT arrives (then the loop saves).

    Under DDP (`dist`) the processes decide together: each has its own clock, and one that left
    the loop while another was in a step's all-reduce would hang both.
    """

    def __init__(self, max_minutes: float | None = None, dist: "Distributed | None" = None):
        self.dist = dist
        self.start = time.monotonic()
        self.max_seconds = None if max_minutes is None else 60 * max_minutes
        self.signalled = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread
                pass

    def _on_signal(self, signum, frame) -> None:
        self.signalled = True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def should_stop(self) -> bool:
        local = self.signalled or (self.max_seconds is not None and self.elapsed >= self.max_seconds)
        return local if self.dist is None else self.dist.any(local)


# --- run folder -----------------------------------------------------------------------------------
class RunFolder:
    """A training run's folder: config, metrics, samples, checkpoints."""

    def __init__(self, path: str | os.PathLike, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main
        if is_main:
            self.path.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def has_checkpoint(self) -> bool:
        return (self.checkpoint_path / "state.json").is_file()

    def holds_run(self) -> bool:
        """True when the folder holds (part of) a run: its config, metrics or a checkpoint."""
        return any((self.path / name).exists() for name in RUN_FILES)

    def start_fresh(self, overwrite: bool = False, outputs: tuple[str, ...] = ()) -> None:
        """Make sure a new run does not silently replace one: refuse, or with `overwrite` clear it.

        A folder that holds a run is refused with a line that says how to continue it
        (--resume) or replace it (--overwrite). With `overwrite`, the run's own files and the
        `outputs` the trainer writes (samples/, snapshots/, final/, ...) are deleted; nothing
        else in the folder is touched.
        """
        if not self.is_main or not self.holds_run():
            return
        if not overwrite:
            found = ", ".join(name for name in RUN_FILES if (self.path / name).exists())
            raise ConfigError(f"{self.path} holds a run ({found}); continue it with --resume, or replace it with "
                              "--overwrite")
        for name in (*RUN_FILES, CHECKPOINT_DIR + ".tmp", *outputs):
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()

    def write_config(self, config: Any) -> None:
        if self.is_main:
            data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
            _atomic_text(self.path / "config.json", json.dumps(data, indent=2, sort_keys=True) + "\n")

    def read_config(self) -> dict:
        try:
            return json.loads((self.path / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{self.path}: cannot read config.json ({exc})") from None

    def log(self, record: dict) -> None:
        """Append one JSON line to metrics.jsonl (main process only)."""
        if self.is_main:
            with open(self.path / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def truncate_log(self, key: str, last: float) -> None:
        """Drop metric lines written after the checkpoint being resumed (`record[key] > last`)."""
        path = self.path / "metrics.jsonl"
        if not self.is_main or not path.is_file():
            return
        keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get(key, 0) <= last]
        _atomic_text(path, "".join(line + "\n" for line in keep))

    def save_checkpoint(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        """Write tensors.safetensors + state.json to a fresh folder, then swap it in atomically."""
        if not self.is_main:
            return
        tmp = self.path / (CHECKPOINT_DIR + ".tmp")
        old = self.path / (CHECKPOINT_DIR + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        _fsync_dir(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint_path.exists():
            os.replace(self.checkpoint_path, old)
        os.replace(tmp, self.checkpoint_path)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        folder = self.checkpoint_path
        if not (folder / "state.json").is_file():
            old = self.path / (CHECKPOINT_DIR + ".old")  # a crash between the two renames
            folder = old if (old / "state.json").is_file() else folder
        try:
            state = json.loads((folder / "state.json").read_text())
            tensors = load_file(str(folder / "tensors.safetensors"))
        except (OSError, json.JSONDecodeError, Exception) as exc:
            raise CheckpointError(f"{folder}: cannot resume from this checkpoint ({exc})") from None
        return tensors, state


def check_resume_options(saved: dict, given: dict[str, tuple[str, Any]], changeable: frozenset = frozenset(),
                         where: str = "config.json") -> None:
    """Refuse options given on --resume that differ from the run's stored configuration.

    `given` maps a config key (dotted for nested keys, e.g. generator.mapping_layers) to the
    option that set it and its value. A resumed run keeps its configuration; a difference is a
    one-line refusal that names the option, both values, and `--change` where the key may change.
    """
    for key, (option, value) in given.items():
        stored: Any = saved
        for part in key.split("."):
            stored = stored.get(part) if isinstance(stored, dict) else None
        if stored != value and not (isinstance(value, float) and isinstance(stored, (int, float))
                                    and math.isclose(stored, value)):
            hint = f" (to change it from here on: --change {key}={value})" if key in changeable else ""
            raise ConfigError(f"--resume: {option} {value} differs from the run's {key} {stored} in {where}; "
                              f"a resumed run keeps its configuration: drop {option}{hint}")


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module_tensors(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    own = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    module.load_state_dict(own, strict=True)


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state dict into tensors (safetensors) and the JSON-able rest."""
    sd = opt.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        meta["state"][str(pid)] = {}
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value
                meta["state"][str(pid)][key] = "tensor"
            else:
                meta["state"][str(pid)][key] = value
    return tensors, meta


def load_optimizer_tensors(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           meta: dict) -> None:
    state = {}
    for pid, st in meta["state"].items():
        state[int(pid)] = {key: (tensors[f"{prefix}.{pid}.{key}"] if value == "tensor" else value)
                           for key, value in st.items()}
    opt.load_state_dict({"param_groups": meta["param_groups"], "state": state})


def _atomic_text(path: Path, text: str) -> None:
    from genfields.imageio import atomic_write_text

    atomic_write_text(path, text)


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
