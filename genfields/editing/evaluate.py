"""The paper's editing metrics (Sec. 4.1) on pairs of generated identities and real attribute images.

- identity: cosine similarity of E_id(I_id) and E_id(I_out) (higher is better);
- expression: mean Euclidean distance of the 68 landmarks of I_attr and I_out, divided by the
  image resolution (lower is better);
- pose: mean squared error of yaw, pitch and roll of I_attr and I_out, in degrees^2 (lower);
- fd: Fréchet distance of the outputs' FD features to a real set (renders for synth64): FD, not
  FID, unless the feature network is InceptionV3;
- kid: the kernel inception distance of the same features (unbiased at small N; `perception.realism`).
The `unedited` baseline scores the identity image itself as if it were the output.

Judges and loss networks: with `judges` (`genfields.perception.judges`, networks nothing is trained
against) `identity`, `expression` and `pose` are the judges' scores, and `identity_loss_net`,
`expression_loss_net`, `pose_loss_net` the same metrics by the networks the editor was trained
against (and takes as inputs), so the gap between the two is visible. Without judges the plain
keys are the loss networks' too, and `judged_by` says so.

Tearing (with judges): `landmark_disagreement` is the mean distance between the judge's and the loss
network's 68 landmarks on the same image, divided by the resolution, for the outputs (`method`) and
for the unedited identity images (`unedited`: two networks trained apart never agree exactly, even
on clean generated faces); `method.tearing` is the excess, output minus unedited. An editor that
moves the loss network's landmarks onto the attribute image's by tearing the face, rather than by
turning and reshaping it, leaves the judge's landmarks behind, so the excess grows (the paper's
Figure 9). `landmark_disagreement_attribute` is the same distance on the attribute renders.

Pose leak: per angle (yaw, pitch, roll), the output angles are regressed on the attribute's and the
identity's angles (all by the judge), out = c + b_attr * attr + b_id * id, least squares over the
pairs. A perfect pose transfer has b_attr = 1, b_id = 0; an edit that keeps part of the identity's
own head pose has b_id > 0 (the unedited image has b_id = 1, b_attr = 0).
Per-pair values: `evaluate_pairs` also returns every per-pair metric of both sides, by every judge and
loss network, the FD features of the outputs, the unedited images and the real set, and the judge's
angles (`PairValues`); `PairValues.save` writes them as one compressed NumPy file (`<json stem>.pairs.npz`
beside `genfields evaluate --out`'s JSON), and `PairValues.intervals` gives each mean, FD and KID its 95%
bootstrap interval (pairs resampled; `perception.bootstrap`, `perception.realism`).

Edits run on the editor's device (with its `amp` setting); the FD features always run in float32,
so that FD/FID stay comparable with and without mixed precision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from genfields.errors import ConfigError
from genfields.devices import resolve_device
from genfields.perception import FeatureNetwork, LandmarksPose, feature_statistics, frechet_distance
from genfields.perception import realism
from genfields.perception.bootstrap import RESAMPLES, Interval, interval_from_draws, mean_interval, paired_difference
from genfields.perception.judges import Judges
from genfields.training import step_generator

from .dataset import attribute_images
from .editor import Editor, EditInputs, EditResult
from .presets import EditingPreset

EVAL_STREAM = 1  # the random stream of evaluation identities (the generated set uses another)
ANGLES = ("yaw", "pitch", "roll")
LOSS_NET_SUFFIX = "_loss_net"


def pair_metrics(id_embedding: torch.Tensor, out_embedding: torch.Tensor, attribute: LandmarksPose,
                 output: LandmarksPose, resolution: int) -> dict[str, torch.Tensor]:
    """Per-pair identity, expression and pose of an output against its identity and attribute images."""
    return {"identity": torch.nn.functional.cosine_similarity(id_embedding, out_embedding, dim=-1),
            "expression": (attribute.landmarks - output.landmarks).norm(dim=-1).mean(dim=1) / resolution,
            "pose": (attribute.pose - output.pose).square().mean(dim=1)}


def landmark_disagreement(judge: torch.Tensor, loss_net: torch.Tensor, resolution: int) -> torch.Tensor:
    """Per image: the mean Euclidean distance between two networks' landmarks [B, 68, 2] of the same
    images, divided by the resolution (the unit of the expression metric)."""
    return (judge - loss_net).norm(dim=-1).mean(dim=1) / resolution


def result_metrics(result: EditResult) -> dict[str, dict[str, torch.Tensor]]:
    """Per-pair metrics of the edit (`method`) and of the unedited identity image (`unedited`)."""
    res = result.image.shape[-1]
    return {"method": pair_metrics(result.identity, result.output_identity, result.attribute, result.output, res),
            "unedited": pair_metrics(result.identity, result.identity, result.attribute, result.identity_pose, res)}


def judge_inputs(judges: Judges, inputs: EditInputs | EditResult) -> dict:
    """What the judges see in the identity and attribute images of edits (the same for every editor)."""
    return {"identity": judges.identity(inputs.identity_image),
            "attribute": judges.landmarks(inputs.attribute_image),
            "identity_pose": judges.landmarks(inputs.identity_image),
            "extra_pose": {name: (net.pose(inputs.attribute_image), net.pose(inputs.identity_image))
                           for name, net in judges.extra_pose.items()}}


def judge_metrics(judges: Judges, result: EditResult,
                  seen: dict | None = None) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Per-pair metrics of `result` by the judges (method and unedited, with the judge's landmark
    disagreement with the loss network on the output and on the identity image), given what they have
    `seen` in its inputs (`judge_inputs`, computed here if not given); and the judges' angles of the
    attribute, identity and output images (for the pose leak) with the landmark disagreement on the
    attribute images (`attribute_disagreement`)."""
    res = result.image.shape[-1]
    seen = seen if seen is not None else judge_inputs(judges, result)
    emb_id, attr, ident = seen["identity"], seen["attribute"], seen["identity_pose"]
    emb_out, out = judges.identity(result.image), judges.landmarks(result.image)
    metrics = {"method": pair_metrics(emb_id, emb_out, attr, out, res),
               "unedited": pair_metrics(emb_id, emb_id, attr, ident, res)}
    metrics["method"]["landmark_disagreement"] = landmark_disagreement(out.landmarks, result.output.landmarks, res)
    metrics["unedited"]["landmark_disagreement"] = landmark_disagreement(ident.landmarks,
                                                                         result.identity_pose.landmarks, res)
    for name, net in judges.extra_pose.items():
        a, i = seen["extra_pose"][name]
        o = net.pose(result.image)
        metrics["method"][f"pose_{name}"] = (a - o).square().mean(dim=1)
        metrics["unedited"][f"pose_{name}"] = (a - i).square().mean(dim=1)
    return metrics, {"attribute": attr.pose, "identity": ident.pose, "output": out.pose,
                     "attribute_disagreement": landmark_disagreement(attr.landmarks, result.attribute.landmarks, res)}


