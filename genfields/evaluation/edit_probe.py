"""The edit-readiness probe: can a generator's style space be moved without leaving the face manifold?

A generator can score a good FD on its own samples and still render a moved S as a ghosted second
head. The probe measures both sides, for each generator of one run on the same draws:

- realism of samples: FD and KID (unbiased at any N) to renders in the FD feature network, and the share of samples in which a
  real face detector (dlib's CNN, trained by its authors on photos; `face_detection_scores`) finds a
  face with its mean confidence, against the same on renders;
- smoothness: perceptual path length in W at the end points (StyleGAN2's `ppl_wend`: t = 0, epsilon
  1e-4, distances / epsilon^2, the 1st-99th percentile mean), with the distance of a judge network's
  stages (`genfields.perception.distance`), not LPIPS, so that no loss network measures it;
- edits: the per-pair optimum (dS optimised for each pair with the `paper` editor's losses, on this
  generator) on `edit_pairs` pairs: its pose error by the real 3DDFA_V2 against 3DDFA_V2's floor on
  renders, and the realism of the edits over that of the unedited identities (FD, KID and detector
  ratios: at a couple of hundred pairs FD is dominated by its small-sample bias, KID is not); a contact
  sheet of the first edits (identity | attribute | edit) to look at.

3DDFA_V2's floor is measured twice on the edits' own attribute renders: against the renderer's
labels (`pose_floor_labels`; it carries 3DDFA_V2's constant pitch offset), and between two renders of
different people in the same pose, expression and light (`pose_floor_pairs`: what the pose metric of a
perfect edit would be, since it compares two images judged by the same network). The goal is read
against the pair floor (the metric's own floor), both are printed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genfields.errors import ConfigError
from genfields.imageio import make_grid, save_image
from genfields.perception import PerceptionSet
from genfields.perception.distance import stage_distance
from genfields.perception.judges import Judges
from genfields.stylegan2.network import Generator, generator_batches

from genfields.perception import realism

from .gan_quality import Described, describe, fd, render_batches

PROBE_FILE = "edit_probe.jsonl"
PPL_DISTANCE_NET = "landmarks"  # the judge whose stages measure the path length
SHEET_COLUMNS = 4  # pairs per row of the contact sheet (three images each)


@dataclass(frozen=True)
class EditProbeConfig:
    """Sizes and seeds of one probe (saved with each row, so rows measured alike can be compared)."""

    samples: int = 2000  # GAN samples and renders for FD
    detector: int = 500  # of those, how many the face detector sees
    ppl_pairs: int = 2000
    ppl_eps: float = 1e-4
    edit_pairs: int = 200
    optimum_steps: int = 60
    editor: str = "synth64-paper"  # whose losses and perception networks the per-pair optimum uses
    preset: str = "synth64"  # the editing preset: attribute renders and FD reference of the edits
    seed: int = 0
    sheet: int = 24  # edits on the contact sheet

    def __post_init__(self) -> None:
        for name in ("samples", "edit_pairs"):
            if getattr(self, name) < 2:
                raise ConfigError(f"the edit probe needs {name} >= 2 (FD needs a covariance)")
        for name in ("detector", "ppl_pairs", "optimum_steps", "sheet"):
            if getattr(self, name) < 1:
                raise ConfigError(f"the edit probe needs {name} >= 1")
        if self.detector > self.samples:
            raise ConfigError(f"the detector sees a part of the samples: detector {self.detector} > "
                              f"samples {self.samples}")


@dataclass
class ProbeReference:
    """What every generator of one probe run is compared with, measured once."""

    renders: Described
    detector: np.ndarray | None  # detector confidences on the first `detector` renders; None: no dlib
    pose_floor_labels: float
    pose_floor_pairs: float


def detector_scores(images: torch.Tensor) -> np.ndarray | None:
    """The real face detector's confidences, or None when its backend (the `real` extra) is missing."""
    from genfields.perception.real import BackendUnavailableError, face_detection_scores

    try:
        return face_detection_scores(images)
    except BackendUnavailableError:
        return None


def _first_images(batches, n: int) -> torch.Tensor:
    images, count = [], 0
    for batch in batches:
        images.append(batch)
        count += len(batch)
        if count >= n:
            break
    return torch.cat(images)[:n]


