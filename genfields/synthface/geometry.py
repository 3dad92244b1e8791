"""The 3D head: primitives, facial layout, colours, pose and camera framing.

Coordinates
-----------
*Head frame* (centimetres): origin between the ears at eye height, ``x`` toward the
subject's left (image right in a frontal view), ``y`` up, ``z`` out of the face.

*Camera frame*: orthographic camera looking down ``-z``; ``x`` right, ``y`` up, in units of
half the image width, so the image spans [-1, 1] x [-1, 1]. A head point maps to the camera
by ``p_cam = R (p_head - anchor) / H`` where ``anchor`` is the FFHQ alignment centre
(eye midpoint + 0.1 * eye-to-mouth vector, neutral expression) and ``H`` is FFHQ's crop
half-size ``max(2.0 * |eye_to_eye|, 1.8 * |eye_to_mouth|)`` of the neutral frontal face,
times a constant that puts the average face size (landmarks 1-17) at ~55% of the width.

*Image pixels*: ``x`` right, ``y`` down; pixel ``(row i, col j)`` covers
``[j, j + 1) x [i, i + 1)`` so its centre is at ``(j + 0.5, i + 0.5)``.

Pose convention (degrees), ``R = Rz(roll) @ Rx(-pitch) @ Ry(yaw)``:

* yaw > 0: the nose moves toward image right (the head turns to its own left);
* pitch > 0: the nose moves up (the head tilts back, chin up);
* roll > 0: the face rotates counter-clockwise as seen in the image.

The head is a smooth union of ellipsoids (cranium, jaw, chin, muzzle, nose bridge, nose tip,
alae), plus ears, neck, a hair shell and a torso. Eyes, brows, lips and nostrils are painted on
the skin in head-frame coordinates, so the landmarks defined here lie exactly on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .params import FaceParams

__all__ = ["Head", "build_head", "rotation_matrix", "pose_from_rotation", "landmarks_head_xy", "N_LANDMARKS", "REGIONS"]

N_LANDMARKS = 68

# 0-based iBUG index ranges
REGIONS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}

# Primitive slots. SKIN primitives are smoothly unioned in this order (blend radius in cm).
SKIN = ("cranium", "jaw", "chin", "muzzle", "nose_bridge", "nose_tip", "ala_r", "ala_l", "ear_r", "ear_l")
SKIN_BLEND = (0.0, 1.6, 1.0, 1.2, 0.8, 0.5, 0.35, 0.35, 0.3, 0.3)
FULL_FRAME = ("cranium", "jaw")  # large primitives traced over the whole image; others in windows
OTHER = ("neck", "hair")
PRIMS = SKIN + OTHER
FACE_SCALE = 0.985  # calibrated so the mean landmark 1-17 distance is ~0.553 of the width


def _lerp(code: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Map a code in [-1, 1] linearly onto [lo, hi]."""
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * code


def _ramp(t: torch.Tensor, stops: list[tuple[float, float, float]]) -> torch.Tensor:
    """Piecewise-linear colour ramp; ``t`` in [0, 1] -> [N, 3]."""
    s = torch.tensor(stops, dtype=t.dtype)
    x = t.clamp(0, 1) * (len(stops) - 1)
    i = x.floor().clamp(max=len(stops) - 2).long()
    f = (x - i).unsqueeze(1)
    return s[i] * (1 - f) + s[i + 1] * f


def _hsv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV (h in [0, 1)) to RGB, [N, 3]."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype)
    kk = (k + h.unsqueeze(1) * 6) % 6
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.clamp(torch.minimum(kk, 4 - kk), 0, 1)


def rotation_matrix(pose_deg: torch.Tensor) -> torch.Tensor:
    """[N, 3] yaw, pitch, roll in degrees -> [N, 3, 3] head-to-camera rotation."""
    yaw, pitch, roll = torch.deg2rad(pose_deg.to(torch.float64)).unbind(1)
    o, z = torch.ones_like(yaw), torch.zeros_like(yaw)
    cy, sy, cp, sp, cr, sr = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin(), roll.cos(), roll.sin()
    ry = torch.stack([cy, z, sy, z, o, z, -sy, z, cy], 1).view(-1, 3, 3)
    rx = torch.stack([o, z, z, z, cp, sp, z, -sp, cp], 1).view(-1, 3, 3)  # Rx(-pitch)
    rz = torch.stack([cr, -sr, z, sr, cr, z, z, z, o], 1).view(-1, 3, 3)
    return rz @ rx @ ry


