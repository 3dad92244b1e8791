"""The paper's editing metrics (Sec. 4.1) on pairs of generated identities and real attribute images.

- identity: cosine similarity of E_id(I_id) and E_id(I_out) (higher is better);
- expression: mean Euclidean distance of the 68 landmarks of I_attr and I_out, divided by the
  image resolution (lower is better);
- pose: mean squared error of yaw, pitch and roll of I_attr and I_out, in degrees^2 (lower);
- fd: Fréchet distance of the outputs' FD features to a real set (renders for synth64): FD, not
  FID, unless the feature network is InceptionV3.
The `unedited` baseline scores the identity image itself as if it were the output.
Edits run on the editor's device (with its `amp` setting); the FD features always run in float32,
so that FD/FID stay comparable with and without mixed precision.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from genfields.devices import resolve_device
from genfields.perception import LandmarksPose, feature_statistics, frechet_distance
from genfields.training import step_generator

from .dataset import attribute_images
from .editor import Editor, EditResult
from .presets import EditingPreset

EVAL_STREAM = 1  # the random stream of evaluation identities (the generated set uses another)


def pair_metrics(id_embedding: torch.Tensor, out_embedding: torch.Tensor, attribute: LandmarksPose,
                 output: LandmarksPose, resolution: int) -> dict[str, torch.Tensor]:
    """Per-pair identity, expression and pose of an output against its identity and attribute images."""
    return {"identity": torch.nn.functional.cosine_similarity(id_embedding, out_embedding, dim=-1),
            "expression": (attribute.landmarks - output.landmarks).norm(dim=-1).mean(dim=1) / resolution,
            "pose": (attribute.pose - output.pose).square().mean(dim=1)}


def result_metrics(result: EditResult) -> dict[str, dict[str, torch.Tensor]]:
    """Per-pair metrics of the edit (`method`) and of the unedited identity image (`unedited`)."""
    res = result.image.shape[-1]
    return {"method": pair_metrics(result.identity, result.output_identity, result.attribute, result.output, res),
            "unedited": pair_metrics(result.identity, result.identity, result.attribute, result.identity_pose, res)}


def fd_features(editor: Editor, images: torch.Tensor) -> torch.Tensor:
    """FD features (float32, never autocast) of images, computed on the editor's device, returned on the CPU."""
    return editor.nets.features(images.to(editor.device)).float().cpu()


@torch.no_grad()
def evaluate_editor(editor: Editor, preset: EditingPreset, pairs: int = 1000, seed: int = 0, batch: int = 50,
                    layers: str | None = None, gf: str | None = None, progress: bool = False,
                    device: str | torch.device | None = None) -> dict:
    """Mean metrics of `pairs` edits and of the unedited identities, and FD of both to real images.

    Runs on the editor's device; `device` moves the editor there first (in place). Identities and
    attribute images are drawn on the CPU, so the pairs do not depend on the device.
    """
    if device is not None:
        editor.to(resolve_device(device))
    G, res = editor.G, editor.G.config.img_resolution
    z = torch.randn(pairs, G.z_dim, generator=step_generator(seed, 0, stream=EVAL_STREAM))
    sums = {"method": {}, "unedited": {}}
    features = {"method": [], "unedited": []}
    for start in tqdm(range(0, pairs, batch), disable=not progress, unit="batch", desc="evaluate"):
        n = min(batch, pairs - start)
        attrs = attribute_images(preset.attributes, n, res, preset.eval_render_seed + seed, start)
        result = editor.edit(z[start:start + n], attrs, layers=layers, gf=gf)
        for side, metrics in result_metrics(result).items():
            for k, v in metrics.items():
                sums[side][k] = sums[side].get(k, 0.0) + float(v.cpu().double().sum())  # no float64 on MPS
        features["method"].append(fd_features(editor, result.image))
        features["unedited"].append(fd_features(editor, result.identity_image))
    real = torch.cat([fd_features(editor, attribute_images(preset.attributes, min(batch, pairs - s), res,
                                                           preset.fd_render_seed + seed, s))
                      for s in range(0, pairs, batch)])
    real_stats = feature_statistics(real)
    out = {}
    for side in ("method", "unedited"):
        out[side] = {k: v / pairs for k, v in sums[side].items()}
        out[side]["fd"] = frechet_distance(*feature_statistics(torch.cat(features[side])), *real_stats)
    return out