def pose_floors(judges: Judges, preset, count: int, seed: int) -> tuple[float, float]:
    """3DDFA_V2's pose MSE on the preset's attribute renders: against the renderer's labels, and between
    each render and a render of another person in the same pose, expression and light."""
    from genfields.synthface import FaceRenderer, sample_params

    judge = judges.extra_pose["3ddfa"]
    params = sample_params(count, seed=preset.eval_render_seed + seed, pose_dist="ffhq")
    others = sample_params(count, seed=preset.eval_render_seed + seed, start_index=count, pose_dist="ffhq")
    renderer = FaceRenderer(preset.resolution)
    with torch.no_grad():
        seen = judge.pose(renderer.render(params).images).double()
        twin = judge.pose(renderer.render(params.replace(identity=others.identity)).images).double()
    labels = (seen - params.pose.double()).square().mean(dim=1).mean()
    pairs = (seen - twin).square().mean(dim=1).mean()
    return float(labels), float(pairs)


def probe_reference(cfg: EditProbeConfig, nets: PerceptionSet, judges: Judges, res: int) -> ProbeReference:
    """Renders' FD features and detector confidences, and 3DDFA_V2's floors."""
    from genfields.editing.presets import get_preset

    renders = describe(render_batches(cfg.samples, res, seed=1), nets)
    detected = detector_scores(_first_images(render_batches(cfg.detector, res, seed=1), cfg.detector))
    floor_labels, floor_pairs = pose_floors(judges, get_preset(cfg.preset), cfg.edit_pairs, cfg.seed)
    return ProbeReference(renders, detected, floor_labels, floor_pairs)


@torch.no_grad()
def path_length(G: Generator, distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pairs: int, seed: int,
                eps: float = 1e-4, batch: int = 50) -> float:
    """StyleGAN2's perceptual path length in W at the end points: for w0, w1 mapped from two z, the
    distance between the images of w0 and lerp(w0, w1, eps), over eps^2; the mean of the values between
    the 1st and 99th percentiles. Constant noise, no truncation, float32."""
    gen = torch.Generator().manual_seed(seed)
    values = []
    for start in range(0, pairs, batch):
        n = min(batch, pairs - start)
        w = G.mapping(torch.randn(2 * n, G.z_dim, generator=gen))
        ws = torch.cat([w[:n], w[:n].lerp(w[n:], eps)])
        images = G.synthesize(G.styles(ws), ws, noise_mode="const").float()
        values.append(distance(images[:n], images[n:]).double() / eps ** 2)
    v = torch.cat(values).numpy()
    lo, hi = np.percentile(v, 1, method="lower"), np.percentile(v, 99, method="higher")
    return float(v[(v >= lo) & (v <= hi)].mean())


class _EditImages:
    """Keeps the edits and unedited identities of an evaluation, and the first pairs for a contact sheet."""

    def __init__(self, sheet: int):
        self.sheet = sheet
        self.edits: list[torch.Tensor] = []
        self.unedited: list[torch.Tensor] = []
        self.tiles: list[torch.Tensor] = []

    def __call__(self, inputs, result) -> None:
        self.edits.append(result.image.detach().float().cpu())
        self.unedited.append(inputs.identity_image.detach().float().cpu())
        for i in range(len(result.image)):
            if len(self.tiles) >= 3 * self.sheet:
                break
            self.tiles += [inputs.identity_image[i].cpu(), inputs.attribute_image[i].cpu(),
                           result.image[i].detach().float().cpu()]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _mean(scores: np.ndarray | None) -> float | None:
    return None if scores is None else float(scores.mean())


def _rate(scores: np.ndarray | None) -> float | None:
    return None if scores is None else float((scores > 0).mean())


