"""Writing and reading sharded synthetic-face datasets (``genfields synth-data``).

Layout of a dataset directory::

    meta.json            settings, parameter names, format version
    shard_00000.npz      images uint8 [m, res, res, 3] (RGB, HWC) + every label of FaceBatch
    shard_00001.npz      ...

Samples are rendered in fixed blocks of :data:`BLOCK` consecutive indices aligned to multiples
of :data:`BLOCK`, whatever the shard size or the number of workers, so the bytes of sample
``i`` depend only on (seed, i, res, pose_dist, supersample). Shards are written to a temporary
file and renamed, with fixed zip timestamps (the same settings give the same bytes), and each
finished shard's size and SHA-256 go into ``meta.json`` (``shards``). A rerun counts a shard as
done only when its file matches that record, so a killed or damaged run resumes where it stopped
and never keeps a truncated shard.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import signal
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .params import EXPRESSION, IDENTITY, LIGHT, POSE, POSE_DISTRIBUTIONS, ParameterRangeError, sample_params
from genfields.devices import keep_freed_memory
from genfields.imageio import to_uint8

from .render import FaceBatch, FaceRenderer

__all__ = ["write_dataset", "SynthFaceDataset", "read_shard", "BLOCK", "FORMAT"]

BLOCK = 64
FORMAT = "genfields-synthface-v1"
_SETTINGS = ("n", "res", "seed", "shard_size", "pose_dist", "supersample")


class DatasetExistsError(ParameterRangeError):
    """The output directory holds a dataset written with other settings."""


def _check(n: int, res: int, seed: int, shard_size: int, pose_dist: str, supersample: int) -> None:
    if n < 1:
        raise ParameterRangeError(f"--n must be >= 1, got {n}")
    if shard_size < 1:
        raise ParameterRangeError(f"--shard-size must be >= 1, got {shard_size}")
    if seed < 0:
        raise ParameterRangeError(f"--seed must be >= 0, got {seed}")
    if pose_dist not in POSE_DISTRIBUTIONS:
        raise ParameterRangeError(f"--pose-dist must be one of {', '.join(sorted(POSE_DISTRIBUTIONS))}, got {pose_dist!r}")
    FaceRenderer(res, supersample)  # validates res and supersample


def _render_range(start: int, stop: int, settings: dict) -> dict:
    """Render samples [start, stop) block by block; labels + uint8 images as numpy arrays."""
    renderer = FaceRenderer(settings["res"], settings["supersample"])
    parts = []
    for b0 in range(start // BLOCK * BLOCK, stop, BLOCK):
        params = sample_params(BLOCK, seed=settings["seed"], start_index=b0, pose_dist=settings["pose_dist"])
        batch = renderer.render(params, index=torch.arange(b0, b0 + BLOCK))
        parts.append(batch[max(start - b0, 0):stop - b0])
    batch = FaceBatch.cat(parts)
    arrays = {k: getattr(batch, k).numpy() for k in
              ("landmarks", "landmarks3d", "visible", "box", "pose", "identity", "expression", "light", "index")}
    arrays["images"] = to_uint8(batch.images)
    return arrays


def shard_name(shard: int) -> str:
    return f"shard_{shard:05d}.npz"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez's format (readable by np.load) with fixed timestamps, so that equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())


def file_record(path: Path) -> dict:
    """The size and SHA-256 of a file (what meta.json records of each finished shard)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _write_shard(job: tuple[int, int, int, str, dict]) -> tuple[int, int, dict]:
    """Render and write one shard; returns (shard, faces, its size and SHA-256)."""
    shard, start, stop, out, settings = job
    arrays = _render_range(start, stop, settings)
    path = Path(out) / shard_name(shard)
    tmp = path.with_suffix(".tmp.npz")
    _save_npz(tmp, arrays)
    record = file_record(tmp)
    os.replace(tmp, path)
    return shard, stop - start, record


def _worker_init() -> None:
    """Worker processes: one intra-op thread; keep freed big buffers mapped (glibc mallopt).

    Ctrl-C is the main process's to handle (it stops the pool): a worker that took it too would
    print its own traceback under a dangling "Process SpawnPoolWorker-N:" line.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    keep_freed_memory()


def _start_pool(workers: int):
    """A spawn pool whose workers ignore Ctrl-C from birth (an ignored signal stays ignored across exec)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return mp.get_context("spawn").Pool(workers, initializer=_worker_init)
    finally:
        signal.signal(signal.SIGINT, previous)


def _meta(settings: dict) -> dict:
    return {"format": FORMAT, **settings, "block": BLOCK,
            "names": {"identity": [s.name for s in IDENTITY], "expression": [s.name for s in EXPRESSION],
                      "pose": [s.name for s in POSE], "light": [s.name for s in LIGHT]},
            "conventions": {"images": "uint8 RGB HWC", "landmarks": "pixels, x right, y down, pixel centres at +0.5",
                            "pose": "degrees yaw, pitch, roll; yaw+ nose to image right, pitch+ nose up, "
                                    "roll+ counter-clockwise in the image"}}


