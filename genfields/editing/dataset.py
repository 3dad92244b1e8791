"""The generated training set of the editor, and the "real" attribute images of a preset.

`make_dataset` samples z for N_id identity and N_attr attribute images, generates them with the
frozen generator, and records z with everything the losses need from the frozen perception
networks: E_id embeddings, F_attr features, landmarks and pose (so training never runs E_attr
or perceives a target twice), plus the per-channel mean and std of S and w (Sec. 3.4). Images
are not stored: I_id = G(S(z_id)) is regenerated exactly when a reconstruction step needs it.

Folder layout: `dataset.json` (a `DatasetConfig` and the counts), `data.safetensors`, and
`preview.png` (the first identity and attribute images). z is always drawn on the CPU and every
result is brought back to the CPU, so a set made on any device is read the same way; `amp`
(recorded in the config) synthesises under autocast; perception stays float32.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from genfields.devices import amp_forward, module_device, resolve_device
from genfields.errors import CheckpointError, ConfigError, check_regular_file, short_message
from genfields.imageio import atomic_path, atomic_write_text, list_images, load_image, make_grid, save_image
from genfields.perception import PerceptionSet
from genfields.stylegan2 import Generator
from genfields.training import FolderLock

from .regularizer import StyleStatistics

FORMAT = "genfields-editing-dataset-v1"
PERCEIVED = ("embedding", "f_attr", "landmarks", "pose")
DATASET_LOCK = "dataset.lock"  # held while make-dataset writes the folder


@dataclass
class DatasetConfig:
    """How a generated set was made (saved as dataset.json)."""

    preset: str = "synth64"
    generator: str = "synth64"
    perception: str = "synth"
    identities: int = 9000
    attributes: int = 3000
    truncation: float = 1.0
    seed: int = 0
    chunk: int = 64
    amp: bool = False  # synthesis under torch.autocast (perception stays float32)

    def __post_init__(self) -> None:
        if self.identities < 1 or self.attributes < 1:
            raise ConfigError(f"need at least one identity and one attribute image, got "
                              f"{self.identities} and {self.attributes}")


class MomentAccumulator:
    """Running float64 sums for the per-channel mean and std of a stream of [N, D] batches."""

    def __init__(self) -> None:
        self.n, self.sum, self.sumsq = 0, 0.0, 0.0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        self.n += x.shape[0]
        self.sum = self.sum + x.sum(0)
        self.sumsq = self.sumsq + x.square().sum(0)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.sum / self.n
        var = (self.sumsq - self.n * mean.square()) / max(self.n - 1, 1)
        return mean.float(), var.clamp_min(0).sqrt().float()


@torch.no_grad()
def perceive(nets: PerceptionSet, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Embedding, F_attr, landmarks and pose of images (what the losses compare), float32 even under `--amp`
    (see `Editor.perceive`)."""
    found = nets.landmarks(images)
    return {"embedding": nets.identity(images), "f_attr": nets.attributes(images),
            "landmarks": found.landmarks, "pose": found.pose}


