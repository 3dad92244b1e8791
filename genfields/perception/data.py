"""Training and held-out data for the perception networks: renders grouped by identity.

Each identity is rendered in several *views*; a view redraws everything that is not the
person: expression, pose, light and the scene codes (background and clothes). Identity
networks learn from two views of one person; the other networks just see many faces.
Sets are rendered once and cached as one ``.npz`` (uint8 images + float labels), keyed by
their settings, so that every training run and evaluation reuses the same bytes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genfields.imageio import from_uint8, to_uint8
from genfields.synthface import IDENTITY, FaceParams, FaceRenderer, sample_params

# Identity codes that describe the scene rather than the person; they change from view to view.
SCENE_CODES = tuple(i for i, spec in enumerate(IDENTITY) if spec.name in ("background_hue", "background_value",
                                                                            "clothes_hue"))
FACE_CODES = tuple(i for i in range(len(IDENTITY)) if i not in SCENE_CODES)
VIEW_SEED_OFFSET = 7_919  # views of seed s are drawn from stream s + this offset
DEFAULT_CACHE = Path(os.environ.get("GENFIELDS_CACHE", Path.home() / ".cache" / "genfields")) / "perception"


@dataclass(frozen=True)
class ViewSetSpec:
    """What to render: `ids` people x `views` views at `res` px, with a share of wide (uniform) poses."""

    ids: int
    views: int
    seed: int
    res: int = 64
    uniform_pose_share: float = 0.3

    @property
    def filename(self) -> str:
        return (f"views_s{self.seed}_ids{self.ids}_v{self.views}_r{self.res}"
                f"_u{round(self.uniform_pose_share * 100)}.npz")


@dataclass
class ViewSet:
    """Rendered views: images uint8 [N, H, W, 3] and labels; sample k shows identity `person[k]`."""

    images: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    light: np.ndarray
    person: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images as float NCHW in [-1, 1] and every label as a float tensor, for samples `index`."""
        idx = index.numpy()
        out = {name: torch.from_numpy(getattr(self, name)[idx]) for name in
               ("landmarks", "pose", "identity", "expression", "light", "person")}
        out["images"] = from_uint8(self.images[idx])
        return out


def view_params(spec: ViewSetSpec) -> tuple[FaceParams, np.ndarray]:
    """Parameters of every view (identity-major order) and the person index of each."""
    n = spec.ids * spec.views
    people = sample_params(spec.ids, seed=spec.seed)
    narrow = sample_params(n, seed=spec.seed + VIEW_SEED_OFFSET, pose_dist="ffhq")
    wide = sample_params(n, seed=spec.seed + VIEW_SEED_OFFSET, pose_dist="uniform")
    use_wide = torch.from_numpy(np.random.default_rng(spec.seed).random(n) < spec.uniform_pose_share)
    person = np.repeat(np.arange(spec.ids), spec.views)
    identity = people.identity[person].clone()
    identity[:, list(SCENE_CODES)] = narrow.identity[:, list(SCENE_CODES)]
    pose = torch.where(use_wide[:, None], wide.pose, narrow.pose)
    params = FaceParams(identity=identity, expression=narrow.expression, pose=pose, light=narrow.light)
    return params, person


def render_view_set(spec: ViewSetSpec, chunk: int = 256, progress: bool = True) -> ViewSet:
    """Render all views of `spec` (about 200 images/s on one core at 64 px)."""
    params, person = view_params(spec)
    renderer = FaceRenderer(spec.res)
    parts = []
    for start in tqdm(range(0, len(params), chunk), desc=f"render {spec.filename}", disable=not progress):
        batch = renderer.render(params[start:start + chunk])
        parts.append((to_uint8(batch.images), batch.landmarks.numpy()))
    return ViewSet(images=np.concatenate([p[0] for p in parts]), landmarks=np.concatenate([p[1] for p in parts]),
                   pose=params.pose.numpy(), identity=params.identity.numpy(),
                   expression=params.expression.numpy(), light=params.light.numpy(), person=person)


def load_view_set(spec: ViewSetSpec, cache_dir: str | os.PathLike | None = None, progress: bool = True) -> ViewSet:
    """The cached set of `spec`, rendered and written (atomically) on first use."""
    path = Path(cache_dir or DEFAULT_CACHE) / spec.filename
    if path.is_file():
        with np.load(path) as f:
            return ViewSet(**{name: f[name] for name in ViewSet.__dataclass_fields__})
    views = render_view_set(spec, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **asdict(views))
    os.replace(tmp, path)
    return views