def write_dataset(out: str | os.PathLike, n: int, res: int = 64, seed: int = 0, shard_size: int = 1000,
                  pose_dist: str = "ffhq", supersample: int = 2, workers: int | None = None,
                  progress: bool = True) -> dict:
    """Render ``n`` faces of ``seed`` into ``out`` (resumable); returns a summary dict.

    ``workers`` processes render shards in parallel (default: one per CPU core). Existing
    complete shards are kept, so rerunning the same command after a kill finishes the job.
    """
    _check(n, res, seed, shard_size, pose_dist, supersample)
    settings = dict(n=n, res=res, seed=seed, shard_size=shard_size, pose_dist=pose_dist, supersample=supersample)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        diff = [k for k in _SETTINGS if meta.get(k) != settings[k]]
        if meta.get("format") != FORMAT or diff:
            raise DatasetExistsError(f"{out} holds a dataset with other settings ({', '.join(diff) or 'format'}); "
                                     f"choose another --out or delete it")
    else:
        meta = _meta(settings)
    for tmp in out.glob("*.tmp.npz"):
        tmp.unlink()
    shards = [(i, s, min(s + shard_size, n)) for i, s in enumerate(range(0, n, shard_size))]
    counts = {shard_name(i): e - s for i, s, e in shards}
    if "shards" not in meta:  # written before shards were recorded: keep those that read back whole
        meta["shards"] = {name: {"n": count, **file_record(out / name)} for name, count in counts.items()
                          if _readable(out / name, count)}
    records = {name: rec for name, rec in meta["shards"].items() if _verified(out / name, rec, counts.get(name, 0))}
    meta["shards"] = records
    _write_meta(meta_path, meta)
    todo = [(i, s, e, str(out), settings) for i, s, e in shards if shard_name(i) not in records]
    done = n - sum(e - s for _, s, e, _, _ in todo)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = _progress(n, done, progress)

    def finished(result: tuple[int, int, dict]) -> None:
        shard, count, record = result
        records[shard_name(shard)] = {"n": count, **record}
        _write_meta(meta_path, meta)
        bar.update(count)

    try:
        if workers == 1:
            for job in todo:
                finished(_write_shard(job))
        else:
            # spawn, not fork: a fork taken after torch has started its thread pools can deadlock the child
            with _start_pool(workers) as pool:
                for result in pool.imap_unordered(_write_shard, todo):
                    finished(result)
    finally:
        bar.close()
    return {"out": str(out), "n": n, "shards": len(shards), "rendered": n - done, "resumed": done, **settings}


def _verified(path: Path, record: dict, count: int) -> bool:
    """True when a shard file is what meta.json recorded when it was finished (size, then SHA-256)."""
    if not path.is_file() or record.get("n") != count or path.stat().st_size != record.get("bytes"):
        return False
    return file_record(path)["sha256"] == record.get("sha256")


def _readable(path: Path, count: int) -> bool:
    try:
        return path.is_file() and len(read_shard(path)["index"]) == count
    except (ParameterRangeError, KeyError):
        return False


def _write_meta(path: Path, meta: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, path)


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc="synth-data", disable=not enabled, smoothing=0.1)


def read_shard(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of one shard (a damaged file is a one-line error naming it)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ParameterRangeError(f"{path}: damaged shard ({exc}); rerun the synth-data command that wrote it") from None


class SynthFaceDataset:
    """Map-style view over a written dataset: ``ds[i]`` is a dict of numpy arrays of sample i."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.exists():
            raise ParameterRangeError(f"{self.root} is not a synth-data directory (no meta.json)")
        self.meta = json.loads(meta_path.read_text())
        self.shard_size = self.meta["shard_size"]
        shards = -(-int(self.meta["n"]) // self.shard_size)
        recorded = self.meta.get("shards")
        for i in range(shards):
            path = self.root / shard_name(i)
            record = (recorded or {}).get(shard_name(i))
            if not path.is_file() or (recorded is not None and (record is None or path.stat().st_size != record["bytes"])):
                raise ParameterRangeError(f"{self.root} is incomplete or damaged ({shard_name(i)} missing or not the "
                                          "file that was written); rerun the same synth-data command to finish it")
        self._cache: tuple[int, dict] | None = None

    def __len__(self) -> int:
        return int(self.meta["n"])

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        shard = i // self.shard_size
        if self._cache is None or self._cache[0] != shard:
            self._cache = (shard, read_shard(self.root / f"shard_{shard:05d}.npz"))
        return {k: v[i - shard * self.shard_size] for k, v in self._cache[1].items()}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]