def probe_generator(model: str, cfg: EditProbeConfig, nets: PerceptionSet, judges: Judges,
                    reference: ProbeReference, sheet_path: str | Path | None = None, progress: bool = False) -> dict:
    """Every probe measure of the generator `model` (a shipped name, folder or `random:` spec)."""
    from genfields.editing.editor import load_editor
    from genfields.editing.evaluate import evaluate_editor
    from genfields.editing.pair_optimum import PairOptimumConfig, PairOptimumEditor
    from genfields.editing.presets import get_preset

    editor = load_editor(cfg.editor, model=model)
    G = editor.G
    samples = describe(generator_batches(G, cfg.samples, cfg.seed), nets)
    detected = detector_scores(_first_images(generator_batches(G, cfg.detector, cfg.seed), cfg.detector))
    distance = functools.partial(stage_distance, getattr(judges, PPL_DISTANCE_NET))
    ppl = path_length(G, distance, cfg.ppl_pairs, cfg.seed, cfg.ppl_eps)

    kept = _EditImages(cfg.sheet)
    optimum = PairOptimumEditor(editor, PairOptimumConfig(steps=cfg.optimum_steps))
    edits = evaluate_editor(optimum, get_preset(cfg.preset), pairs=cfg.edit_pairs, seed=cfg.seed,
                            judges=judges, on_batch=kept, progress=progress)
    if sheet_path is not None:
        save_image(make_grid(torch.stack(kept.tiles), cols=3 * SHEET_COLUMNS), sheet_path)
    det_edits = detector_scores(torch.cat(kept.edits))
    det_unedited = detector_scores(torch.cat(kept.unedited))
    method, unedited = edits["method"], edits["unedited"]
    return {
        "fd": fd(samples, reference.renders),
        "kid": realism.kid_value(samples.features, reference.renders.features),
        "ppl": ppl,
        "detector_rate": _rate(detected), "detector_score": _mean(detected),
        "detector_score_vs_renders": _ratio(_mean(detected), _mean(reference.detector)),
        "edit_pose_3ddfa": method["pose_3ddfa"],
        "edit_pose_3ddfa_vs_floor": _ratio(method["pose_3ddfa"], reference.pose_floor_pairs),
        "edit_pose_judge": method["pose"], "edit_identity_judge": method["identity"],
        "edit_fd": method["fd"], "unedited_fd": unedited["fd"],
        "edit_fd_ratio": _ratio(method["fd"], unedited["fd"]),
        "edit_kid": method["kid"], "unedited_kid": unedited["kid"],
        "edit_kid_ratio": _ratio(method["kid"], unedited["kid"]),
        "edit_detector_score": _mean(det_edits), "unedited_detector_score": _mean(det_unedited),
        "edit_detector_ratio": _ratio(_mean(det_edits), _mean(det_unedited)),
        "edit_detector_rate": _rate(det_edits), "unedited_detector_rate": _rate(det_unedited),
    }


def reference_row(reference: ProbeReference) -> dict:
    """The renders' own row of the probe table."""
    return {"detector_rate": _rate(reference.detector), "detector_score": _mean(reference.detector),
            "pose_floor_labels": reference.pose_floor_labels, "pose_floor_pairs": reference.pose_floor_pairs}


