"""Judges: perception networks that score editors and that nothing is trained against.

The loss networks (`synth_identity`, `synth_landmarks`, `synth_attributes`) are what the editors
optimise (L_id, L_lnd, L_pose) and what they take as inputs (F_id, F_attr), so scoring an editor
with them measures in part how well it learned to please them. The judges are trained apart:
- `judge_identity`: an identity encoder with another seed, another architecture (width 24, three
  conv layers per stage instead of 32 and two) and people disjoint from every other set;
- `judge_landmarks`: landmarks, expression and head pose, the same differences.
A judge is marked `"role": "judge"` in its `config.json`. `load_network` refuses a judge unless
the caller asks for one (`load_judges` does), and `new_editor` refuses a perception set that
holds one, so no training path (editor losses, editor inputs, make-dataset, fd-scale) can use it.

Disjoint data: a synthface view set of seed s draws its people from the stream `s` and its views
from `s + VIEW_SEED_OFFSET` (`data.view_params`), and sample i of stream s depends only on (s, i),
so sets of different streams share no draw. `JUDGE_TRAIN_SEEDS` are chosen outside
`RESERVED_STREAMS`, every stream the rest of genfields renders (tests/test_judges.py checks it).

An optional pose judge (`load_judges(pose=NAME)`, `genfields evaluate --pose-judge NAME`) adds angles from
another network registered in `POSE_JUDGES`: `3ddfa`, the real 3DDFA_V2 MobileNet in our pose convention.
`PRIMARY_POSE_JUDGE` is the one the report's verdicts read first (`3ddfa`: trained by others, on real
faces, so not fooled by what fools networks of our renderer's recipe); `render_pose_floor` measures a pose
judge's floor: its error against the renderer's exact labels on renders.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genfields.errors import ConfigError

from .bootstrap import mean_interval
from .data import VIEW_SEED_OFFSET, ViewSetSpec
from .interfaces import IdentityEncoder, LandmarkPoseEstimator
from .roles import (INSTRUMENT_ROLES, REALISM_ROLE, ROLE, is_judge, is_judge_config, refuse_judge,  # noqa: F401
                    refuse_judges)
from .shipped import PERCEPTION_DIR, load_network, model_card

JUDGES = {"identity": "judge_identity", "landmarks": "judge_landmarks"}  # per preset "synth"
JUDGE_TRAIN_SEEDS = {"judge_identity": 50_000, "judge_landmarks": 60_000}
JUDGE_ARCH = {"width": 24, "depth": 3}  # the loss networks: width 32, depth 2

# Streams of synthface draws used elsewhere (keep in sync when adding a set):
# perception training seed 0 (+ views), held-out seed 10000 (+ views), the GAN's data (synth-data
# seed 0, also train-gan's on-the-fly renders), `gan-quality`'s reference renders (seeds 1 and 2),
# the FD scale renders (9090), the editing presets' attribute renders (eval_render_seed 20000 +
# evaluation seed) and FD reference renders (fd_render_seed 30000 + evaluation seed).
EVAL_SEED_SPAN = 1000  # evaluation seeds 0..999 shift the editing render streams
RESERVED_STREAMS: tuple[range, ...] = (
    range(0, 3), range(VIEW_SEED_OFFSET, VIEW_SEED_OFFSET + 1),
    range(10_000, 10_001), range(10_000 + VIEW_SEED_OFFSET, 10_000 + VIEW_SEED_OFFSET + 1),
    range(9090, 9091),
    range(20_000, 20_000 + EVAL_SEED_SPAN), range(30_000, 30_000 + EVAL_SEED_SPAN),
)


def view_streams(spec: ViewSetSpec) -> set[int]:
    """The synthface streams a view set draws from: its people and its views."""
    return {spec.seed, spec.seed + VIEW_SEED_OFFSET}


def check_disjoint(spec: ViewSetSpec, reserved: tuple[range, ...] = RESERVED_STREAMS) -> None:
    """A ConfigError when a judge's training set would draw from a stream another set uses."""
    clash = sorted(s for s in view_streams(spec) if any(s in r for r in reserved))
    if clash:
        raise ConfigError(f"judge training seed {spec.seed}: stream(s) {clash} are used by other sets "
                          f"(perception, GAN data, FD scale or editing renders); pick another seed")


@dataclass
class Judges:
    """The judges of a preset: identity, landmarks/expression/pose, and optional extra pose judges."""

    identity: IdentityEncoder
    landmarks: LandmarkPoseEstimator
    names: dict[str, str]
    extra_pose: dict[str, LandmarkPoseEstimator] = field(default_factory=dict)

    def to(self, device: str | torch.device) -> "Judges":
        for net in [self.identity, self.landmarks, *self.extra_pose.values()]:
            net.to(device)
        return self


