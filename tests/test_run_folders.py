"""Nothing lost, second pass (issue 35): locked run folders, an --overwrite that deletes only a run's
own files, early checkpoints, failed writes cleaned up, and signals that stop.

Concurrency is tested with two real processes; a full disk with a size-limited file
(RLIMIT_FSIZE), which every Linux user can set on their own processes.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genfields.cli import app
from genfields.training import LOCK_FILE, MANIFEST_FILE, CheckpointClock, FolderLock, RunFolder

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
GAN_ARGS = ["--arch", "tiny16", "--batch", "8", "--kimg", "0.008", "--sample-kimg", "0", "--snapshot-kimg", "0"]
HOLD_LOCK = """
import sys, time
from genfields.training import RunFolder
run = RunFolder(sys.argv[1])
run.start_fresh()
print("locked", flush=True)
time.sleep(60)
"""


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _holder(folder: Path) -> subprocess.Popen:
    """A second, real process that holds the lock of `folder` until killed."""
    proc = _python(HOLD_LOCK, str(folder))
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    return proc


def _genfields(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "genfields", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


# --- locks ---------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_while_the_first_runs(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        before = _files(tmp_path)
        result = _genfields("train-gan", *GAN_ARGS, "--outdir", str(run))
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: {run}: this run folder is being written by process {holder.pid} on {os.uname().nodename} "
            f"({run / LOCK_FILE}); wait for it to finish, or stop it"]
        assert _files(tmp_path) == before  # nothing written by the refused run
        for args in (["train-editor", "--preset", "tiny16", "--steps", "60"],
                     ["train-perception", "--net", "lnd", "--steps", "1"]):
            refused = runner.invoke(app, [*args, "--outdir", str(run)])
            assert refused.exit_code == 2 and f"being written by process {holder.pid}" in refused.stderr, args
        assert _files(tmp_path) == before
        with pytest.raises(Exception, match=f"being written by process {holder.pid}"):
            RunFolder(run).start_fresh()  # a library caller too
    finally:
        holder.kill()
        holder.wait()


def test_a_torchrun_group_into_a_locked_folder_is_refused_by_its_main_process(tmp_path):
    """Under torchrun only rank 0 takes the lock; its refusal ends the group, the holder's folder untouched."""
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        before = _files(tmp_path)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                               "--master_port=29541", "-m", "genfields", "train-gan", *GAN_ARGS, "--outdir", str(run)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert f"error: {run}: this run folder is being written by process {holder.pid}" in proc.stderr
        assert _files(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    holder = _holder(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run / LOCK_FILE).read_text().split()[0] == str(holder.pid)  # left behind by SIGKILL
    folder = RunFolder(run)
    folder.start_fresh()
    assert f"took over the stale lock of process {holder.pid}" in capsys.readouterr().err
    assert (run / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    folder.release()
    assert not (run / LOCK_FILE).exists()


def test_without_flock_a_live_pid_holds_and_a_dead_one_is_stale(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, op):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        with pytest.raises(Exception, match=f"being written by process {sleeper.pid}"):
            FolderLock.acquire(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    lock = FolderLock.acquire(tmp_path)  # the same PID, no longer running: stale
    assert lock.stale_pid == sleeper.pid
    lock.release()


def test_two_make_dataset_into_one_folder(tmp_path):
    from genfields.editing.dataset import DATASET_LOCK

    holder = _python("""
        import sys, time
        from genfields.training import FolderLock
        FolderLock.acquire(sys.argv[1], "dataset.lock", "dataset folder")
        print("locked", flush=True)
        time.sleep(60)
    """, str(tmp_path / "ds"))
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, ["make-dataset", "--preset", "tiny16", "--out", str(tmp_path / "ds"),
                                     "--identities", "2", "--attributes", "2"])
        assert result.exit_code == 2 and f"being written by process {holder.pid}" in result.stderr
        assert (tmp_path / "ds" / DATASET_LOCK).exists() and not (tmp_path / "ds" / "dataset.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_make_dataset_rechecks_before_writing(tmp_path, monkeypatch):
    """A dataset that appears while the set is generated (another copy finished first) is not replaced."""
    import genfields.editing.dataset as dataset
    from genfields.editing.dataset import DatasetConfig, make_dataset
    from genfields.perception import load_perception
    from genfields.stylegan2 import load_generator

    out = tmp_path / "ds"
    original = dataset.perceive

    def perceive_then_finish_elsewhere(nets, images):
        (out / "dataset.json").write_text('{"theirs": true}\n')
        return original(nets, images)

    monkeypatch.setattr(dataset, "perceive", perceive_then_finish_elsewhere)
    cfg = DatasetConfig(preset="tiny16", generator="random:tiny16", identities=2, attributes=2)
    with pytest.raises(Exception, match="holds a dataset"):
        make_dataset(cfg, load_generator("random:tiny16"), load_perception("synth"), out, progress=False,
                     overwrite=False)
    assert (out / "dataset.json").read_text() == '{"theirs": true}\n' and not (out / "data.safetensors").exists()
    assert not (out / "dataset.lock").exists()


def test_final_outputs_are_not_written_when_the_folder_was_taken_over(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.start_fresh()
    run.write_config({"a": 1})
    run.check_still_ours()
    manifest = json.loads(run.manifest_path.read_text())
    run.manifest_path.write_text(json.dumps({**manifest, "run_id": "someone-else"}))
    with pytest.raises(Exception, match="another run took over this folder"):
        run.check_still_ours()
    (tmp_path / "run" / LOCK_FILE).unlink()
    with pytest.raises(Exception, match="no longer this process's"):
        run.check_still_ours()
    run.release()


# --- --overwrite ---------------------------------------------------------------------------------
def test_overwrite_never_clears_a_folder_that_holds_no_run_of_ours(tmp_path):
    """The user's own samples/, final/ and checkpoint/ folders are not a run: --overwrite refuses them."""
    for name in ("samples/mine.png", "final/model.txt", "checkpoint/notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("mine\n")
    before = _files(tmp_path)
    result = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path), "--overwrite"])
    assert result.exit_code == 2 and "no run of ours" in result.stderr, result.stderr
    result = runner.invoke(app, ["train-editor", "--preset", "tiny16", "--outdir", str(tmp_path), "--overwrite"])
    assert result.exit_code == 2 and "no run of ours" in result.stderr, result.stderr
    assert _files(tmp_path) == before


def test_overwrite_deletes_only_what_the_manifest_lists(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "mine.png").write_text("mine\n")  # the user's folder, there before the run
    result = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    owned = json.loads((tmp_path / MANIFEST_FILE).read_text())["owned"]
    assert "checkpoint" in owned and "final" in owned and "samples" not in owned and "notes.txt" not in owned
    assert not (tmp_path / LOCK_FILE).exists()  # released at the end
    result = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes.txt").read_text() == "mine\n" and (tmp_path / "samples" / "mine.png").exists()
    assert (tmp_path / "final" / "model.safetensors").exists()


def test_a_run_folder_written_before_manifests_still_resumes_and_overwrites(tmp_path):
    """Today's runs (config.json, metrics.jsonl, checkpoint/, no lock, no manifest) keep working."""
    result = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (tmp_path / MANIFEST_FILE).unlink()
    result = runner.invoke(app, ["train-gan", "--resume", "--kimg", "0.016", "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "status.json").read_text())["images_seen"] == 16
    (tmp_path / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "status.json").read_text())["images_seen"] == 8
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_damaged_manifest_is_named_not_trusted(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"format": "genfields-run-manifest-v1", "owned": ["../x"]}))
    result = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path), "--overwrite"])
    assert result.exit_code == 2 and f"{tmp_path / MANIFEST_FILE}: not a genfields run manifest" in result.stderr


