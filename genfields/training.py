"""Machinery shared by our trainers (GAN, editor, perception networks).

- `RunFolder`: config.json, metrics.jsonl, and atomic, resumable checkpoints (safetensors for
  tensors, JSON for the rest; never pickle); locked while a process writes it (`FolderLock`),
  with a manifest of what the run owns, so that --overwrite deletes nothing else.
- `Distributed`: PyTorch distributed from `torchrun`'s environment (gloo on CPU, nccl on GPU),
  gradient averaging, rank-aware printing.
- `StopWatch`: `--max-minutes` budgets and SIGTERM/SIGINT turned into a clean stop (a second
  signal exits at once); `CheckpointClock`: the first checkpoint early, then every interval.
- `step_generator`: the random stream of one training step, a pure function of (seed, step,
  rank, stream), so that a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from genfields.errors import CheckpointError, ConfigError, GenfieldsError, at_command_end

CHECKPOINT_DIR = "checkpoint"
MANIFEST_FILE = "manifest.json"  # what a run owns in its folder: all that --overwrite may delete
MANIFEST_FORMAT = "genfields-run-manifest-v1"
LOCK_FILE = "run.lock"
RUN_MARKERS = ("config.json", "metrics.jsonl", CHECKPOINT_DIR, CHECKPOINT_DIR + ".old")  # what makes a folder a run
RUN_FILES = (*RUN_MARKERS, MANIFEST_FILE, CHECKPOINT_DIR + ".tmp", "status.json")  # what every run writes
FIRST_CHECKPOINT_MINUTES = 2.0  # a run killed early loses at most this much work


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

    The first signal asks for a stop at the next safe point (the loop saves a checkpoint and
    leaves); a second one exits at once, even while the main thread is inside a long C++
    operation: the signal's byte reaches a watcher thread through `signal.set_wakeup_fd`.

    Under DDP (`dist`) the processes decide together: each has its own clock, and one that left
    the loop while another was in a step's all-reduce would hang both.
    """

    def __init__(self, max_minutes: float | None = None, dist: "Distributed | None" = None):
        self.dist = dist
        self.start = time.monotonic()
        self.max_seconds = None if max_minutes is None else 60 * max_minutes
        self.signalled = False
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: no signal handling of our own
            return
        _SignalWatcher.start()

    def _on_signal(self, signum, frame) -> None:
        self.signalled = True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def should_stop(self) -> bool:
        local = self.signalled or (self.max_seconds is not None and self.elapsed >= self.max_seconds)
        return local if self.dist is None else self.dist.any(local)


class _SignalWatcher:
    """A daemon thread that counts SIGTERM/SIGINT at the C level: a second one exits the process at once."""

    _pipe: tuple[int, int] | None = None
    seen = 0  # signals since the last StopWatch was made

    @classmethod
    def start(cls) -> None:
        import threading

        cls.seen = 0
        if cls._pipe is not None:
            return
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            os.close(read_fd), os.close(write_fd)
            return
        cls._pipe = (read_fd, write_fd)
        threading.Thread(target=cls._watch, args=(read_fd,), name="genfields-signals", daemon=True).start()

    @classmethod
    def _watch(cls, read_fd: int) -> None:
        while True:
            data = os.read(read_fd, 64)
            if not data:
                return
            for signum in data:
                if signum not in (signal.SIGTERM, signal.SIGINT):
                    continue
                cls.seen += 1
                if cls.seen == 1:
                    print(f"{signal.Signals(signum).name}: stopping at the next safe point (checkpoint, then exit); "
                          "send it again to exit at once", file=sys.stderr, flush=True)
                else:
                    print(f"{signal.Signals(signum).name} again: exiting at once (the last checkpoint is kept)",
                          file=sys.stderr, flush=True)
                    os._exit(128 + signum)


class CheckpointClock:
    """When to save: first after `first_minutes` (at most FIRST_CHECKPOINT_MINUTES), then every `minutes`.

    A run killed (SIGKILL, a full disk, a lost machine) before its first checkpoint loses
    everything, so the first one comes early whatever the interval.
    """

    def __init__(self, minutes: float, first_minutes: float = FIRST_CHECKPOINT_MINUTES):
        self.interval = 60 * minutes
        self.next_due = time.monotonic() + 60 * min(minutes, first_minutes)

    def due(self) -> bool:
        """True when a checkpoint is due now; the next one is then an interval away."""
        now = time.monotonic()
        if now < self.next_due:
            return False
        self.next_due = now + self.interval
        return True


