"""Facial features painted on the skin in head-frame coordinates: eyes, brows, lips, nostrils.

Every function takes head-frame ``x``, ``y`` of skin points ([N, M]), the per-sample layout
``f`` (values [N, 1]) and the anti-aliasing width ``e`` (cm per output pixel, [N, 1]), and
blends into the linear-RGB albedo channels ``rgb`` (list of three [N, M] tensors) in place.
The curves are the ones :mod:`geometry` uses for the landmarks, so landmarks sit on the paint.
"""

from __future__ import annotations

import torch

from .geometry import _brow_center, _lid_curves, _mouth_curves

__all__ = ["paint_eyes", "paint_mouth", "paint_nose"]


def _band(d: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Anti-aliased step: 1 where ``d`` > 0, 0 where ``d`` < 0, linear over width ``e``."""
    return (d / e + 0.5).clamp_(0.0, 1.0)


def _over(rgb: list[torch.Tensor], color: torch.Tensor, alpha: torch.Tensor) -> None:
    """Alpha-blend a per-sample colour [N, 3] (or per-pixel list) over ``rgb`` in place."""
    for i in range(3):
        c = color[i] if isinstance(color, (list, tuple)) else color[:, i:i + 1]
        rgb[i].add_(alpha * (c - rgb[i]))


def _flat(f: dict) -> dict:
    """Layout values as [N] (the shape the geometry curves expect)."""
    return {k: v[:, 0] for k, v in f.items()}


def _scale(rgb: list[torch.Tensor], factor: torch.Tensor) -> None:
    for ch in rgb:
        ch.mul_(factor)


def paint_eyes(rgb, x, y, f, colors, gaze, e) -> None:
    """Eye sockets, sclera, iris, pupil, catch-light, lashes, lids and brows of both eyes."""
    ax = x.abs()
    side = torch.sign(x)
    ex, ey, hw = f["eye_x"], f["eye_y"], f["eye_hw"]
    # soft socket shadow under the brow ridge and beside the nose
    g = torch.exp(-((ax - ex) / (1.45 * hw)) ** 2 - ((y - ey - 0.35) / 1.25) ** 2)
    _scale(rgb, 1.0 - 0.22 * g)
    s = (ax - ex) / hw
    up, lo = _lid_curves(_flat(f), s)
    up, lo = up + ey, lo + ey
    inside = _band(up - y, e) * _band(y - lo, e) * _band((1 - s.abs()) * hw, e)
    # eyeball: sclera darkening toward the corners, iris following the gaze
    ix = ax - ex - side * gaze[0]
    iy = y - ey - gaze[1]
    r = (ix * ix + iy * iy).sqrt()
    eye = [colors["sclera"][:, i:i + 1] * (1.0 - 0.45 * s * s) for i in range(3)]
    iris_a = _band(f["iris_r"] - r, e)
    ring = 0.55 + 0.45 * (r / f["iris_r"]).clamp(max=1.0)  # darker limbal ring, lighter centre
    _over(eye, [colors["iris"][:, i:i + 1] * (1.6 - ring) for i in range(3)], iris_a)
    _over(eye, torch.zeros_like(colors["iris"]), _band(0.42 * f["iris_r"] - r, e))
    cx, cy = ix + 0.28 * f["iris_r"], iy - 0.3 * f["iris_r"]
    _over(eye, torch.ones_like(colors["iris"]), 0.9 * _band(0.16 * f["iris_r"] - (cx * cx + cy * cy).sqrt(), e))
    shadow = 1.0 - 0.35 * _band(y - up + 0.25 * f["eye_s"], e)  # upper-lid shadow
    for i in range(3):
        rgb[i].add_(inside * (eye[i] * shadow - rgb[i]))
    # lash line above the upper lid, thicker toward the outer corner; faint lower lid line
    span = _band(1.08 - s.abs(), e / hw)
    lash_t = (0.13 + 0.09 * s.clamp(min=0)) * f["eye_s"]
    lash = _band(lash_t - (y - up - 0.5 * lash_t).abs(), e) * span
    _over(rgb, torch.full_like(colors["iris"], 0.02), 0.92 * lash)
    crease = _band(0.07 - (y - up - 0.55 * f["eye_up"] * f["eye_open"] - 0.25).abs(), e) * span
    _scale(rgb, 1.0 - 0.25 * crease)
    low = _band(0.06 - (y - lo + 0.05).abs(), e) * span
    _scale(rgb, 1.0 - 0.3 * low)
    # brows
    x0, x1 = 1.25, ex + hw + 0.35
    yb = _brow_center(_flat(f), ax)
    t = ((ax - x0) / (x1 - x0)).clamp(0.0, 1.0)
    thick = f["brow_t"] * (0.34 - 0.16 * t)
    brow = _band(thick - (y - yb).abs(), e) * _band(ax - x0, e + 0.15) * _band(x1 - ax, e + 0.25)
    _over(rgb, colors["brow"], 0.92 * brow)


def paint_mouth(rgb, x, y, f, colors, e) -> None:
    """Lips, mouth opening with teeth, and smile folds."""
    mw = f["mouth_w"]
    up_out, up_in, lo_in, lo_out = _mouth_curves(_flat(f), x)
    in_x = _band(mw - x.abs(), e)
    # nasolabial folds deepen with the smile
    s = x.abs() / mw
    fold_x = mw + 0.35 + 0.25 * (y - f["mouth_y"])
    fold = torch.exp(-((x.abs() - fold_x) / 0.3) ** 2) * _band(f["nose_base_y"] - 0.2 - y, e) * _band(y - f["mouth_y"] + 1.6, e)
    _scale(rgb, 1.0 - (0.08 + 0.22 * f["smile"].clamp(min=0)) * fold)
    lips = _band(up_out - y, e) * _band(y - lo_out, e) * in_x
    lower = _band(up_in - y, e)
    lip = [colors["lip"][:, i:i + 1] * (0.88 + 0.22 * lower) for i in range(3)]
    _over(rgb, lip, lips)
    gap = _band(up_in + 0.04 - y, e) * _band(y - lo_in + 0.04, e) * _band(0.94 * mw - x.abs(), e)
    teeth = _band(y - (up_in - 0.5), e) * _band(0.72 * mw - x.abs(), e) * _band(up_in - lo_in - 0.15, e)
    inner = [colors["mouth"][:, i:i + 1] * (1 - 0.5 * s * s) for i in range(3)]
    _over(inner, torch.full_like(colors["mouth"], 0.72), teeth)
    _over(rgb, inner, gap)


def paint_nose(rgb, x, y, f, colors, light, e) -> None:
    """Nostrils under the tip and the soft shadow the nose casts away from the key light."""
    nx = (x.abs() - 0.48 * f["nose_w"]) / (0.3 * f["nose_w"])
    ny = (y - f["nose_base_y"] - 0.22) / 0.17
    nostril = _band(1.0 - (nx * nx + ny * ny).sqrt(), e / 0.25)
    _scale(rgb, 1.0 - 0.75 * nostril)
    # cast shadow: the nose ridge (height h above the face at y) shifted along -light/lz
    lx, ly, lz = light
    t = ((f["eye_y"] - y) / (f["eye_y"] - f["nose_base_y"])).clamp(0.0, 1.0)
    h = 0.3 + 2.2 * t * f["nose_p"]
    k = 1.0 / lz.clamp(min=0.6)
    sx = x + lx * k * h
    width = (0.35 + 0.65 * t) * f["nose_w"]
    inside = _band(width - sx.abs(), 0.35 + e) * _band(y - f["nose_base_y"] + 0.25 * h, 0.4 + e)
    inside = inside * _band(y - ly * k * h - f["nose_base_y"] + 0.4, 0.4) * _band(f["eye_y"] - 0.3 - y, 0.6)
    off_nose = _band(x.abs() - 0.8 * f["nose_w"], 0.4)
    _scale(rgb, 1.0 - 0.45 * inside * off_nose * (lx.abs() * 1.5).clamp(max=1.0))