# --- nothing to resume, early checkpoints, failed writes ------------------------------------------
def test_a_run_killed_before_its_first_checkpoint_is_offered_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # what a run leaves when killed in its first minutes
    resumed = runner.invoke(app, ["train-gan", "--resume", "--outdir", str(tmp_path)])
    assert resumed.exit_code == 2 and "nothing to resume); start it again with --overwrite" in resumed.stderr
    fresh = runner.invoke(app, ["train-gan", *GAN_ARGS, "--outdir", str(tmp_path)])
    assert fresh.exit_code == 2 and "stopped before its first checkpoint" in fresh.stderr
    assert "replace it with --overwrite" in fresh.stderr and "--resume" not in fresh.stderr
    editor = runner.invoke(app, ["train-editor", "--preset", "tiny16", "--resume", "--outdir", str(tmp_path)])
    assert editor.exit_code == 2 and "start it again with --overwrite" in editor.stderr
    empty = runner.invoke(app, ["train-gan", "--resume", "--outdir", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "(no run there); start a new run without --resume" in empty.stderr
    assert not (tmp_path / "none").exists()


def test_a_checkpoint_left_only_as_checkpoint_old_still_resumes(tmp_path):
    """A crash between save_checkpoint's two renames leaves checkpoint.old/ alone: it is resumed, not offered to
    --overwrite."""
    run = RunFolder(tmp_path)
    run.start_fresh()
    run.write_config({"a": 1})
    run.save_checkpoint({"x": torch.ones(2)}, {"step": 3})
    run.release()
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    assert run.has_checkpoint() and run.load_checkpoint()[1] == {"step": 3}


def test_the_first_checkpoint_comes_early(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    clock = CheckpointClock(minutes=10)
    now[0] += 119
    assert not clock.due()
    now[0] += 2  # past 2 minutes: the first checkpoint, whatever the interval
    assert clock.due()
    now[0] += 300
    assert not clock.due()  # then every 10 minutes
    now[0] += 301
    assert clock.due()
    short = CheckpointClock(minutes=0.5)  # an interval shorter than 2 minutes is kept from the start
    now[0] += 31
    assert short.due()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no RLIMIT_FSIZE on this system")
def test_a_full_disk_while_checkpointing_keeps_the_previous_one(tmp_path):
    """A size-limited file (RLIMIT_FSIZE) stands for the full disk: the write fails, nothing half-written stays."""
    code = """
        import resource, signal, sys, torch
        from genfields.training import RunFolder
        run = RunFolder(sys.argv[1])
        run.start_fresh()
        run.save_checkpoint({"x": torch.zeros(10)}, {"step": 1})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            run.save_checkpoint({"x": torch.zeros(100_000)}, {"step": 2})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """
    proc = _python(code, str(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert out.startswith("CheckpointError " + str(tmp_path / "checkpoint.tmp") + ": cannot write the checkpoint"), \
        (out, err)
    assert "the previous checkpoint in" in out and "is kept" in out
    assert not (tmp_path / "checkpoint.tmp").exists()
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 1}


def test_written_files_get_the_usual_mode(tmp_path):
    from genfields.editing.editor import load_editor, save_editor
    from safetensors.torch import save_file

    from genfields.imageio import atomic_path, default_file_mode

    run = RunFolder(tmp_path / "run")
    run.start_fresh()
    run.save_checkpoint({"x": torch.zeros(3)}, {"step": 1})
    run.release()
    save_editor(load_editor("synth64"), tmp_path / "editor")
    with atomic_path(tmp_path / "data.safetensors") as tmp:  # how make-dataset writes its data
        save_file({"x": torch.zeros(3)}, str(tmp))
    for path in (tmp_path / "run" / "checkpoint" / "tensors.safetensors", tmp_path / "editor" / "editor.safetensors",
                 tmp_path / "editor" / "config.json", tmp_path / "data.safetensors"):
        assert path.stat().st_mode & 0o777 == default_file_mode(), path


# --- signals -------------------------------------------------------------------------------------
SLOW_SET_UP = """
    import sys, time
    from genfields.cli import launch
    from genfields.stylegan2 import train

    real_init = train.GANTrainer.__init__

    def slow_init(self, *args, **kwargs):  # a set-up that takes a while (loading a large data set, say)
        print("setting up", flush=True)
        time.sleep(60)
        real_init(self, *args, **kwargs)

    train.GANTrainer.__init__ = slow_init
    sys.exit(launch(sys.argv[1:]))
"""


def test_a_signal_during_set_up_exits_at_once(tmp_path):
    proc = _python(SLOW_SET_UP, "train-gan", *GAN_ARGS, "--outdir", str(tmp_path / "run"))
    assert proc.stdout.readline().strip() == "setting up"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM and time.monotonic() - start < 10


SLOW_STEP = """
    import time
    from genfields.training import StopWatch
    watch = StopWatch()
    while not watch.should_stop():
        print("in a step", flush=True)
        time.sleep(30)  # one long step: the first signal waits for its end
    print("stopped cleanly", flush=True)
"""


def test_a_second_signal_exits_at_once():
    proc = _python(SLOW_STEP)
    assert proc.stdout.readline().strip() == "in a step"
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert proc.poll() is None  # the first one waits for the next safe point
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM and "stopped cleanly" not in out
    assert "SIGTERM: stopping at the next safe point" in err and "SIGTERM again: exiting at once" in err


def test_one_signal_stops_at_the_next_safe_point(tmp_path):
    proc = _python(SLOW_STEP.replace("time.sleep(30)", "time.sleep(0.2)"))
    assert proc.stdout.readline().strip() == "in a step"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped cleanly" in out


def test_cpp_backtraces_are_cut_from_the_one_line():
    from genfields.errors import short_message

    exc = RuntimeError("[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory\n"
                       "Exception raised from alloc_cpu at ../c10/core/impl/alloc_cpu.cpp:114 (most recent call "
                       "first):\nframe #0: c10::Error::Error(...) + 0x9c\nframe #1: ...")
    assert short_message(exc) == ("[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough "
                                  "memory")
    assert short_message(PermissionError(13, "Permission denied", "/x/y")) == "Permission denied: /x/y"
