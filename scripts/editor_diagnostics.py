"""Why one editor scores higher on identity than another: where identity is lost, and what else changes.

    python scripts/editor_diagnostics.py EDITOR [EDITOR ...] [--identities 40] [--attributes 5]

Edits every one of N identities towards each of M held-out attribute renders (the evaluation's
identities and renders) and prints, per editor:
- identity: cosine similarity of E_id(I_out) and E_id(I_id), as in `genfields evaluate`;
- identity by pose change: the same, for the third of pairs with the smallest and the largest
  difference of the Euler angles between I_id and I_attr (where edits have the most to do);
- collapse: mean cosine similarity of E_id between outputs of *different* identities edited
  towards the same attribute image, beside that of the identity images themselves (a W mapper
  that maps everything to a narrow region of W raises it);
- border change: mean absolute change of the 4-pixel image border (background) from I_id, in
  [0, 1] units, and the share of it that moved towards I_attr's border.
"""

from __future__ import annotations

import argparse
import json

import torch

from genfields.editing import load_editor
from genfields.editing.dataset import attribute_images
from genfields.editing.evaluate import EVAL_STREAM
from genfields.editing.presets import get_preset
from genfields.training import step_generator


def border(images: torch.Tensor, width: int = 4) -> torch.Tensor:
    """The pixels of a `width`-pixel frame of each image, flattened: [B, n]."""
    mask = torch.ones(images.shape[-2:], dtype=torch.bool)
    mask[width:-width, width:-width] = False
    return images[..., mask].flatten(1)


def off_diagonal_mean(similarity: torch.Tensor) -> float:
    n = similarity.shape[0]
    return float((similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1)))


@torch.no_grad()
def diagnose(name: str, identities: int, attributes: int, seed: int = 0) -> dict:
    editor = load_editor(name)
    preset = get_preset(editor.meta.get("preset", "synth64"))
    res = editor.G.config.img_resolution
    z = torch.randn(identities, editor.G.z_dim, generator=step_generator(seed, 0, stream=EVAL_STREAM))
    attrs = attribute_images(preset.attributes, attributes, res, preset.eval_render_seed + seed)
    r = editor.edit(z.repeat_interleave(attributes, 0), attrs.repeat(identities, 1, 1, 1)).cpu()
    cos = torch.nn.functional.cosine_similarity
    identity = cos(r.identity, r.output_identity, dim=-1)
    pose_change = (r.attribute.pose - r.identity_pose.pose).norm(dim=1)
    order = pose_change.argsort()
    third = len(order) // 3
    out_emb = torch.nn.functional.normalize(r.output_identity, dim=-1).view(identities, attributes, -1)
    id_emb = torch.nn.functional.normalize(r.identity[::attributes], dim=-1)
    collapse = sum(off_diagonal_mean(out_emb[:, a] @ out_emb[:, a].T) for a in range(attributes)) / attributes
    b_id, b_out, b_attr = border(r.identity_image), border(r.image), border(r.attribute_image)
    moved = (b_out - b_id).abs().mean(dim=1)
    towards = ((b_attr - b_id).abs() - (b_attr - b_out).abs()).mean(dim=1) / moved.clamp_min(1e-8)
    return {"editor": name, "pairs": identities * attributes,
            "identity": float(identity.mean()),
            "identity_small_pose_change": float(identity[order[:third]].mean()),
            "identity_large_pose_change": float(identity[order[-third:]].mean()),
            "pose_change_deg": [float(pose_change[order[:third]].mean()), float(pose_change[order[-third:]].mean())],
            "output_cross_identity_similarity": collapse,
            "identity_cross_identity_similarity": off_diagonal_mean(id_emb @ id_emb.T),
            "border_change": float(moved.mean()), "border_towards_attribute": float(towards.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("editors", nargs="+", help="Shipped editor names or editor folders.")
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--attributes", type=int, default=5)
    args = parser.parse_args()
    for name in args.editors:
        print(json.dumps(diagnose(name, args.identities, args.attributes)))


if __name__ == "__main__":
    main()
