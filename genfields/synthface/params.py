"""Parameters of the synthetic face world and their sampling distributions.

A face is described by four parameter vectors:

* ``identity``  [N, 27]: who the person is (head shape, colours, feature sizes, background).
  Every entry is a code in [-1, 1]; 0 is the average face. The physical meaning of each code
  is listed in :data:`IDENTITY`.
* ``expression`` [N, 4]: ``mouth_open`` in [0, 1], ``smile`` in [-1, 1] (negative: corners
  down), ``brow_raise`` in [-1, 1], ``eye_open`` in [0, 1] (0 = closed).
* ``pose`` [N, 3]: yaw, pitch, roll in degrees (see :mod:`genfields.synthface.geometry` for the
  sign convention).
* ``light`` [N, 4]: azimuth and elevation of the key light in degrees, ambient level and
  warmth code.

Sampling is per sample: sample ``i`` of seed ``s`` draws all of its numbers from its own
stream ``SeedSequence(s, spawn_key=(i,))``, so a sample does not depend on the batch it is
drawn in. Each stream draws one fixed-length vector of uniforms, and every parameter owns
fixed columns of it; changing the pose distribution therefore leaves identity, expression and
light untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch

from genfields.errors import ConfigError

__all__ = [
    "IDENTITY",
    "EXPRESSION",
    "POSE",
    "LIGHT",
    "POSE_DISTRIBUTIONS",
    "ParamSpec",
    "FaceParams",
    "ParameterRangeError",
    "sample_params",
    "neutral_params",
]


class ParameterRangeError(ConfigError):
    """A face parameter is outside its documented range (or not finite)."""


@dataclass(frozen=True)
class ParamSpec:
    """One named parameter: valid range and sampling distribution.

    ``dist`` is ``"normal"`` (mean ``mean``, std ``std``, truncated to [lo, hi]), ``"uniform"``
    (on [lo, hi]) or ``"mixture"`` (with probability ``p`` uniform on ``alt``, else uniform on
    ``main``).
    """

    name: str
    lo: float
    hi: float
    dist: str = "normal"
    mean: float = 0.0
    std: float = 0.5
    p: float = 0.0
    main: tuple[float, float] = (0.0, 1.0)
    alt: tuple[float, float] = (0.0, 1.0)
    doc: str = ""


# Identity: every code lives in [-1, 1]; the doc gives the physical mapping of -1 .. +1.
IDENTITY: tuple[ParamSpec, ...] = (
    ParamSpec("head_width", -1, 1, doc="cranium width x0.90 .. x1.10"),
    ParamSpec("head_height", -1, 1, doc="cranium height x0.93 .. x1.07"),
    ParamSpec("head_depth", -1, 1, doc="cranium depth x0.93 .. x1.07"),
    ParamSpec("jaw_width", -1, 1, doc="lower-face width x0.86 .. x1.10"),
    ParamSpec("chin_length", -1, 1, doc="chin lower by -0.8 .. +0.8 cm"),
    ParamSpec("cheek_fullness", -1, 1, doc="lower-face depth x0.94 .. x1.06"),
    ParamSpec("skin_tone", -1, 1, dist="uniform", doc="light .. dark skin"),
    ParamSpec("skin_warmth", -1, 1, doc="olive .. rosy skin"),
    ParamSpec("hair_darkness", -1, 1, dist="normal", mean=0.35, std=0.55, doc="blond .. black hair"),
    ParamSpec("hair_redness", -1, 1, doc="ash .. auburn hair"),
    ParamSpec("hair_length", -1, 1, dist="uniform", doc="short .. shoulder-length hair"),
    ParamSpec("hair_volume", -1, 1, doc="hair thickness 0.5 .. 1.7 cm over the scalp"),
    ParamSpec("hairline", -1, 1, doc="low fringe .. high hairline"),
    ParamSpec("eye_spacing", -1, 1, doc="eye centres 2.95 .. 3.35 cm from the midline"),
    ParamSpec("eye_size", -1, 1, doc="eye opening x0.85 .. x1.15"),
    ParamSpec("iris_colour", -1, 1, dist="uniform", doc="dark brown .. hazel .. green .. blue"),
    ParamSpec("brow_thickness", -1, 1, doc="brow thickness x0.65 .. x1.35"),
    ParamSpec("brow_darkness", -1, 1, doc="brows lighter .. darker than the hair"),
    ParamSpec("nose_length", -1, 1, doc="nose length x0.88 .. x1.12"),
    ParamSpec("nose_width", -1, 1, doc="nose width x0.80 .. x1.25"),
    ParamSpec("nose_protrusion", -1, 1, doc="nose protrusion x0.80 .. x1.20"),
    ParamSpec("mouth_width", -1, 1, doc="mouth half-width 2.0 .. 2.7 cm"),
    ParamSpec("lip_thickness", -1, 1, doc="lip thickness x0.70 .. x1.30"),
    ParamSpec("lip_colour", -1, 1, doc="pale .. red lips"),
    ParamSpec("background_hue", -1, 1, dist="uniform", doc="background hue 0 .. 360 deg"),
    ParamSpec("background_value", -1, 1, dist="uniform", doc="dark .. light background"),
    ParamSpec("clothes_hue", -1, 1, dist="uniform", doc="clothes hue 0 .. 360 deg"),
)

EXPRESSION: tuple[ParamSpec, ...] = (
    ParamSpec("mouth_open", 0, 1, dist="mixture", p=0.5, main=(0.0, 0.08), alt=(0.1, 1.0),
              doc="0 closed .. 1 wide open (lower lip drops ~1.8 cm)"),
    ParamSpec("smile", -1, 1, dist="normal", mean=0.2, std=0.5,
              doc="-1 corners down .. +1 broad smile (corners up ~0.9 cm)"),
    ParamSpec("brow_raise", -1, 1, dist="normal", mean=0.0, std=0.45,
              doc="-1 lowered/frown .. +1 raised ~0.8 cm"),
    ParamSpec("eye_open", 0, 1, dist="mixture", p=0.15, main=(0.75, 1.0), alt=(0.0, 0.75),
              doc="0 closed .. 1 fully open"),
)

# Valid pose range (degrees); distributions below stay inside it.
POSE: tuple[ParamSpec, ...] = (
    ParamSpec("yaw", -60, 60, doc="+ = nose toward image right (head turns to its own left)"),
    ParamSpec("pitch", -40, 40, doc="+ = nose up (head tilts back)"),
    ParamSpec("roll", -40, 40, doc="+ = face rotates counter-clockwise in the image"),
)

# name -> ((kind, a, b) per yaw, pitch, roll); normal: (mean 0, std a, truncated at +-b)
POSE_DISTRIBUTIONS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "ffhq": (("normal", 18.0, 50.0), ("normal", 10.0, 30.0), ("normal", 7.0, 30.0)),
    "uniform": (("uniform", -45.0, 45.0), ("uniform", -30.0, 30.0), ("uniform", -30.0, 30.0)),
    "frontal": (("uniform", 0.0, 0.0), ("uniform", 0.0, 0.0), ("uniform", 0.0, 0.0)),
}

LIGHT: tuple[ParamSpec, ...] = (
    ParamSpec("azimuth", -70, 70, dist="normal", std=40.0, doc="key light azimuth deg, + = from image right"),
    ParamSpec("elevation", -20, 60, dist="normal", mean=25.0, std=15.0, doc="key light elevation deg"),
    ParamSpec("ambient", 0.15, 0.5, dist="uniform", doc="ambient level"),
    ParamSpec("warmth", -1, 1, doc="bluish .. warm light"),
)

_GROUPS = {"identity": IDENTITY, "expression": EXPRESSION, "pose": POSE, "light": LIGHT}
_N_UNIFORMS = len(IDENTITY) + 2 * len(EXPRESSION) + len(POSE) + len(LIGHT)


@dataclass
class FaceParams:
    """Parameters of a batch of faces (float32 tensors, first dim = batch)."""

    identity: torch.Tensor
    expression: torch.Tensor
    pose: torch.Tensor
    light: torch.Tensor

    def __len__(self) -> int:
        return int(self.identity.shape[0])

    def __getitem__(self, idx) -> "FaceParams":
        return FaceParams(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def replace(self, **changes) -> "FaceParams":
        """Copy with some groups replaced, e.g. ``p.replace(pose=other.pose)``."""
        changes = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in changes.items()}
        return replace(self, **changes)

    def to(self, device) -> "FaceParams":
        return FaceParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @staticmethod
    def cat(items: Sequence["FaceParams"]) -> "FaceParams":
        return FaceParams(**{f.name: torch.cat([getattr(p, f.name) for p in items]) for f in fields(FaceParams)})

    def validate(self) -> "FaceParams":
        """Raise :class:`ParameterRangeError` unless every value is finite and in range."""
        n = None
        for group, specs in _GROUPS.items():
            value = getattr(self, group)
            if not isinstance(value, torch.Tensor) or value.ndim != 2 or value.shape[1] != len(specs):
                raise ParameterRangeError(
                    f"{group} must be a tensor of shape [N, {len(specs)}], got "
                    f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
            if n is not None and value.shape[0] != n:
                raise ParameterRangeError(f"{group} has batch size {value.shape[0]}, expected {n}")
            n = value.shape[0]
            lo = torch.tensor([s.lo for s in specs], dtype=value.dtype, device=value.device)
            hi = torch.tensor([s.hi for s in specs], dtype=value.dtype, device=value.device)
            bad = ~torch.isfinite(value) | (value < lo - 1e-6) | (value > hi + 1e-6)
            if bool(bad.any()):
                i, j = (int(t) for t in bad.nonzero()[0])
                s = specs[j]
                raise ParameterRangeError(
                    f"{group}.{s.name} of sample {i} is {float(value[i, j]):g}; allowed range is [{s.lo:g}, {s.hi:g}]")
        return self


def names(group: str) -> list[str]:
    """Parameter names of ``group`` ('identity', 'expression', 'pose' or 'light')."""
    return [s.name for s in _GROUPS[group]]


def _uniforms(n: int, seed: int, start_index: int) -> np.ndarray:
    """[n, K] uniforms; row i comes from the stream of sample ``start_index + i`` alone."""
    if seed < 0 or start_index < 0:
        raise ParameterRangeError(f"seed and start_index must be >= 0, got {seed} and {start_index}")
    rows = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(start_index + i,))).random(_N_UNIFORMS)
            for i in range(n)]
    return np.stack(rows) if rows else np.zeros((0, _N_UNIFORMS))


def _truncated_normal(u: np.ndarray, mean: float, std: float, lo: float, hi: float) -> np.ndarray:
    from scipy.special import ndtr, ndtri  # imported here: scipy.special costs a quarter second of every start-up

    a, b = ndtr((lo - mean) / std), ndtr((hi - mean) / std)
    return mean + std * ndtri(a + np.clip(u, 1e-12, 1 - 1e-12) * (b - a))


def _draw(spec: ParamSpec, u: np.ndarray, u2: np.ndarray | None = None) -> np.ndarray:
    if spec.dist == "uniform":
        return spec.lo + u * (spec.hi - spec.lo)
    if spec.dist == "normal":
        return _truncated_normal(u, spec.mean, spec.std, spec.lo, spec.hi)
    if spec.dist == "mixture":
        lo = np.where(u2 < spec.p, spec.alt[0], spec.main[0])
        hi = np.where(u2 < spec.p, spec.alt[1], spec.main[1])
        return lo + u * (hi - lo)
    raise ValueError(f"unknown distribution {spec.dist!r}")


def _draw_pose(u: np.ndarray, pose_dist: str) -> np.ndarray:
    if pose_dist not in POSE_DISTRIBUTIONS:
        raise ParameterRangeError(f"pose_dist must be one of {sorted(POSE_DISTRIBUTIONS)}, got {pose_dist!r}")
    cols = []
    for j, (kind, a, b) in enumerate(POSE_DISTRIBUTIONS[pose_dist]):
        cols.append(_truncated_normal(u[:, j], 0.0, a, -b, b) if kind == "normal" else a + u[:, j] * (b - a))
    return np.stack(cols, 1)


def sample_params(n: int, seed: int = 0, start_index: int = 0, pose_dist: str = "ffhq") -> FaceParams:
    """Sample the parameters of faces ``start_index .. start_index + n - 1`` of ``seed``.

    The result does not depend on ``n``: ``sample_params(10, s)[3:]`` equals
    ``sample_params(7, s, start_index=3)``.
    """
    if n < 0:
        raise ParameterRangeError(f"n must be >= 0, got {n}")
    u = _uniforms(n, seed, start_index)
    k = 0
    ident = []
    for spec in IDENTITY:
        ident.append(_draw(spec, u[:, k]))
        k += 1
    expr = []
    for spec in EXPRESSION:
        expr.append(_draw(spec, u[:, k], u[:, k + 1]))
        k += 2
    pose = _draw_pose(u[:, k:k + 3], pose_dist)
    k += 3
    light = []
    for spec in LIGHT:
        light.append(_draw(spec, u[:, k]))
        k += 1
    as_t = lambda cols: torch.from_numpy(np.stack(cols, 1).astype(np.float32)) if n else torch.zeros(0, len(cols))
    return FaceParams(identity=as_t(ident), expression=as_t(expr),
                      pose=torch.from_numpy(pose.astype(np.float32)).reshape(n, 3), light=as_t(light))


def neutral_params(n: int = 1) -> FaceParams:
    """The average face: identity 0, relaxed open-eyed expression, frontal pose, frontal light."""
    expr = torch.tensor([[0.0, 0.0, 0.0, 1.0]]).repeat(n, 1)
    light = torch.tensor([[-30.0, 25.0, 0.3, 0.0]]).repeat(n, 1)
    return FaceParams(identity=torch.zeros(n, len(IDENTITY)), expression=expr,
                      pose=torch.zeros(n, 3), light=light)
