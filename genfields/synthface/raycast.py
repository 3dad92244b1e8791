"""Batched orthographic ray casting against ellipsoids, and per-sample pixel windows.

Rays run along ``-z`` through points ``(u, v)``; an ellipsoid ``|A (p - c)| = 1`` is hit where
``a w^2 + 2 b w + c = 0`` with ``w = z - c_z``, ``a = Q33``, ``b = Q13 du + Q23 dv`` and
``c = [du dv] Q2 [du dv]^T - 1`` (``Q = A^T A``, ``du = u - c_x``, ``dv = v - c_y``). The nearer
root and the (unnormalised) normal ``Q (du, dv, w)`` follow in a few fused tensor operations,
so a whole batch of images is traced with plain elementwise PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

__all__ = ["Quadrics", "Hit", "Window", "cast", "smooth_union", "pixel_axes", "pixel_grid", "pixel_bounds", "ellipsoid_boxes"]

MISS = -100.0  # depth of rays that hit nothing (camera units; scenes live within +-3)
_STEP = 1.0e12  # slope of the float step used instead of boolean masks (faster on CPU)


@dataclass
class Quadrics:
    """Per-sample ray-casting coefficients of K ellipsoids, each [N, K, 1] float32."""

    cx: torch.Tensor
    cy: torch.Tensor
    cz: torch.Tensor
    a: torch.Tensor
    inv_a: torch.Tensor
    q11: torch.Tensor
    q12: torch.Tensor
    q13: torch.Tensor
    q22: torch.Tensor
    q23: torch.Tensor
    norm: torch.Tensor  # scale that makes |normal| ~ 1, so normals of primitives can be blended

    @staticmethod
    def from_ellipsoids(centers: torch.Tensor, inv_axes: torch.Tensor) -> "Quadrics":
        """``centers`` [N, K, 3] and ``inv_axes`` [N, K, 3, 3] (float64) in the ray frame."""
        q = inv_axes.transpose(-1, -2) @ inv_axes
        radius = torch.linalg.det(inv_axes).abs().pow(-1.0 / 3.0)
        g = lambda t: t.to(torch.float32).unsqueeze(-1)
        return Quadrics(cx=g(centers[..., 0]), cy=g(centers[..., 1]), cz=g(centers[..., 2]),
                        a=g(q[..., 2, 2]), inv_a=g(1.0 / q[..., 2, 2]), q11=g(q[..., 0, 0]), q12=g(q[..., 0, 1]),
                        q13=g(q[..., 0, 2]), q22=g(q[..., 1, 1]), q23=g(q[..., 1, 2]), norm=g(radius))

    def __getitem__(self, k) -> "Quadrics":
        """Primitive ``k`` (int -> [N, 1] coefficients) or a slice of primitives."""
        return Quadrics(**{name: getattr(self, name)[:, k] for name in self.__dataclass_fields__})


@dataclass
class Hit:
    """Nearest intersection per ray: depth ``z`` (< MISS / 2 where nothing is hit), coverage
    ``mask`` (1 on hits, 0 elsewhere, float), ``sq`` = sqrt of the discriminant (0 at the
    silhouette), back-side depth ``z_back`` (optional) and the normal components."""

    z: torch.Tensor
    mask: torch.Tensor
    sq: torch.Tensor
    z_back: torch.Tensor | None
    nx: torch.Tensor
    ny: torch.Tensor
    nz: torch.Tensor


def cast(q: Quadrics, u: torch.Tensor, v: torch.Tensor, back: bool = False) -> Hit:
    """Intersect rays at (u, v) ([N, M] or [1, M]) with one ellipsoid (coefficients [N, 1])."""
    du = u - q.cx
    dv = v - q.cy
    t1 = du * q.q11
    t1.addcmul_(dv, q.q12)
    t2 = du * q.q12
    t2.addcmul_(dv, q.q22)
    b = du * q.q13
    b.addcmul_(dv, q.q23)
    disc = du.mul_(t1).addcmul_(dv, t2).sub_(1.0).mul_(-q.a).addcmul_(b, b)
    mask = (disc * _STEP).clamp_(0.0, 1.0)
    sq = disc.clamp_(min=0.0).sqrt_()
    w = torch.sub(sq, b).mul_(q.inv_a)
    miss = (mask - 1.0).mul_(-MISS)  # 0 on hits, MISS elsewhere
    z = (w + q.cz).add_(miss)
    z_back = b.add_(sq).mul_(-q.inv_a).add_(q.cz).add_(miss) if back else None
    nx = t1.addcmul_(w, q.q13).mul_(q.norm)
    ny = t2.addcmul_(w, q.q23).mul_(q.norm)
    return Hit(z=z, mask=mask, sq=sq, z_back=z_back, nx=nx, ny=ny, nz=sq * q.norm)


def smooth_union(acc: Hit, new: Hit, blend: torch.Tensor, fade: torch.Tensor) -> Hit:
    """Blend ``new`` into ``acc`` (in place) with a polynomial smooth maximum of depth.

    Normals are blended with the same weight. The weight fades out toward ``new``'s silhouette
    (``fade`` ~ 1 / sqrt(a)) so that a primitive emerging from the surface leaves no seam.
    """
    d = new.z - acc.z
    h = (d * (0.5 / blend)).add_(0.5).clamp_(0.0, 1.0).mul_((new.sq * fade).clamp_(max=1.0))
    torch.maximum(h, new.mask - acc.mask, out=h)  # where only ``new`` is hit, take it as is
    acc.z.add_((1.0 - h).mul_(blend).add_(d).mul_(h))
    for name in ("nx", "ny", "nz"):
        a = getattr(acc, name)
        a.add_(getattr(new, name).sub_(a).mul_(h))
    torch.maximum(acc.mask, new.mask, out=acc.mask)
    torch.maximum(acc.sq, new.sq, out=acc.sq)
    return acc


@lru_cache(maxsize=None)
def pixel_axes(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera u of each pixel column and v of each pixel row of an S x S grid, [S] float32 each."""
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    return grid, -grid


