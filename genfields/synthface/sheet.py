"""Contact sheet of the synthetic face world (docs/synthface_contact_sheet.png).

    python -m genfields.synthface.sheet docs/synthface_contact_sheet.png

Rows: random identities; expression sweep; yaw sweep; pitch and roll sweeps; landmarks drawn
(green visible, red hidden) on a copy of the expression and pose cells.
"""

from __future__ import annotations

import sys

import torch
from PIL import Image, ImageDraw

from .params import FaceParams, sample_params
from genfields.imageio import to_uint8

from .render import FaceBatch, FaceRenderer

COLS = 7


def _rows(seed: int = 0) -> list[tuple[str, FaceParams]]:
    base = sample_params(1, seed=seed, pose_dist="frontal")
    base.identity[:, 10] = -0.3  # medium hair so the outline shows
    base.light[:] = torch.tensor([-35.0, 25.0, 0.3, 0.0])
    rep = lambda p: FaceParams(*(t.repeat(COLS, 1) for t in (p.identity, p.expression, p.pose, p.light)))
    ids = sample_params(COLS, seed=seed + 1)
    ids = ids.replace(pose=torch.zeros(COLS, 3), expression=torch.tensor([[0.0, 0.2, 0.0, 1.0]]).repeat(COLS, 1))
    expr = torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.3, 1.0], [0.0, 1.0, 0.0, 1.0], [0.3, 1.0, 0.6, 0.8],
                         [0.0, -1.0, -1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    yaw = torch.linspace(-45, 45, COLS)
    pr = torch.tensor([[0, -30, 0], [0, 0, 0], [0, 30, 0], [0, 0, -30], [0, 0, 30], [30, 20, 15], [-30, -15, -20]],
                      dtype=torch.float32)
    b = rep(base)
    return [("identity", ids), ("expression", b.replace(expression=expr)),
            ("yaw", b.replace(pose=torch.stack([yaw, 0 * yaw, 0 * yaw], 1))), ("pitch/roll", b.replace(pose=pr))]


def _draw_landmarks(img: Image.Image, batch: FaceBatch, i: int, scale: float) -> Image.Image:
    img = img.copy()
    d = ImageDraw.Draw(img)
    for (x, y), vis in zip(batch.landmarks[i].tolist(), batch.visible[i].tolist()):
        r = 2.2
        d.ellipse([x * scale - r, y * scale - r, x * scale + r, y * scale + r], fill=(40, 230, 60) if vis else (240, 40, 40))
    return img


def contact_sheet(path: str, res: int = 256, seed: int = 0) -> None:
    renderer = FaceRenderer(res, supersample=2)
    rows = _rows(seed)
    batches = [renderer.render(p) for _, p in rows]
    lm_rows = [batches[1], batches[3]]
    sheet = Image.new("RGB", (COLS * res, (len(rows) + len(lm_rows)) * res), "white")
    for r, b in enumerate(batches + lm_rows):
        for c in range(COLS):
            im = Image.fromarray(to_uint8(b.images[c:c + 1])[0])
            if r >= len(batches):
                im = _draw_landmarks(im, b, c, 1.0)
            sheet.paste(im, (c * res, r * res))
    sheet.save(path, optimize=True)


if __name__ == "__main__":
    contact_sheet(sys.argv[1] if len(sys.argv) > 1 else "docs/synthface_contact_sheet.png")