@torch.no_grad()
def generate(G: Generator, z: torch.Tensor, truncation: float = 1.0,
             amp: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """w, S and the image of z on G's device (constant noise: an identity is a function of its z alone);
    with `amp` only the synthesis runs under autocast, the image is returned as float32."""
    device = module_device(G)
    w = G.mapping(z.to(device), truncation_psi=truncation)
    S = G.styles(w)
    return w, S, amp_forward(G.synthesize, S, w, noise_mode="const", device=device, enabled=amp)


def make_dataset(cfg: DatasetConfig, G: Generator, nets: PerceptionSet, outdir: str | os.PathLike,
                 progress: bool = True, device: str | torch.device | None = None, overwrite: bool = True) -> Path:
    """Generate and perceive the identity and attribute sets; write them with the S statistics.

    `device` moves G and the networks there (in place; None: stay where G is); z is drawn on the
    CPU and the results come back to it, so the set does not depend on the device. The folder is
    locked (`dataset.lock`) while it is written; without `overwrite`, a dataset found there, at
    the start or when the set is about to be written (another process finished first), is refused.
    """
    from genfields.perception.judges import refuse_judges

    refuse_judges(nets.networks(), "make-dataset perception networks")
    if device is not None:
        device = resolve_device(device)
        G.to(device)
        nets.to(device)
    outdir = Path(outdir)
    lock = FolderLock.acquire(outdir, DATASET_LOCK, "dataset folder")
    try:
        _refuse_finished(outdir, overwrite)
        _write_dataset(cfg, G, nets, outdir, progress, overwrite)
    finally:
        lock.release()
    return outdir


def _refuse_finished(outdir: Path, overwrite: bool) -> None:
    if not overwrite and (outdir / "dataset.json").exists():
        raise ConfigError(f"{outdir} holds a dataset (dataset.json); choose another --outdir, or replace it with "
                          "--overwrite")


def _write_dataset(cfg: DatasetConfig, G: Generator, nets: PerceptionSet, outdir: Path, progress: bool,
                   overwrite: bool) -> None:
    z = torch.randn(cfg.identities + cfg.attributes, G.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
    moments_S, moments_w = MomentAccumulator(), MomentAccumulator()
    columns: dict[str, list[torch.Tensor]] = {k: [] for k in PERCEIVED}
    for start in tqdm(range(0, len(z), cfg.chunk), disable=not progress, unit="chunk", desc="make-dataset"):
        w, S, images = generate(G, z[start:start + cfg.chunk], cfg.truncation, cfg.amp)
        moments_S.add(S.cpu())
        moments_w.add(w[:, 0].cpu())
        for k, v in perceive(nets, images).items():
            columns[k].append(v.cpu())
    data = {k: torch.cat(v) for k, v in columns.items()}
    stats = StyleStatistics(*moments_S.mean_std(), *moments_w.mean_std())
    tensors = {"z_id": z[:cfg.identities], "z_attr": z[cfg.identities:], **stats.tensors()}
    for k, v in data.items():
        tensors[f"id_{k}"], tensors[f"attr_{k}"] = v[:cfg.identities], v[cfg.identities:]
    _refuse_finished(outdir, overwrite)  # again: the lock keeps other writers out, not a user's copy
    with atomic_path(outdir / "data.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "config": dataclasses.asdict(cfg), "s_dim": G.layout.dim, "w_dim": G.config.w_dim,
            "z_dim": G.z_dim, "resolution": G.config.img_resolution}
    atomic_write_text(outdir / "dataset.json", json.dumps(meta, indent=1) + "\n")  # after the data: a folder with it is whole
    preview = torch.cat([z[:16], z[cfg.identities:cfg.identities + 8]])
    save_image(make_grid(generate(G, preview, cfg.truncation, cfg.amp)[2].cpu(), cols=8), outdir / "preview.png")


@dataclass
class TrainBatch:
    """One training batch: identity latents and the targets of the step's stage."""

    z: torch.Tensor  # z_id [B, z_dim]
    embedding: torch.Tensor  # E_id(I_id) = F_id
    f_attr: torch.Tensor  # E_attr(I_attr)
    landmarks: torch.Tensor  # E_lnd(I_attr)
    pose: torch.Tensor  # E_pose(I_attr)
    reconstruction: bool  # I_attr = I_id
    z_attr: torch.Tensor | None = None  # z of I_attr (to regenerate it for a trainable attribute encoder)
    id_f_attr: torch.Tensor | None = None  # E_attr(I_id) (for M_ref's identity input, beyond the paper)

    def to(self, device: str | torch.device) -> TrainBatch:
        """The batch with every tensor on `device`."""
        return TrainBatch(**{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in vars(self).items()})


class GeneratedSet:
    """A `make-dataset` folder in memory."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        meta_path, data_path = self.folder / "dataset.json", self.folder / "data.safetensors"
        if not meta_path.exists():
            raise CheckpointError(f"{self.folder}: not a make-dataset folder (no dataset.json)")
        try:
            self.meta = json.loads(check_regular_file(meta_path, "dataset description").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{meta_path}: cannot read the dataset description ({short_message(exc)})") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
            found = self.meta.get("format") if isinstance(self.meta, dict) else type(self.meta).__name__
            raise CheckpointError(f"{meta_path}: unknown dataset format {found!r} (expected {FORMAT})")
        try:
            self.config = DatasetConfig(**self.meta["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{meta_path}: not a dataset description ({short_message(exc)})") from None
        check_regular_file(data_path, "dataset")
        try:
            self.tensors = load_file(str(data_path))
            self.stats = StyleStatistics.from_tensors(self.tensors)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types, all meaning a bad file
            raise CheckpointError(f"{data_path}: truncated or corrupt dataset ({short_message(exc)})") from None

    @property
    def num_identities(self) -> int:
        return self.tensors["z_id"].shape[0]

    @property
    def num_attributes(self) -> int:
        return self.tensors["z_attr"].shape[0]

    def check_generator(self, G: Generator) -> None:
        """Refuse a generator whose S or z does not match the one the set was made with."""
        if (self.meta["s_dim"], self.meta["z_dim"]) != (G.layout.dim, G.z_dim):
            raise ConfigError(f"{self.folder} was made with a generator of S dim {self.meta['s_dim']} and z dim "
                              f"{self.meta['z_dim']}, this one has {G.layout.dim} and {G.z_dim}")

    def sample(self, n: int, gen: torch.Generator, reconstruction: bool) -> TrainBatch:
        """n random identities; attributes from other generated images, or the identities themselves."""
        t = self.tensors
        i = torch.randint(self.num_identities, (n,), generator=gen)
        if reconstruction:
            src, j = "id", i
        else:
            src, j = "attr", torch.randint(self.num_attributes, (n,), generator=gen)
        return TrainBatch(z=t["z_id"][i], embedding=t["id_embedding"][i], f_attr=t[f"{src}_f_attr"][j],
                          landmarks=t[f"{src}_landmarks"][j], pose=t[f"{src}_pose"][j], reconstruction=reconstruction,
                          z_attr=t[f"z_{src}"][j], id_f_attr=t["id_f_attr"][i])


def attribute_images(source: str, count: int, resolution: int, seed: int, start: int = 0) -> torch.Tensor:
    """The preset's real attribute images: synthface renders of `seed`, or the sorted photos of a folder."""
    if source == "synthface":
        from genfields.synthface import render_batch

        return render_batch(count, res=resolution, seed=seed, start_index=start).images
    folder = Path(source)
    if not folder.is_dir():
        raise ConfigError(f"attribute source '{source}' is neither 'synthface' nor a folder of face photos")
    files = list_images(folder)[start:start + count]
    if len(files) < count:
        raise ConfigError(f"{folder} holds {len(files)} usable images from index {start}, {count} are needed")
    return torch.cat([load_image(p, resolution) for p in files])