@lru_cache(maxsize=None)
def pixel_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera (u, v) of the pixel centres of an S x S grid, each [1, S*S] float32, row-major."""
    u_axis, v_axis = pixel_axes(size)
    vv, uu = torch.meshgrid(v_axis, u_axis, indexing="ij")
    return uu.reshape(1, -1), vv.reshape(1, -1)


@lru_cache(maxsize=None)
def _window_offsets(size: int, h: int, w: int) -> torch.Tensor:
    """Flat pixel offsets [1, h*w] of an h x w rectangle within an S x S grid."""
    return (torch.arange(h)[:, None] * size + torch.arange(w)[None, :]).reshape(1, h * w)


def pixel_bounds(size: int, box: torch.Tensor) -> torch.Tensor:
    """Camera boxes [..., 4] (u_min, u_max, v_min, v_max) -> pixel ranges [..., 4] int64
    (col0, col1, row0, row1), one pixel of margin; computed once per batch, not per window."""
    col0 = torch.floor((box[..., 0] + 1) * 0.5 * size).long() - 1
    col1 = torch.ceil((box[..., 1] + 1) * 0.5 * size).long() + 1
    row0 = torch.floor((1 - box[..., 3]) * 0.5 * size).long() - 1
    row1 = torch.ceil((1 - box[..., 2]) * 0.5 * size).long() + 1
    return torch.stack([col0, col1, row0, row1], -1)


class Window:
    """Same-size per-sample rectangles of an S x S pixel grid, covering given pixel ranges.

    Work on a small primitive or feature is done on its window only; results are scattered
    back into the full-frame buffers. A window covers its box entirely (clipped to the image),
    so what is computed does not depend on the other samples of the batch. The window size
    is found in Python on a handful of integers and ``u``, ``v`` are looked up in the cached
    full-frame grid: a few tensor ops per window instead of ~30 tiny ones.
    """

    def __init__(self, size: int, bounds: torch.Tensor):
        """``bounds`` [N, 4] int64 from :func:`pixel_bounds`."""
        rows = bounds.tolist()
        w = min(size, max(1, max((c1 - c0 for c0, c1, _, _ in rows), default=1)))
        h = min(size, max(1, max((r1 - r0 for _, _, r0, r1 in rows), default=1)))
        corner = torch.tensor([[min(max(r0, 0), size - h), min(max(c0, 0), size - w)] for c0, _, r0, _ in rows],
                              dtype=torch.int64).reshape(-1, 2)
        n, row0, col0 = corner.shape[0], corner[:, 0:1], corner[:, 1:2]
        self.index = (row0 * size + col0) + _window_offsets(size, h, w)
        u_axis, v_axis = pixel_axes(size)
        self.u = u_axis[col0 + torch.arange(w)][:, None, :].expand(n, h, w).reshape(n, h * w)
        self.v = v_axis[row0 + torch.arange(h)][:, :, None].expand(n, h, w).reshape(n, h * w)
        self.shape = (h, w)

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        return torch.gather(t, 1, self.index)

    def scatter(self, t: torch.Tensor, values: torch.Tensor) -> None:
        t.scatter_(1, self.index, values)


def ellipsoid_boxes(centers: torch.Tensor, inv_axes: torch.Tensor) -> torch.Tensor:
    """Screen boxes [N, K, 4] (u_min, u_max, v_min, v_max) of ellipsoids in the ray frame."""
    m = torch.linalg.inv(inv_axes.transpose(-1, -2) @ inv_axes)
    ex, ey = m[..., 0, 0].clamp(min=0).sqrt(), m[..., 1, 1].clamp(min=0).sqrt()
    cx, cy = centers[..., 0], centers[..., 1]
    return torch.stack([cx - ex, cx + ex, cy - ey, cy + ey], -1)