def pose_leak(attribute: np.ndarray, identity: np.ndarray, output: np.ndarray) -> dict[str, dict[str, float]]:
    """Per angle, least squares out = c + b_attr * attr + b_id * id over pairs ([N, 3] arrays, degrees).

    Returns {angle: {b_attr, b_id, intercept, r2}}; needs at least 4 pairs."""
    if len(output) < 4:
        raise ValueError("the pose-leak regression needs at least 4 pairs")
    fit = {}
    for k, angle in enumerate(ANGLES):
        X = np.stack([np.ones(len(output)), attribute[:, k], identity[:, k]], axis=1).astype(np.float64)
        y = output[:, k].astype(np.float64)
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ coef
        total = ((y - y.mean()) ** 2).sum()
        fit[angle] = {"b_attr": float(coef[1]), "b_id": float(coef[2]), "intercept": float(coef[0]),
                      "r2": float(1 - (resid ** 2).sum() / total) if total > 0 else 1.0}
    return fit


def fd_features(editor: Editor, images: torch.Tensor) -> torch.Tensor:
    """FD features (float32, never autocast) of images, computed on the editor's device, returned on the CPU."""
    return editor.nets.features(images.to(editor.device)).float().cpu()


@dataclass
class SharedPairs:
    """The editor-independent half of evaluations on one set of pairs: each batch's `EditInputs`, what
    the judges see in them and the unedited images' FD features, and the real set's FD statistics.
    Passed to `evaluate_editor` for several editors, it is computed by the first and reused by the
    next ones whose pairs, generator, truncation, perception networks and judges are the same; any
    other evaluation starts it afresh. Results are identical with and without it; it only saves time."""

    key: tuple | None = None
    batches: dict[int, dict] = field(default_factory=dict)
    real_stats: tuple | None = None
    real_features: dict[str, np.ndarray] | None = None

    def bind(self, key: tuple) -> None:
        """Keep what is stored if it was made under `key`, else clear it."""
        if key != self.key:
            self.key, self.batches, self.real_stats, self.real_features = key, {}, None, None