# --- locks ---------------------------------------------------------------------------------------
def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class FolderLock:
    """An exclusive lock on a folder one process writes: `folder/name` holds the writer's PID and host.

    Taken with flock(2) on the lock file, so a lock left by a dead process (SIGKILL, power loss)
    is free again: it is recognised as stale and taken over. Where flock is not supported, a
    lock whose PID runs on this host is honoured and any other is stale. Re-entrant within a
    process; released (the file removed) by `release` or at exit.
    """

    _held: dict[Path, "FolderLock"] = {}

    def __init__(self, folder: str | os.PathLike, name: str = LOCK_FILE, what: str = "run folder"):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what
        self.fd: int | None = None
        self.stale_pid: int | None = None

    @classmethod
    def acquire(cls, folder: str | os.PathLike, name: str = LOCK_FILE, what: str = "run folder") -> "FolderLock":
        """The lock on `folder`, taken now (or already held by this process); ConfigError if another holds it."""
        key = Path(os.path.abspath(folder)) / name
        if key in cls._held:
            return cls._held[key]
        lock = cls(folder, name, what)
        lock._take()
        cls._held[key] = lock
        atexit.register(lock.release)
        return lock

    def _take(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                if not self._flock(fd):
                    fields = _read_holder(fd).split() or ["(unknown)"]
                    os.close(fd)
                    where = f" on {fields[1]}" if len(fields) > 1 else ""
                    raise ConfigError(f"{self.folder}: this {self.what} is being written by process {fields[0]}{where} "
                                      f"({self.path}); wait for it to finish, or stop it")
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:  # released between our open and our flock: take a fresh file
                    same = False
                if same:
                    break
                os.close(fd)
            previous = _read_holder(fd)
            self.stale_pid = int(previous.split()[0]) if previous.split() and previous.split()[0].isdigit() else None
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self.fd = fd
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot lock the {self.what} ({exc.strerror or exc})") from None

    def _flock(self, fd: int) -> bool:
        """True when the lock is ours: flock(2), or where it is unsupported the PID it holds is not running."""
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except (ImportError, OSError):  # no flock here (some network filesystems): judge by the PID
            fields = _read_holder(fd).split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1] == socket.gethostname():
                return int(fields[0]) == os.getpid() or not _process_alive(int(fields[0]))
            return True

    def held(self) -> bool:
        """True while the lock file is still ours (not removed or taken over by another process)."""
        try:
            return self.fd is not None and os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        if self.held():
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None
        FolderLock._held.pop(Path(os.path.abspath(self.folder)) / self.path.name, None)


