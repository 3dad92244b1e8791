"""The README's main job on the shipped models: a few identities edited towards rendered faces."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genfields.imageio import save_image
from genfields.stylegan2 import seed_to_z

from .dataset import attribute_images
from .editor import load_editor
from .evaluate import result_metrics
from .panel import edit_grid
from .presets import get_preset

DEMO_IDENTITIES = 4
DEMO_ATTRIBUTES = 4


def run_demo(outdir: str | Path, seed: int = 0, editor: str = "synth64", model: str | None = None,
             device: str | torch.device = "cpu") -> dict:
    """Edit identities seed..seed+3 towards 4 rendered faces on `device`; write demo_edits.png and return mean
    metrics."""
    outdir = Path(outdir)
    ed = load_editor(editor, model=model, device=device)
    preset = get_preset(ed.meta.get("preset", "synth64"))
    res = ed.G.config.img_resolution
    z = torch.cat([seed_to_z(s, ed.G.z_dim) for s in range(seed, seed + DEMO_IDENTITIES)])
    attrs = attribute_images(preset.attributes, DEMO_ATTRIBUTES, res, preset.eval_render_seed + seed)
    result = ed.edit(z.repeat_interleave(DEMO_ATTRIBUTES, 0), attrs.repeat(DEMO_IDENTITIES, 1, 1, 1)).cpu()
    path = save_image(edit_grid(result.identity_image[::DEMO_ATTRIBUTES], attrs, result.image), outdir / "demo_edits.png")
    metrics = {side: {k: float(v.mean()) for k, v in m.items()} for side, m in result_metrics(result).items()}
    (outdir / "demo_edits.json").write_text(json.dumps({"panel": path.name, **metrics}, indent=1) + "\n")
    return {"panel": str(path), **metrics}