PAIRS_SUFFIX = ".pairs.npz"
SIDES = ("method", "unedited")
REALISM = "_realism"  # suffix of the independent realism network's features and distances (`fd_realism`)


@dataclass
class PairValues:
    """Every per-pair value of one evaluation: `metrics[side][name]` [N] for side method and unedited (the
    judges' and the loss networks' metrics, the landmark disagreement, extra pose judges), the FD features
    `features[name]` [N, D] of the outputs (`method`), the unedited images and the `real` set, and the angles
    [N, 3] (yaw, pitch, roll) of the attribute, identity and output images by the judge (or the loss network)."""

    metrics: dict[str, dict[str, np.ndarray]]
    features: dict[str, np.ndarray]
    angles: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    impostor: np.ndarray | None = None  # [N] identity similarity of pair i's identity image to pair i+1's
    _draws: dict = field(default_factory=dict, repr=False, compare=False)

    def realism_draws(self, kind: str, side: str = "method", resamples: int = realism.RESAMPLES,
                      seed: int = 0, space: str = "") -> tuple[float, np.ndarray]:
        """FD or KID (`kind`) of a side's features to the real set and its bootstrap draws, computed once: two
        evaluations of the same pairs drawn with one seed pair up (`realism.difference_of_draws`). `space`:
        "" for the FD network's features, `REALISM` for the independent realism network's."""
        key = (kind, side, resamples, seed, space)
        if key not in self._draws:
            draws = {"fd": realism.fd_draws, "kid": realism.kid_draws}[kind]
            self._draws[key] = draws(self.features[side + space], self.features["real" + space], resamples, seed)
        return self._draws[key]

    @property
    def realism_space(self) -> str:
        """The feature space realism is read in: the independent realism network's where measured, else ""."""
        return REALISM if "method" + REALISM in self.features else ""

    def identity_over_impostor(self, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
        """The outputs' identity similarity minus the similarity of another person (`impostor`), paired:
        above 0 beyond noise where the outputs still look like their identity (`rules.collapsed`)."""
        return paired_difference(self.metrics["method"]["identity"], self.impostor, resamples, seed=seed)

    @property
    def pairs(self) -> int:
        return len(next(iter(self.metrics["method"].values()))) if self.metrics["method"] else len(
            self.features["method"])

    def save(self, path: str | Path, features: bool = True) -> Path:
        """One compressed NumPy file: `metrics.<side>.<name>`, `features.<name>` (unless not `features`: they
        are most of the file), `angles.<name>`, `impostor` (float32) and `meta` (a JSON string)."""
        arrays = {f"metrics.{side}.{k}": v.astype(np.float32) for side in SIDES for k, v in self.metrics[side].items()}
        if features:
            arrays |= {f"features.{k}": v.astype(np.float32) for k, v in self.features.items()}
        arrays |= {f"angles.{k}": v.astype(np.float32) for k, v in self.angles.items()}
        if self.impostor is not None:
            arrays["impostor"] = self.impostor.astype(np.float32)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, meta=np.array(json.dumps(self.meta)), **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PairValues":
        with np.load(path, allow_pickle=False) as data:
            groups: dict[str, dict] = {"metrics": {side: {} for side in SIDES}, "features": {}, "angles": {}}
            for key in data.files:
                if key in ("meta", "impostor"):
                    continue
                kind, _, name = key.partition(".")
                if kind == "metrics":
                    side, _, name = name.partition(".")
                    groups["metrics"][side][name] = data[key].astype(np.float64)
                else:
                    groups[kind][name] = data[key].astype(np.float64)
            impostor = data["impostor"].astype(np.float64) if "impostor" in data.files else None
            return cls(**groups, meta=json.loads(str(data["meta"])), impostor=impostor)

    def intervals(self, resamples: int = RESAMPLES, realism_resamples: int = realism.RESAMPLES,
                  seed: int = 0, sides: tuple[str, ...] = SIDES) -> dict[str, dict[str, dict]]:
        """Each side's metric means, FD and KID (where the features were kept) with their 95% bootstrap
        intervals ({side: {name: Interval dict}}), and the method's tearing as the paired difference of its
        landmark disagreement and the unedited images', and its identity over the impostor level
        (`identity_over_impostor`)."""
        out: dict[str, dict[str, dict]] = {}
        for side in sides:
            out[side] = {k: mean_interval(v, resamples, seed=seed).to_dict() for k, v in self.metrics[side].items()}
            for kind in ("fd", "kid") if side in self.features else ():  # a file saved without features: none
                for space in dict.fromkeys(("", self.realism_space)):
                    draws = self.realism_draws(kind, side, realism_resamples, seed, space)
                    out[side][kind + space] = interval_from_draws(*draws, recentre=True).to_dict()
        if "method" not in sides:
            return out
        if self.impostor is not None:
            out["method"]["identity_over_impostor"] = self.identity_over_impostor(resamples, seed).to_dict()
        if "landmark_disagreement" in self.metrics["method"]:
            out["method"]["tearing"] = paired_difference(self.metrics["method"]["landmark_disagreement"],
                                                         self.metrics["unedited"]["landmark_disagreement"],
                                                         resamples, seed=seed).to_dict()
        return out


def impostor_similarity(embeddings: torch.Tensor) -> np.ndarray:
    """[N] cosine similarity of each identity embedding to the next one's (cyclic): another person, since the
    identities are drawn independently; the level below which an output keeps nothing of its identity."""
    return torch.nn.functional.cosine_similarity(embeddings, embeddings.roll(-1, 0), dim=-1).double().numpy()


def real_feature_sets(editor: Editor, preset: EditingPreset, pairs: int, seed: int, batch: int,
                      realism_net: FeatureNetwork | None) -> dict[str, np.ndarray]:
    """The real set's FD features (`real`) and, with `realism_net`, its realism features (`real_realism`)."""
    res = editor.G.config.img_resolution
    found: dict[str, list] = {"real": [], "real" + REALISM: []}
    for s in range(0, pairs, batch):
        images = attribute_images(preset.attributes, min(batch, pairs - s), res, preset.fd_render_seed + seed, s)
        found["real"].append(fd_features(editor, images))
        if realism_net is not None:
            found["real" + REALISM].append(realism_features(realism_net, images))
    return {k: torch.cat(v).double().numpy() for k, v in found.items() if v}


def pairs_path(json_path: str | Path) -> Path:
    """Where the per-pair values of an evaluation written to `json_path` go: `<stem>.pairs.npz` beside it."""
    path = Path(json_path)
    return path.with_name(path.stem + PAIRS_SUFFIX)


def weights_digest(*modules: torch.nn.Module) -> str:
    """A SHA-256 of the modules' parameters and buffers (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _shared_key(editor: Editor, preset: EditingPreset, pairs: int, seed: int, batch: int,
                judges: Judges | None, realism_net: FeatureNetwork | None = None,
                identities: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple:
    base = getattr(editor, "editor", editor)  # the per-pair optimum wraps an editor
    codes = None if identities is None else hashlib.sha256(identities[1].cpu().numpy().tobytes()).hexdigest()
    return (preset.name, pairs, seed, batch, base.truncation, base.amp, str(base.device), id(judges),
            id(realism_net), weights_digest(base.G, *base.nets.networks()), codes)


def realism_features(net: FeatureNetwork | None, images: torch.Tensor) -> torch.Tensor | None:
    """The independent realism network's features (float32, on the CPU) of images, or None without one."""
    if net is None:
        return None
    return net(images.to(next(net.parameters()).device)).float().cpu()


def evaluate_editor(editor: Editor, preset: EditingPreset, pairs: int = 1000, seed: int = 0, batch: int = 50,
                    layers: str | None = None, gf: str | None = None, progress: bool = False,
                    device: str | torch.device | None = None, judges: Judges | None = None,
                    shared: SharedPairs | None = None, realism_net: FeatureNetwork | None = None,
                    on_batch: Callable[[EditInputs, EditResult], None] | None = None,
                    identities: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Mean metrics of `pairs` edits and of the unedited identities, and FD and KID of both to real images;
    with `judges`, the metrics by the judges, by the loss networks (`*_loss_net`), the landmark disagreement
    of the two and its excess over the unedited images (`tearing`), and the pose leak. `shared` keeps the
    editor-independent half for the next editor evaluated on the same pairs (`SharedPairs`).
    `evaluate_pairs` returns the per-pair values too. With `realism_net` (the independent realism network,
    `perception.realism_net`), also `fd_realism` and `kid_realism` in its features. `on_batch` is called with
    each batch's inputs and edits (to keep images, e.g. for a contact sheet or another instrument).

    Runs on the editor's device; `device` moves the editor there first (in place). Identities and
    attribute images are drawn on the CPU, so the pairs do not depend on the device.
    """
    return evaluate_pairs(editor, preset, pairs, seed, batch, layers, gf, progress, device, judges, shared,
                          realism_net, on_batch, identities)[0]


@torch.no_grad()
def evaluate_pairs(editor: Editor, preset: EditingPreset, pairs: int = 1000, seed: int = 0, batch: int = 50,
                   layers: str | None = None, gf: str | None = None, progress: bool = False,
                   device: str | torch.device | None = None, judges: Judges | None = None,
                   shared: SharedPairs | None = None, realism_net: FeatureNetwork | None = None,
                   on_batch: Callable[[EditInputs, EditResult], None] | None = None,
                   identities: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[dict, PairValues]:
    """`evaluate_editor`'s results and the per-pair values behind them (`PairValues`). `identities` (w+ [N,
    num_ws, w_dim], S [N, dim S], e.g. inverted renders: `inverted_identities`) replace the seeded identities:
    pair i edits identity i (N >= pairs) towards the same attribute image as with seeded identities."""
    if identities is not None and len(identities[1]) < pairs:
        raise ConfigError(f"{pairs} pairs need as many identities; {len(identities[1])} were given")
    if device is not None:
        editor.to(resolve_device(device))
    if judges is not None:
        judges.to(editor.device)
    G, res = editor.G, editor.G.config.img_resolution
    if shared is not None:
        shared.bind(_shared_key(editor, preset, pairs, seed, batch, judges, realism_net, identities))
    if realism_net is not None:
        realism_net.to(editor.device)
    z = torch.randn(pairs, G.z_dim, generator=step_generator(seed, 0, stream=EVAL_STREAM))
    per_pair: dict[str, dict[str, list]] = {"method": {}, "unedited": {}}
    features = {"method": [], "unedited": [], "method" + REALISM: [], "unedited" + REALISM: []}
    angles = {"attribute": [], "identity": [], "output": []}
    attribute_disagreement, identity_embeddings = [], []
    for start in tqdm(range(0, pairs, batch), disable=not progress, unit="batch", desc="evaluate"):
        cached = shared.batches.get(start) if shared is not None else None
        if cached is None:
            n = min(batch, pairs - start)
            attrs = attribute_images(preset.attributes, n, res, preset.eval_render_seed + seed, start)
            inputs = (editor.prepare(z[start:start + n], attrs) if identities is None else
                      editor.prepare_codes(identities[0][start:start + n], identities[1][start:start + n], attrs))
            cached = {"inputs": inputs, "judged": judge_inputs(judges, inputs) if judges else None,
                      "unedited_features": fd_features(editor, inputs.identity_image),
                      "unedited_realism": realism_features(realism_net, inputs.identity_image)}
            if shared is not None:
                shared.batches[start] = cached
        result = editor.edit_prepared(cached["inputs"], layers=layers, gf=gf)
        if on_batch is not None:
            on_batch(cached["inputs"], result)
        by_side = result_metrics(result)
        if judges is not None:
            judged, seen = judge_metrics(judges, result, cached["judged"])
            attribute_disagreement.append(seen.pop("attribute_disagreement").cpu().double())
            by_side = {side: {**judged[side], **{k + LOSS_NET_SUFFIX: v for k, v in by_side[side].items()}}
                       for side in by_side}
        else:
            seen = {"attribute": result.attribute.pose, "identity": result.identity_pose.pose,
                    "output": result.output.pose}
        for k, v in seen.items():
            angles[k].append(v.cpu().double())
        identity_embeddings.append((cached["judged"]["identity"] if judges is not None else result.identity).cpu())
        for side, metrics in by_side.items():
            for k, v in metrics.items():
                per_pair[side].setdefault(k, []).append(v.cpu().double())  # no float64 on MPS
        features["method"].append(fd_features(editor, result.image))
        features["unedited"].append(cached["unedited_features"])
        if realism_net is not None:
            features["method" + REALISM].append(realism_features(realism_net, result.image))
            features["unedited" + REALISM].append(cached["unedited_realism"])
    real_stats = shared.real_stats if shared is not None else None
    reals = shared.real_features if shared is not None else None
    if real_stats is None or reals is None:
        reals = real_feature_sets(editor, preset, pairs, seed, batch, realism_net)
        real_stats = feature_statistics(reals["real"])
        if shared is not None:
            shared.real_stats, shared.real_features = real_stats, reals
    real = reals["real"]
    values = PairValues(metrics={side: {k: torch.cat(v).numpy() for k, v in per_pair[side].items()} for side in SIDES},
                        features={**{k: torch.cat(v).double().numpy() for k, v in features.items() if v}, **reals},
                        angles={k: torch.cat(v).numpy() for k, v in angles.items()},
                        impostor=impostor_similarity(torch.cat(identity_embeddings).float()))
    out = {}
    for side in SIDES:
        out[side] = {k: float(v.sum()) / pairs for k, v in values.metrics[side].items()}
        out[side]["fd"] = frechet_distance(*feature_statistics(values.features[side]), *real_stats)
        out[side]["kid"] = realism.kid_value(values.features[side], real)
        if realism_net is not None:
            for kind, value in (("fd", realism.fd_value), ("kid", realism.kid_value)):
                out[side][kind + REALISM] = value(values.features[side + REALISM], reals["real" + REALISM])
    if judges is not None:
        out["method"]["tearing"] = out["method"]["landmark_disagreement"] - out["unedited"]["landmark_disagreement"]
        out["landmark_disagreement_attribute"] = float(torch.cat(attribute_disagreement).sum()) / pairs
    a, i, o = (values.angles[k] for k in ("attribute", "identity", "output"))
    if pairs >= 4:
        out["pose_leak"] = {"method": pose_leak(a, i, o), "unedited": pose_leak(a, i, i)}
    out["judged_by"] = dict(judges.names) if judges is not None else "loss networks (no judges for this preset)"
    values.meta = {"pairs": pairs, "seed": seed, "preset": preset.name, "judged_by": out["judged_by"]}
    return out, values