def _tddfa_pose_judge(device: torch.device) -> LandmarkPoseEstimator:
    """The real, official 3DDFA_V2 MobileNet (shipped mb05, trained by its authors on real faces) on the
    aligned-face box: a pose judge nobody here trained. Its pitch sits ~6-7 degrees below our renderer's
    labels (docs/perception.md), which cancels in the pose MSE: both images of a pair are judged by it."""
    from .tddfa import load_shipped_tddfa

    return load_shipped_tddfa(device=device)


# name -> loader(device) of a network with `.pose(images)` in our convention (degrees, synthface signs).
POSE_JUDGES: dict[str, Callable[[torch.device], LandmarkPoseEstimator]] = {"3ddfa": _tddfa_pose_judge}
PRIMARY_POSE_JUDGE = "3ddfa"
ANGLE_NAMES = ("yaw", "pitch", "roll")


def pose_floor(found: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> dict:
    """A pose judge's angles [N, 3] against exact labels [N, 3] (degrees): per angle the bias (mean error) and
    the mean absolute error; `mse`, the pose metric's unit (the mean over angles of the squared error), with
    its 95% bootstrap interval over images; and `mse_centred`, the same with each angle's bias removed (a bias
    common to both images of a pair cancels in the pose metric, the rest does not)."""
    err = np.asarray(found, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    bias = err.mean(axis=0)
    return {"images": len(err), "bias": dict(zip(ANGLE_NAMES, map(float, bias))),
            "mae": dict(zip(ANGLE_NAMES, map(float, np.abs(err).mean(axis=0)))),
            "mse": mean_interval((err ** 2).mean(axis=1)).to_dict(),
            "mse_centred": float(((err - bias) ** 2).mean())}


@torch.no_grad()
def render_pose_floor(judge: LandmarkPoseEstimator, count: int, res: int, seed: int, batch: int = 50,
                      pose_dist: str = "ffhq") -> dict:
    """`pose_floor` of a pose judge on `count` synthface renders of `seed` (their labels are exact)."""
    from genfields.devices import module_device
    from genfields.synthface import render_batch

    device = module_device(judge)
    found, labels = [], []
    for start in range(0, count, batch):
        faces = render_batch(min(batch, count - start), res=res, seed=seed, pose_dist=pose_dist, start_index=start)
        found.append(judge.pose(faces.images.to(device)).double().cpu())
        labels.append(faces.pose.double())
    return {**pose_floor(torch.cat(found), torch.cat(labels)), "renders": f"synthface seed {seed}, {res} px, "
            f"{pose_dist} poses"}


def judges_available(preset: str) -> bool:
    """Whether a perception preset has shipped judges."""
    return preset == "synth" and all((PERCEPTION_DIR / name / "model.safetensors").is_file() for name in JUDGES.values())


def load_judges(preset: str = "synth", device: str | torch.device = "cpu", pose: str | None = None) -> Judges:
    """The shipped judges of a perception preset (`synth`), plus the pose judge `pose` if named."""
    if pose is not None and pose not in POSE_JUDGES:
        raise ConfigError(f"unknown pose judge '{pose}' (known: {', '.join(POSE_JUDGES) or 'none yet'})")
    if preset != "synth":
        raise ConfigError(f"no judges for perception preset '{preset}' (judges exist for: synth)")
    judges = Judges(identity=load_network(JUDGES["identity"], role=ROLE),
                    landmarks=load_network(JUDGES["landmarks"], role=ROLE), names=dict(JUDGES))
    if pose is not None:
        net = POSE_JUDGES[pose](torch.device(device))
        net.is_judge = True
        judges.extra_pose[pose] = net
        judges.names[f"pose_{pose}"] = pose
    return judges.to(device)


def ship_judge(final: str | Path, name: str, dest_root: str | Path) -> Path:
    """Copy a train-perception run's `final/` to `dest_root/name` as a judge (role recorded, card updated)."""
    final, dest = Path(final), Path(dest_root) / name
    config = json.loads((final / "config.json").read_text())
    train = config["train"]
    check_disjoint(ViewSetSpec(train["ids"], train["views"], train["seed"], train["res"], train["uniform_pose_share"]))
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(final / "model.safetensors", dest / "model.safetensors")
    config["role"] = ROLE
    (dest / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (dest / "MODEL_CARD.md").write_text(model_card(config))
    return dest