def _read_holder(fd: int) -> str:
    """The 'PID host' line of a lock file (empty if none)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        return ""


# --- run folder -----------------------------------------------------------------------------------
class RunFolder:
    """A training run's folder: config, metrics, samples, checkpoints, its lock and its manifest.

    The main process locks the folder (`run.lock`, see FolderLock) when it starts writing it:
    `start_fresh`, `lock` (a resume) or the first write. `manifest.json` lists the top-level
    names a run created (those that did not exist when it started): --overwrite deletes those
    and nothing else.
    """

    def __init__(self, path: str | os.PathLike, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main
        self._lock: FolderLock | None = None
        self._created = False
        self._pending_owned: tuple[str, ...] = ()  # set by start_fresh, written with the config
        self.run_id: str | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    def lock(self) -> None:
        """Take the folder's lock (main process only; creating the folder); ConfigError if another process holds it."""
        if not self.is_main or (self._lock is not None and self._lock.fd is not None):
            return
        self._created = self._created or not self.path.exists()
        self._lock = FolderLock.acquire(self.path, LOCK_FILE, "run folder")
        atexit.unregister(self.release)  # once, however often the folder is locked again
        atexit.register(self.release)
        at_command_end(self.release)
        if self._lock.stale_pid is not None and self._lock.stale_pid != os.getpid():
            print(f"note: {self.path}: took over the stale lock of process {self._lock.stale_pid} (no longer "
                  "running)", file=sys.stderr)

    def release(self) -> None:
        """Give the lock back; a folder this run created and left empty is removed."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def check_still_ours(self) -> None:
        """Refuse to write final outputs unless the lock and the manifest are still this run's."""
        if not self.is_main:
            return
        if self._lock is None or not self._lock.held():
            raise CheckpointError(f"{self.path}: the folder's lock ({LOCK_FILE}) is no longer this process's; "
                                  "final outputs not written")
        if self.run_id is not None and self.read_manifest().get("run_id") != self.run_id:
            raise CheckpointError(f"{self.manifest_path}: another run took over this folder; final outputs not "
                                  "written")

    def has_checkpoint(self) -> bool:
        """True when there is a checkpoint to resume: checkpoint/, or checkpoint.old/ after a crash between the
        two renames of `save_checkpoint`."""
        return any((self.path / name / "state.json").is_file() for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"))

    def holds_run(self) -> bool:
        """True when the folder holds (part of) a run: its config, metrics or a checkpoint."""
        return any((self.path / name).exists() for name in RUN_MARKERS)

    def nothing_to_resume(self, option: str = "--resume") -> ConfigError:
        """The refusal of --resume (or of a fresh start) in a folder whose run has no checkpoint yet."""
        if self.holds_run():
            return ConfigError(f"{option}: no checkpoint in {self.path} (the run there stopped before its first "
                               "checkpoint: nothing to resume); start it again with --overwrite")
        return ConfigError(f"{option}: no checkpoint in {self.path} (no run there); start a new run without --resume")

    def start_fresh(self, overwrite: bool = False, outputs: tuple[str, ...] = ()) -> None:
        """Lock the folder and make sure a new run does not replace another: refuse, or with `overwrite` clear it.

        A folder that holds a run is refused with a line that says how to continue it
        (--resume) or replace it (--overwrite). With `overwrite`, only what the old run's manifest
        lists is deleted (for a run written before manifests: its own files and `outputs`); a folder
        that holds no run of ours is refused rather than cleared. The new run's manifest lists the
        run files and `outputs` that do not exist yet: what a later --overwrite may delete.
        """
        if not self.is_main:
            return
        self.lock()
        try:
            if self.holds_run():
                found = ", ".join(name for name in RUN_MARKERS if (self.path / name).exists())
                if not overwrite:
                    if not self.has_checkpoint() and (self.path / "config.json").exists():
                        raise ConfigError(f"{self.path} holds a run that stopped before its first checkpoint "
                                          f"({found}): nothing to resume; replace it with --overwrite")
                    raise ConfigError(f"{self.path} holds a run ({found}); continue it with --resume, or replace it "
                                      "with --overwrite")
                self._delete_run(outputs, found)
        except GenfieldsError:
            self.release()
            raise
        self._pending_owned = (*RUN_FILES, *outputs)

    def _delete_run(self, outputs: tuple[str, ...], found: str) -> None:
        """Delete the names the folder's manifest lists (or, for an older run, its run files and `outputs`)."""
        if self.manifest_path.exists():
            owned = self.read_manifest()["owned"]
        elif isinstance(self._config_or_none(), dict):  # a run of ours from before manifests
            owned = [*RUN_FILES, *outputs]
        else:
            raise ConfigError(f"{self.path} holds {found} but no run of ours (no {MANIFEST_FILE}, no readable "
                              "config.json); --overwrite deletes only a run's own files: move them away or choose "
                              "another --outdir")
        for name in owned:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        self.manifest_path.unlink(missing_ok=True)

    def _config_or_none(self) -> Any:
        try:
            return json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError):
            return None

    def _write_manifest(self, names: tuple[str, ...]) -> None:
        """List `names` that do not exist yet (and what an unfinished earlier manifest owned) as this run's."""
        earlier = self.read_manifest().get("owned", [])  # a run that stopped in its set-up, before config.json
        self.run_id = uuid.uuid4().hex
        owned = [name for name in dict.fromkeys(names) if name == MANIFEST_FILE or name in earlier
                 or not (self.path / name).exists()]
        _atomic_text(self.manifest_path, json.dumps(
            {"format": MANIFEST_FORMAT, "run_id": self.run_id, "owned": owned,
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1) + "\n")

    def read_manifest(self) -> dict:
        """The run's manifest (empty for a run written before manifests); CheckpointError if it is damaged."""
        if not self.manifest_path.exists():
            return {}
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{self.manifest_path}: cannot read the run's manifest ({exc})") from None
        owned = manifest.get("owned") if isinstance(manifest, dict) else None
        if (not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(owned, list)
                or not all(isinstance(n, str) and n and "/" not in n and n not in (".", "..") for n in owned)):
            raise CheckpointError(f"{self.manifest_path}: not a genfields run manifest (expected format "
                                  f"{MANIFEST_FORMAT} with a list of top-level names)")
        return manifest

    def resume_lock(self) -> None:
        """Lock the folder for a resumed run and adopt its manifest's run id."""
        self.lock()
        if self.is_main:
            self.run_id = self.read_manifest().get("run_id")

    def write_config(self, config: Any) -> None:
        if self.is_main:
            self.lock()
            if self._pending_owned:  # the first write of a new run: its manifest first
                self._write_manifest(self._pending_owned)
                self._pending_owned = ()
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
            self.lock()
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
        """Write tensors.safetensors + state.json to a fresh folder, then swap it in atomically.

        A failed write (a full disk) removes the half-written folder and is one CheckpointError
        naming it; the previous checkpoint is kept.
        """
        if not self.is_main:
            return
        self.lock()
        tmp = self.path / (CHECKPOINT_DIR + ".tmp")
        old = self.path / (CHECKPOINT_DIR + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
            _default_mode(tmp / "tensors.safetensors")
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            _fsync_dir(tmp)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            kept = f"; the previous checkpoint in {self.checkpoint_path} is kept" if self.has_checkpoint() else ""
            raise CheckpointError(f"{tmp}: cannot write the checkpoint ({_reason(exc)}); removed it{kept}") from None
        if self.checkpoint_path.exists():  # at every moment checkpoint/ or checkpoint.old/ holds a whole one
            shutil.rmtree(old, ignore_errors=True)
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


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (an OSError's strerror), without a C++ backtrace."""
    from genfields.errors import short_message

    return short_message(exc)


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


def _default_mode(path: Path) -> None:
    from genfields.imageio import set_default_mode

    set_default_mode(path)


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