def pose_from_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] head-to-camera rotation (x right, y up, z toward the camera) -> [N, 3] yaw, pitch, roll in
    degrees: the inverse of `rotation_matrix` (|pitch| < 90), for any backend that estimates a rotation."""
    r = rotation
    yaw = torch.atan2(-r[:, 2, 0], r[:, 2, 2])
    pitch = torch.asin((-r[:, 2, 1]).clamp(-1, 1))
    roll = torch.atan2(-r[:, 0, 1], r[:, 1, 1])
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=1))


def _axis_rot_x(angle: torch.Tensor) -> torch.Tensor:
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([o, z, z, z, c, -s, z, s, c], 1).view(-1, 3, 3)


@dataclass
class Head:
    """Per-sample head geometry and appearance in the head frame (float64)."""

    centers: torch.Tensor  # [N, K, 3]
    inv_axes: torch.Tensor  # [N, K, 3, 3]: q = inv_axes @ (p - center) is on the unit sphere
    f: dict  # named per-sample scalars [N] (feature layout)
    colors: dict  # named [N, 3] linear RGB
    rotation: torch.Tensor  # [N, 3, 3]
    anchor: torch.Tensor  # [N, 3]
    half_width: torch.Tensor  # [N] image half-width in cm
    light: torch.Tensor  # [N, 3] unit direction in the camera frame
    light_color: torch.Tensor  # [N, 3]
    ambient: torch.Tensor  # [N]
    hair_thresholds: tuple  # (side, front, back) hairline heights in hair-shell units, [N, 1] float32

    def to_camera(self, p: torch.Tensor) -> torch.Tensor:
        """Head-frame points [N, M, 3] -> camera frame [N, M, 3]."""
        return torch.einsum("nij,nmj->nmi", self.rotation, p - self.anchor[:, None]) / self.half_width[:, None, None]


def _ellipsoid(n: int, center, radii, rot: torch.Tensor | None = None):
    """Center [N, 3] and inverse-axes matrix [N, 3, 3] of an ellipsoid (``rot`` = its axes)."""
    c = torch.stack([torch.as_tensor(v, dtype=torch.float64).expand(n) for v in center], 1)
    r = torch.stack([torch.as_tensor(v, dtype=torch.float64).expand(n) for v in radii], 1)
    a = torch.diag_embed(1.0 / r)
    if rot is not None:
        a = a @ rot.transpose(1, 2)
    return c, a


def _layout(idn: torch.Tensor, expr: torch.Tensor) -> dict:
    """Named per-sample feature dimensions in cm (head frame)."""
    g = lambda i: idn[:, i]
    f = {}
    f["head_w"], f["head_h"], f["head_d"] = _lerp(g(0), 0.90, 1.10), _lerp(g(1), 0.93, 1.07), _lerp(g(2), 0.93, 1.07)
    f["jaw_w"], f["chin_drop"], f["cheek"] = _lerp(g(3), 0.86, 1.10), _lerp(g(4), -0.8, 0.8), _lerp(g(5), 0.94, 1.06)
    f["hair_len"], f["hair_vol"], f["hairline"] = g(10), _lerp(g(11), 0.5, 1.7), g(12)
    f["eye_x"], f["eye_s"] = _lerp(g(13), 2.95, 3.35), _lerp(g(14), 0.85, 1.15)
    f["brow_t"] = _lerp(g(16), 0.65, 1.35)
    f["nose_l"], f["nose_w"], f["nose_p"] = _lerp(g(18), 0.88, 1.12), _lerp(g(19), 0.80, 1.25), _lerp(g(20), 0.8, 1.2)
    f["mouth_w"], f["lip_t"] = _lerp(g(21), 2.0, 2.7), _lerp(g(22), 0.7, 1.3)
    f["mouth_open"], f["smile"], f["brow_raise"], f["eye_open"] = expr.unbind(1)
    # derived layout
    f["eye_y"] = torch.zeros_like(g(0))
    f["eye_hw"] = 1.38 * f["eye_s"]  # half width of the eye opening
    f["eye_up"] = 0.62 * f["eye_s"]  # upper lid height above the corner line (open)
    f["eye_lo"] = 0.36 * f["eye_s"]  # lower lid depth
    f["iris_r"] = 0.58 * f["eye_s"]
    f["brow_y"] = 1.75 + 0.1 * f["eye_s"] + 0.75 * f["brow_raise"]
    f["nose_tip_y"] = -3.75 * f["nose_l"]
    f["nose_base_y"] = -4.35 * f["nose_l"]
    f["mouth_y"] = f["nose_base_y"] - 2.0 - 0.25 * f["chin_drop"]
    f["chin_y"] = -10.7 - f["chin_drop"]
    return f


def _colors(idn: torch.Tensor, light: torch.Tensor) -> dict:
    """Per-sample linear-RGB colours (sRGB stops squared)."""
    t = lambda i: 0.5 * (idn[:, i] + 1)
    c = {}
    skin = _ramp(t(6), [(0.97, 0.80, 0.68), (0.90, 0.70, 0.56), (0.74, 0.52, 0.38), (0.46, 0.31, 0.22)])
    warm = idn[:, 7:8]
    skin = skin * torch.cat([1 + 0.05 * warm, 1 - 0.01 * warm, 1 - 0.07 * warm], 1)
    hair = _ramp(t(8), [(0.88, 0.74, 0.50), (0.62, 0.45, 0.27), (0.36, 0.23, 0.13), (0.16, 0.11, 0.08), (0.07, 0.06, 0.06)])
    red = idn[:, 9:10]
    auburn = torch.tensor([[0.62, 0.25, 0.10]], dtype=idn.dtype)
    hair = hair + red.clamp(min=0) * 0.55 * (1 - t(8)[:, None] * 0.8) * (auburn - hair)
    gray = hair.mean(1, keepdim=True).expand_as(hair)
    hair = hair + (-red).clamp(min=0) * 0.6 * (gray - hair)
    c["skin"], c["hair"] = skin, hair
    c["brow"] = hair * _lerp(idn[:, 17:18], 0.95, 0.45) + 0.03
    c["iris"] = _ramp(t(15), [(0.22, 0.12, 0.05), (0.40, 0.25, 0.10), (0.50, 0.42, 0.18), (0.30, 0.45, 0.28), (0.32, 0.52, 0.72)])
    lip_red = t(23)[:, None]
    c["lip"] = skin * (torch.tensor([[0.82, 0.55, 0.55]], dtype=idn.dtype)
                       + lip_red * torch.tensor([[0.12, -0.12, -0.06]], dtype=idn.dtype))
    c["mouth"] = torch.tensor([[0.28, 0.08, 0.08]], dtype=idn.dtype).expand_as(skin)
    c["sclera"] = torch.tensor([[0.93, 0.91, 0.88]], dtype=idn.dtype).expand_as(skin)
    hue, val = t(24), _lerp(idn[:, 25], 0.30, 0.92)
    c["bg_top"] = _hsv(hue, 0.25 + 0.1 * idn[:, 24].abs(), val)
    c["bg_bottom"] = _hsv((hue + 0.05) % 1, 0.3 + 0.0 * hue, val * 0.75)
    c["clothes"] = _hsv(t(26), 0.45 + 0.0 * hue, 0.25 + 0.4 * (1 - t(8)) * 0 + 0.35 * t(25))
    return {k: (v.clamp(0, 1) ** 2) for k, v in c.items()}


def _light(light: torch.Tensor):
    az, el = torch.deg2rad(light[:, 0].double()), torch.deg2rad(light[:, 1].double())
    d = torch.stack([az.sin() * el.cos(), el.sin(), az.cos() * el.cos()], 1)
    w = light[:, 3].double()
    col = torch.stack([1 + 0.1 * w, 1 + 0.0 * w, 1 - 0.12 * w], 1)
    return d, col, light[:, 2].double()


def _primitives(f: dict, n: int):
    """All head-frame primitives in :data:`PRIMS` order."""
    hw, hh, hd, jw = f["head_w"], f["head_h"], f["head_d"], f["jaw_w"]
    nl, nw, npro = f["nose_l"], f["nose_w"], f["nose_p"]
    chin_y, cheek = f["chin_y"], f["cheek"]
    prims = {}
    prims["cranium"] = _ellipsoid(n, (0.0, 1.8 * hh, -0.8), (7.75 * hw, 9.9 * hh, 9.7 * hd))
    jaw_ry = 0.5 * (4.3 - chin_y)
    prims["jaw"] = _ellipsoid(n, (0.0, chin_y + jaw_ry, 1.4), (5.75 * jw, jaw_ry, 7.3 * cheek))
    prims["chin"] = _ellipsoid(n, (0.0, chin_y + 1.8, 4.9), (2.5 * jw, 1.9, 2.4))
    my = f["mouth_y"]
    prims["muzzle"] = _ellipsoid(n, (0.0, my + 0.4, 5.6), (3.0 * f["mouth_w"] / 2.35, 2.6, 3.4))
    tilt = torch.full((n,), math.radians(-14.0), dtype=torch.float64)
    prims["nose_bridge"] = _ellipsoid(n, (0.0, -1.6 * nl, 8.45 + 0.35 * (npro - 1)),
                                      (0.95 * nw, 3.0 * nl, 1.45 * npro), _axis_rot_x(tilt))
    prims["nose_tip"] = _ellipsoid(n, (0.0, f["nose_tip_y"] + 0.05, 9.7 + 0.9 * (npro - 1)),
                                   (0.95 * nw, 0.85, 1.15 * npro))
    ala = (0.72 * nw, 0.62, 0.8)
    prims["ala_r"] = _ellipsoid(n, (-1.2 * nw, f["nose_base_y"] + 0.45, 8.6 + 0.5 * (npro - 1)), ala)
    prims["ala_l"] = _ellipsoid(n, (1.2 * nw, f["nose_base_y"] + 0.45, 8.6 + 0.5 * (npro - 1)), ala)
    ear = (0.8, 2.7, 1.5)
    prims["ear_r"] = _ellipsoid(n, (-7.45 * hw, -0.9, -1.0), ear)
    prims["ear_l"] = _ellipsoid(n, (7.45 * hw, -0.9, -1.0), ear)
    prims["neck"] = _ellipsoid(n, (0.0, -12.5, -1.8), (4.9 * jw, 8.0, 5.0))
    vol, length = f["hair_vol"], f["hair_len"]
    down = 3.5 * (length + 1)  # long hair extends the shell downward
    prims["hair"] = _ellipsoid(n, (0.0, 1.9 * hh + 0.5 * vol - down / 2, -1.25),
                               (7.75 * hw + vol, 9.9 * hh + 0.5 * vol + down / 2, 9.7 * hd + vol))
    centers = torch.stack([prims[k][0] for k in PRIMS], 1)
    inv_axes = torch.stack([prims[k][1] for k in PRIMS], 1)
    return centers, inv_axes


def build_head(params: FaceParams) -> Head:
    """Geometry, layout, colours, pose and framing of a batch of faces."""
    idn, expr = params.identity.double(), params.expression.double()
    n = idn.shape[0]
    f = _layout(idn, expr)
    centers, inv_axes = _primitives(f, n)
    # FFHQ-style framing from the neutral (expression-free) layout.
    e2e = 2 * f["eye_x"]
    mouth_y = f["mouth_y"]
    e2m = (f["eye_y"] - mouth_y).abs()
    half = torch.maximum(2.0 * e2e, 1.8 * e2m) * FACE_SCALE
    anchor = torch.stack([torch.zeros_like(mouth_y), f["eye_y"] + 0.1 * (mouth_y - f["eye_y"]),
                          torch.full_like(mouth_y, 7.5)], 1)
    light, light_col, ambient = _light(params.light)
    k = PRIMS.index("hair")
    cy, ry = centers[:, k, 1], 1.0 / inv_axes[:, k, 1, 1]
    levels = (_lerp(f["hair_len"], 1.5, -15.0), _lerp(f["hairline"], 5.0, 8.3), _lerp(f["hair_len"], -7.5, -20.0))
    thresholds = tuple(((lv - cy) / ry).clamp(-1.5, 1.5).float()[:, None] for lv in levels)
    return Head(hair_thresholds=thresholds, centers=centers, inv_axes=inv_axes, f=f, colors=_colors(idn, params.light),
                rotation=rotation_matrix(params.pose), anchor=anchor, half_width=half,
                light=light, light_color=light_col, ambient=ambient)


def _lid_curves(f: dict, s: torch.Tensor):
    """Upper and lower lid heights (relative to the eye line) at normalised position ``s``
    in [-1 (inner corner), 1 (outer corner)] along one eye."""
    env = (1 - s * s).clamp(min=0)
    lower = -f["eye_lo"][..., None] * env * (1 - 0.15 * s)
    upper_open = f["eye_up"][..., None] * env.sqrt() * (1 - 0.25 * s) * env.pow(0.15)
    tilt = 0.12 * s * f["eye_s"][..., None]
    up = lower + (upper_open - lower) * f["eye_open"][..., None]
    return up + tilt, lower + tilt


def _mouth_curves(f: dict, x: torch.Tensor):
    """Lip curves at head-frame x: (upper outer, upper inner, lower inner, lower outer) y."""
    mw = f["mouth_w"][..., None]
    s = (x / mw).clamp(-1, 1)
    env = (1 - s * s).clamp(min=0)
    mid = f["mouth_y"][..., None] + 0.9 * f["smile"][..., None] * s * s - 0.1 * f["smile"][..., None]
    gap = 1.8 * f["mouth_open"][..., None] * env.sqrt()
    up_in = mid + 0.25 * gap
    lo_in = mid - 0.75 * gap
    t = f["lip_t"][..., None]
    bow = 0.12 * torch.exp(-((s.abs() - 0.22) / 0.14) ** 2) - 0.08 * torch.exp(-(s / 0.08) ** 2)
    up_out = up_in + t * (0.55 * env.pow(0.6) + bow)
    lo_out = lo_in - t * 0.72 * env.pow(0.5)
    return up_out, up_in, lo_in, lo_out


def landmarks_head_xy(f: dict) -> torch.Tensor:
    """Head-frame (x, y) of the 51 inner iBUG landmarks 18-68 -> [N, 51, 2] (jaw is separate)."""
    dt = f["eye_x"].dtype
    pts = []
    # brows 18-22 (image-left = subject's right, outer -> inner), 23-27 (inner -> outer)
    bt = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=dt)
    bx = 1.25 + bt[None] * (f["eye_x"][:, None] + f["eye_hw"][:, None] + 0.35 - 1.25)
    by = _brow_center(f, bx)
    pts.append(torch.stack([-bx, by], -1))
    pts.append(torch.stack([bx.flip(1), by.flip(1)], -1))
    # nose 28-31 bridge, 32-36 base
    ny = torch.stack([f["eye_y"] + 0.2, 0.33 * f["nose_tip_y"], 0.66 * f["nose_tip_y"], f["nose_tip_y"]], 1)
    pts.append(torch.stack([torch.zeros_like(ny), ny], -1))
    nbx = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=dt)[None] * 1.05 * f["nose_w"][:, None]
    nby = f["nose_base_y"][:, None] + torch.tensor([0.15, -0.05, -0.12, -0.05, 0.15], dtype=dt)[None]
    pts.append(torch.stack([nbx, nby], -1))
    # eyes: s = -1 inner corner, +1 outer corner
    s_r = torch.tensor([1.0, 0.33, -0.33, -1.0, -0.33, 0.33], dtype=dt)[None].expand(f["eye_x"].shape[0], 6)
    up, lo = _lid_curves(f, s_r)
    ey = torch.cat([up[:, :4], lo[:, 4:]], 1) + f["eye_y"][:, None]
    ex = f["eye_x"][:, None] + s_r * f["eye_hw"][:, None]
    pts.append(torch.stack([-ex, ey], -1))  # 37-42: outer, up, up, inner, low, low
    s_l = torch.tensor([-1.0, -0.33, 0.33, 1.0, 0.33, -0.33], dtype=dt)[None].expand_as(s_r)
    up, lo = _lid_curves(f, s_l)
    ey = torch.cat([up[:, :4], lo[:, 4:]], 1) + f["eye_y"][:, None]
    ex = f["eye_x"][:, None] + s_l * f["eye_hw"][:, None]
    pts.append(torch.stack([ex, ey], -1))  # 43-48: inner, up, up, outer, low, low
    # mouth 49-60 outer, 61-68 inner
    mw = f["mouth_w"][:, None]
    ox = torch.tensor([-1.0, -0.62, -0.24, 0.0, 0.24, 0.62, 1.0, 0.62, 0.24, 0.0, -0.24, -0.62], dtype=dt)[None] * mw
    up_out, _, _, lo_out = _mouth_curves(f, ox)
    oy = torch.cat([up_out[:, :7], lo_out[:, 7:]], 1)
    corner = _mouth_curves(f, mw * 0.999)[1]
    oy[:, 0], oy[:, 6] = corner[:, 0], corner[:, 0]
    pts.append(torch.stack([ox, oy], -1))
    ix = torch.tensor([-0.9, -0.4, 0.0, 0.4, 0.9, 0.4, 0.0, -0.4], dtype=dt)[None] * mw
    _, up_in, lo_in, _ = _mouth_curves(f, ix)
    iy = torch.cat([up_in[:, :5], lo_in[:, 5:]], 1)
    pts.append(torch.stack([ix, iy], -1))
    return torch.cat(pts, 1)


def _brow_center(f: dict, ax: torch.Tensor) -> torch.Tensor:
    """Brow centre-line height at |x| = ``ax`` (head frame)."""
    x0, x1 = 1.25, (f["eye_x"] + f["eye_hw"] + 0.35)[..., None]
    t = ((ax - x0) / (x1 - x0)).clamp(-0.2, 1.2)
    arch = 0.55 * torch.sin(math.pi * (0.2 + 0.65 * t.clamp(0, 1)))
    raise_inner = 0.25 * f["brow_raise"][..., None] * (1 - t)
    return f["brow_y"][..., None] + arch - 0.35 * t * t + raise_inner