def run_probe(models: dict[str, str], cfg: EditProbeConfig, outdir: str | Path, progress: bool = True) -> list[dict]:
    """Probe each generator of `models` (label -> model spec) against one reference; append each row to
    `outdir/edit_probe.jsonl` (with the config) and write its contact sheet beside it. Returns the rows,
    the renders' first."""
    from tqdm import tqdm

    from genfields.editing.editor import editor_folder
    from genfields.perception import load_judges, load_perception
    from genfields.stylegan2 import load_generator

    if not models:
        raise ConfigError("the edit probe needs at least one generator")
    meta = json.loads((editor_folder(cfg.editor) / "config.json").read_text())
    nets = load_perception(meta["perception"])
    judges = load_judges(meta["perception"], pose="3ddfa")
    outdir = Path(outdir)
    (outdir / "edit_probe").mkdir(parents=True, exist_ok=True)
    resolutions = {label: load_generator(model).config.img_resolution for label, model in models.items()}
    if len(set(resolutions.values())) != 1:
        raise ConfigError(f"the generators of one probe must share a resolution, got {resolutions}")
    res = next(iter(resolutions.values()))
    reference = probe_reference(cfg, nets, judges, res)
    rows = [{"generator": "renders", **reference_row(reference), "config": asdict(cfg)}]
    for label, model in tqdm(models.items(), desc="edit probe", unit="generator", disable=not progress):
        sheet = outdir / "edit_probe" / f"{label}_edits.png"
        rows.append({"generator": label, "model": str(model),
                     **probe_generator(model, cfg, nets, judges, reference, sheet, progress),
                     "config": asdict(cfg)})
    with open(outdir / PROBE_FILE, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return rows


# --- goals: fixed before the numbers (issue "A generator worthy of the paper's premise") -----------------
@dataclass(frozen=True)
class ProbeGoal:
    """One goal of a probed generator, read against the baseline generator measured in the same run."""

    text: str
    key: str
    bound: Callable[[dict, dict, dict], float | None]  # (row, baseline row, renders row) -> the bound
    at_most: bool

    def check(self, row: dict, baseline: dict, renders: dict) -> tuple[float | None, float | None, bool | None]:
        """(value, bound, met); None where the value or the bound is missing (no detector)."""
        value, bound = row.get(self.key), self.bound(row, baseline, renders)
        if value is None or bound is None:
            return value, bound, None
        return value, bound, (value <= bound) if self.at_most else (value >= bound)


PROBE_GOALS = (
    ProbeGoal("FD to renders <= 1/3 of the baseline's", "fd", lambda r, b, _: b["fd"] / 3, True),
    ProbeGoal("KID to renders <= 1/3 of the baseline's", "kid", lambda r, b, _: b["kid"] / 3, True),
    ProbeGoal("PPL <= 1/2 of the baseline's", "ppl", lambda r, b, _: b["ppl"] / 2, True),
    ProbeGoal("detector score on samples >= on renders", "detector_score", lambda r, b, x: x["detector_score"], False),
    ProbeGoal("edits' FD <= 1.5x the unedited identities'", "edit_fd_ratio", lambda r, b, _: 1.5, True),
    ProbeGoal("edits' KID <= 1.5x the unedited identities'", "edit_kid_ratio", lambda r, b, _: 1.5, True),
    ProbeGoal("edits' detector score >= 0.95x the unedited identities'", "edit_detector_ratio",
              lambda r, b, _: 0.95, False),
    ProbeGoal("per-pair optimum's 3DDFA_V2 pose error <= 2x 3DDFA_V2's floor (pairs of renders)", "edit_pose_3ddfa",
              lambda r, b, x: 2 * x["pose_floor_pairs"], True),
)


def probe_goals(rows: list[dict], baseline: str) -> dict[str, list[tuple[str, float | None, float | None, bool | None]]]:
    """For every probed generator but the baseline: each goal's (text, value, bound, met)."""
    by_label = {row["generator"]: row for row in rows}
    if baseline not in by_label or "renders" not in by_label:
        raise ConfigError(f"the goals need the renders' row and the baseline '{baseline}' in the same probe run")
    base, renders = by_label[baseline], by_label["renders"]
    return {label: [(goal.text, *goal.check(row, base, renders)) for goal in PROBE_GOALS]
            for label, row in by_label.items() if label not in ("renders", baseline)}


TABLE_COLUMNS = (  # (key, heading, format)
    ("fd", "FD", "{:.2f}"), ("kid", "KID", "{:.4f}"), ("ppl", "PPL", "{:.1f}"), ("detector_rate", "det. rate", "{:.3f}"),
    ("detector_score", "det. score", "{:.3f}"), ("edit_pose_3ddfa", "edit pose 3DDFA", "{:.2f}"),
    ("edit_pose_judge", "edit pose judge", "{:.2f}"), ("edit_identity_judge", "edit identity", "{:.3f}"),
    ("edit_fd_ratio", "edit FD / unedited", "{:.2f}"), ("edit_kid_ratio", "edit KID / unedited", "{:.2f}"),
    ("edit_detector_ratio", "edit det. / unedited", "{:.3f}"),
    ("pose_floor_pairs", "3DDFA floor (pairs)", "{:.2f}"), ("pose_floor_labels", "3DDFA floor (labels)", "{:.2f}"),
)


def table_markdown(rows: list[dict]) -> str:
    """The probe's rows as a markdown table (blank where a measure does not apply)."""
    head = "| generator | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "" for key, _, fmt in TABLE_COLUMNS]
        lines.append(f"| {row['generator']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
