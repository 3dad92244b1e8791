"""Batched renderer of synthetic faces with exact landmarks, and on-the-fly batches.

``render_batch(n, res, seed)`` samples parameters (see :mod:`params`) and renders them;
``FaceRenderer(res).render(params)`` renders explicit parameters (e.g. the same identity under
another pose). Images are traced at ``res * supersample`` and box-filtered down, shading is
done in linear RGB with a gamma of 2 on output.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Iterator

import torch
import torch.nn.functional as F

from .geometry import (PRIMS, SKIN, SKIN_BLEND, FULL_FRAME, Head, build_head,
                       landmarks_head_xy)
from .paint import paint_eyes, paint_mouth, paint_nose
from .params import FaceParams, ParameterRangeError, sample_params
from .raycast import (MISS, Hit, Quadrics, Window, cast, ellipsoid_boxes, pixel_bounds, pixel_grid,
                      smooth_union)

__all__ = ["FaceBatch", "FaceRenderer", "render_batch", "iterate_batches"]

_HAIR = PRIMS.index("hair")
_NECK = PRIMS.index("neck")
_VIS_TOL_CM = 0.35


@contextmanager
def _num_threads(n: int | None):
    """Temporarily set PyTorch's intra-op thread count."""
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None and n != old:
            torch.set_num_threads(old)


def _over(normal, albedo, cover, alpha, n_new, a_new) -> None:
    """Paint a layer with coverage ``alpha`` over the accumulated normal/albedo/coverage.

    One scratch buffer serves the six channels (``dst += (src - dst) * alpha``, same rounding).
    """
    tmp = torch.empty_like(cover)
    for dst, src in zip(normal + albedo, list(n_new) + list(a_new)):
        dst.add_(torch.sub(src, dst, out=tmp).mul_(alpha))
    torch.maximum(cover, alpha, out=cover)


def _rows(obj, sl: slice):
    """Samples ``sl`` of every tensor in a (nested) dataclass / dict / list / tuple (batch dim first)."""
    if isinstance(obj, torch.Tensor):
        return obj[sl]
    if isinstance(obj, dict):
        return {k: _rows(v, sl) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rows(v, sl) for v in obj)
    if is_dataclass(obj):
        return replace(obj, **{f.name: _rows(getattr(obj, f.name), sl) for f in fields(obj)})
    return obj


@dataclass
class _Scene:
    """Per-sample constants of the image pass, computed once per :meth:`FaceRenderer.render`
    call and sliced per chunk: building them per chunk took hundreds of tiny tensor ops.

    All float32 with a leading batch dimension. ``bounds`` [N, B, 4] are the pixel ranges of the
    windows: primitives + torso (``boxes`` order), then the eye, mouth and nose paint boxes;
    ``limits`` [N, 3, 2, 3] the (lo, hi) head-frame corners of the three paint boxes.
    """

    head: Head
    quad: Quadrics
    bounds: torch.Tensor
    limits: torch.Tensor
    inv_hair: torch.Tensor
    hw: torch.Tensor
    blend: list
    f: dict
    col: dict
    rot: torch.Tensor
    anchor: torch.Tensor
    gaze: tuple
    light_head: tuple
    e_cm: torch.Tensor
    e_hair: torch.Tensor


@dataclass
class FaceBatch:
    """Rendered faces and their exact labels.

    ``landmarks`` are image pixels (x right, y down, pixel centres at integer + 0.5);
    ``landmarks3d`` adds depth toward the camera in the same pixel units (relative to the
    alignment anchor); ``visible`` flags landmarks not hidden by the head itself or the hair;
    ``box`` is the tight box (x0, y0, x1, y1) of the 68 landmarks; ``index`` the sample index
    within the seed (-1 for explicitly given parameters).
    """

    images: torch.Tensor
    landmarks: torch.Tensor
    landmarks3d: torch.Tensor
    visible: torch.Tensor
    box: torch.Tensor
    pose: torch.Tensor
    identity: torch.Tensor
    expression: torch.Tensor
    light: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def params(self) -> FaceParams:
        return FaceParams(identity=self.identity, expression=self.expression, pose=self.pose, light=self.light)

    def __getitem__(self, idx) -> "FaceBatch":
        return FaceBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def cat(items: list["FaceBatch"]) -> "FaceBatch":
        return FaceBatch(**{f.name: torch.cat([getattr(b, f.name) for b in items]) for f in fields(FaceBatch)})


class FaceRenderer:
    """Renders :class:`FaceParams` to images of ``res`` x ``res`` pixels.

    ``supersample`` traces ``supersample**2`` rays per pixel (anti-aliasing); ``chunk`` is the
    number of images traced at once (default 2^18 traced pixels, 16 images at 64 px: fewer
    chunks mean less per-op overhead, bigger ones fall out of the 2 MB L2 cache). ``threads``
    is the intra-op thread count used while rendering (restored afterwards; ``None`` leaves it
    alone): the many small elementwise kernels scale badly across threads, so one thread per
    process is fastest and several processes (see :mod:`dataset`) use several cores.
    """

    def __init__(self, res: int = 64, supersample: int = 2, chunk: int | None = None, threads: int | None = 1):
        if not isinstance(res, int) or not 8 <= res <= 2048:
            raise ParameterRangeError(f"res must be an integer in [8, 2048], got {res!r}")
        if not isinstance(supersample, int) or not 1 <= supersample <= 8:
            raise ParameterRangeError(f"supersample must be an integer in [1, 8], got {supersample!r}")
        self.res = res
        self.threads = threads
        self.supersample = supersample
        self.size = res * supersample
        self.chunk = chunk or max(1, (1 << 18) // (self.size * self.size))
        self._u, self._v = pixel_grid(self.size)
        self._t_bg = (self._v + 1) * 0.5  # background gradient parameter, 0 at the bottom

    # ------------------------------------------------------------------ public
    @torch.inference_mode()
    def render(self, params: FaceParams, index: torch.Tensor | None = None) -> FaceBatch:
        """Render a batch; raises :class:`ParameterRangeError` on out-of-range parameters."""
        params = FaceParams(*(torch.as_tensor(t, dtype=torch.float32).cpu()
                              for t in (params.identity, params.expression, params.pose, params.light))).validate()
        n = len(params)
        images = torch.empty(n, 3, self.res, self.res)
        with _num_threads(self.threads):
            head = build_head(params)
            scene = self._scene(head)
            for s in range(0, n, self.chunk):
                images[s:s + self.chunk] = self._image(_rows(scene, slice(s, s + self.chunk)))
            lm, lm3, vis = self._labels(head)
        box = torch.cat([lm.amin(1), lm.amax(1)], 1) if n else torch.zeros(0, 4)
        index = torch.full((n,), -1, dtype=torch.int64) if index is None else torch.as_tensor(index, dtype=torch.int64)
        return FaceBatch(images=images, landmarks=lm, landmarks3d=lm3, visible=vis, box=box, pose=params.pose,
                         identity=params.identity, expression=params.expression, light=params.light, index=index)

    @torch.inference_mode()
    def landmarks(self, params: FaceParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Labels only (no image): landmarks [N, 68, 2], landmarks3d [N, 68, 3], visible [N, 68]."""
        params.validate()
        return self._labels(build_head(params))

    # ------------------------------------------------------------------ geometry
    def _camera_quadrics(self, head: Head):
        """Primitives (head prims + torso) in the camera frame: quadrics and screen boxes."""
        rt = head.rotation.transpose(1, 2)
        hw = head.half_width
        centers = torch.einsum("nij,nkj->nki", head.rotation, head.centers - head.anchor[:, None]) / hw[:, None, None]
        inv_axes = hw[:, None, None, None] * head.inv_axes @ rt[:, None]
        neck_base = head.to_camera(torch.tensor([[[0.0, -15.0, -1.8]]], dtype=torch.float64).expand(len(hw), 1, 3))[:, 0]
        t_center = neck_base + torch.stack([torch.zeros_like(hw), -9.5 / hw, -4.0 / hw], 1)
        t_inv = torch.diag_embed(torch.stack([hw / 19.0, hw / 10.0, hw / 9.0], 1))
        centers = torch.cat([centers, t_center[:, None]], 1)
        inv_axes = torch.cat([inv_axes, t_inv[:, None]], 1)
        return Quadrics.from_ellipsoids(centers, inv_axes), ellipsoid_boxes(centers, inv_axes), centers, inv_axes

    def _skin(self, quad: Quadrics, blend, u, v, bounds: torch.Tensor | None = None) -> Hit:
        """Smooth union of the skin primitives at rays (u, v), in :data:`SKIN` order.

        With ``bounds`` ([N, B, 4] pixel ranges in primitive order, see :meth:`_scene`) the
        primitives not in :data:`FULL_FRAME` are traced only inside their windows.
        """
        acc = cast(quad[0], u, v)
        fade = 5.0 * quad.inv_a.sqrt()
        for k in range(1, len(SKIN)):
            if bounds is None or SKIN[k] in FULL_FRAME:
                acc = smooth_union(acc, cast(quad[k], u, v), blend[k], fade[:, k])
                continue
            win = Window(self.size, bounds[:, k])
            names = ("z", "mask", "sq", "nx", "ny", "nz")
            sub = Hit(z_back=None, **{name: win.gather(getattr(acc, name)) for name in names})
            out = smooth_union(sub, cast(quad[k], win.u, win.v), blend[k], fade[:, k])
            for name in names:
                win.scatter(getattr(acc, name), getattr(out, name))
        return acc

    @staticmethod
    def _hair_alpha(head: Head, q: Quadrics, a: torch.Tensor, du, dv, z, e) -> torch.Tensor:
        """Hair coverage of hair-shell points at camera (u, v, z) from the hairline model.

        ``q`` is the hair quadric, ``a`` its float32 inverse axes [N, 3, 3], ``du``, ``dv`` the
        ray offsets ``u - q.cx``, ``v - q.cy`` (shared with the other hair terms). In-place
        chains keep the rounding of the plain expressions while allocating less.
        """
        dz = z - q.cz

        def row(i: int) -> torch.Tensor:
            return (du * a[:, i, 0:1]).add_(dv * a[:, i, 1:2]).add_(dz * a[:, i, 2:3])

        qx, qy, qz = row(0), row(1), row(2)
        c = qx.mul_(qx).add_(qz * qz).add_(1e-4).rsqrt_().mul_(qz)
        t = head.hair_thresholds
        sb = c.neg().sub_(0.05).mul_(2.0).clamp_(0, 1).mul_(t[2] - t[0])
        thr = c.sub_(0.15).mul_(1 / 0.35).clamp_(0, 1).mul_(t[1] - t[0]).add_(t[0]).add_(sb)
        return thr.sub_(qy).mul_(-1.0 / e).add_(0.5).clamp_(0, 1)

    def _scene(self, head: Head) -> _Scene:
        """Everything :meth:`_image` needs besides the pixels, for the whole batch at once."""
        n = head.rotation.shape[0]
        quad, boxes, _, inv_axes = self._camera_quadrics(head)
        paint = [fn(head) for fn in (self._eyes_box, self._mouth_box, self._nose_box)]
        feature_boxes = torch.stack([self._box(head, lo, hi) for lo, hi in paint], 1)
        as32 = lambda t: torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1).expand(n, 1)
        limits = torch.stack([torch.stack([torch.cat([as32(t) for t in corner], 1) for corner in box], 1)
                              for box in paint], 1)
        hw32 = head.half_width.float()[:, None]
        f32 = {k: t.float()[:, None] for k, t in head.f.items()}
        r32 = head.rotation.float()
        gaze = ((1.1 * r32[:, 2, 0:1]).clamp(-0.5, 0.5) * f32["eye_hw"],
                (1.1 * r32[:, 2, 1:2]).clamp(-0.3, 0.3) * f32["eye_s"])
        lh = torch.einsum("nji,nj->ni", head.rotation, head.light).float()
        ry_hair = (1.0 / head.inv_axes[:, _HAIR, 1, 1]).float()[:, None] / hw32
        return _Scene(head=head, quad=quad, bounds=pixel_bounds(self.size, torch.cat([boxes, feature_boxes], 1)),
                      limits=limits, inv_hair=inv_axes[:, _HAIR].float(), hw=hw32,
                      blend=[torch.full_like(hw32, b) / hw32 for b in SKIN_BLEND], f=f32,
                      col={k: t.float() for k, t in head.colors.items()}, rot=r32, anchor=head.anchor.float(),
                      gaze=gaze, light_head=(lh[:, 0:1], lh[:, 1:2], lh[:, 2:3]),
                      e_cm=hw32 * (2.0 / self.size), e_hair=(3.0 / self.size) / ry_hair)

    def _paint_features(self, sc: _Scene, z: torch.Tensor) -> list[torch.Tensor]:
        """Skin albedo channels [N, S*S] with eyes, mouth and nose painted in their windows."""
        n, size = z.shape[0], self.size
        rgb = [sc.col["skin"][:, i:i + 1].expand(n, size * size).clone() for i in range(3)]
        first = len(PRIMS) + 1  # paint-box windows follow the primitives and the torso
        for p, painter in enumerate(("eyes", "mouth", "nose")):
            win = Window(size, sc.bounds[:, first + p])
            zw = win.gather(z)
            r = sc.rot
            p_l = [sc.hw * (r[:, 0, i:i + 1] * win.u + r[:, 1, i:i + 1] * win.v + r[:, 2, i:i + 1] * zw)
                   + sc.anchor[:, i:i + 1] for i in range(3)]
            # paint only inside the head-frame box, so the result does not depend on the window size
            inside = torch.ones_like(zw)
            for i, c in enumerate(p_l):
                a, b = sc.limits[:, p, 0, i:i + 1], sc.limits[:, p, 1, i:i + 1]
                inside.mul_(((c - a) * 1e6).clamp_(0, 1)).mul_(((b - c) * 1e6).clamp_(0, 1))
            sub = [win.gather(c) for c in rgb]
            orig = [t.clone() for t in sub]
            if painter == "eyes":
                paint_eyes(sub, p_l[0], p_l[1], sc.f, sc.col, sc.gaze, sc.e_cm)
            elif painter == "mouth":
                paint_mouth(sub, p_l[0], p_l[1], sc.f, sc.col, sc.e_cm)
            else:
                paint_nose(sub, p_l[0], p_l[1], sc.f, sc.col, sc.light_head, sc.e_cm)
            for c, s, o in zip(rgb, sub, orig):
                win.scatter(c, s.sub_(o).mul_(inside).add_(o))
        return rgb

    def _image(self, sc: _Scene) -> torch.Tensor:
        """Linear-light trace + shading -> output image [N, 3, res, res] in [-1, 1]."""
        head, quad, col = sc.head, sc.quad, sc.col
        n, size = head.rotation.shape[0], self.size
        u, v = self._u, self._v
        skin = self._skin(quad, sc.blend, u, v, sc.bounds)
        rgb = self._paint_features(sc, skin.z)
        # --- other layers, composited back to front onto the background:
        # hair seen through the face opening, torso, neck, skin, hair in front.
        normal = [torch.zeros_like(skin.z) for _ in range(3)]
        albedo = [torch.zeros_like(skin.z) for _ in range(3)]
        cover = torch.zeros_like(skin.z)
        q = quad[_HAIR]
        hair = cast(q, u, v, back=True)
        du, dv = u - q.cx, v - q.cy
        a_front = self._hair_alpha(head, q, sc.inv_hair, du, dv, hair.z, sc.e_hair).mul_(hair.mask)
        a_back = self._hair_alpha(head, q, sc.inv_hair, du, dv, hair.z_back, sc.e_hair).mul_(hair.mask)
        wb = hair.z_back - q.cz
        back_n = ((du * q.q11).addcmul_(dv, q.q12).addcmul_(wb, q.q13).mul_(-0.6),
                  (du * q.q12).addcmul_(dv, q.q22).addcmul_(wb, q.q23).mul_(-0.6), hair.nz)
        _over(normal, albedo, cover, a_back, back_n, [col["hair"][:, i:i + 1] * 0.4 for i in range(3)])
        for k, color in ((len(PRIMS), col["clothes"]), (_NECK, col["skin"] * 0.72)):
            win = Window(size, sc.bounds[:, k])
            layer = cast(quad[k], win.u, win.v)
            sub_n, sub_a, sub_c = [win.gather(t) for t in normal], [win.gather(t) for t in albedo], win.gather(cover)
            _over(sub_n, sub_a, sub_c, layer.mask, (layer.nx, layer.ny, layer.nz), [color[:, i:i + 1] for i in range(3)])
            for full, part in zip(normal + albedo + [cover], sub_n + sub_a + [sub_c]):
                win.scatter(full, part)
        _over(normal, albedo, cover, skin.mask, (skin.nx, skin.ny, skin.nz), rgb)
        _over(normal, albedo, cover, a_front, (hair.nx, hair.ny, hair.nz), [col["hair"][:, i:i + 1] for i in range(3)])
        lin = self._shade(head, *normal, albedo)
        for i in range(3):
            bottom = col["bg_bottom"][:, i:i + 1]
            bg = ((col["bg_top"][:, i:i + 1] - bottom) * self._t_bg).add_(bottom)
            lin[i].sub_(bg).mul_(cover).add_(bg)
        img = torch.stack(lin, 1).view(n, 3, size, size)
        if self.supersample > 1:
            img = F.avg_pool2d(img, self.supersample)
        return img.clamp_(0, 1).sqrt_().mul_(2).sub_(1)

    @staticmethod
    def _shade(head: Head, nx, ny, nz, albedo, spec: float = 0.06) -> list[torch.Tensor]:
        """Wrapped Lambert + hemispheric ambient + Blinn-Phong, linear RGB.

        Consumes its inputs: the normal and albedo buffers are overwritten (in-place chains
        round exactly like the plain expressions and spare full-frame temporaries).
        """
        inv = (nx * nx).add_(ny * ny).add_(nz * nz).add_(1e-12).rsqrt_()
        nx, ny, nz = nx.mul_(inv), ny.mul_(inv), nz.mul_(inv)
        light = head.light.float()
        diff = (nx * light[:, 0:1]).add_(ny * light[:, 1:2]).add_(nz * light[:, 2:3]).add_(0.2).mul_(1 / 1.2).clamp_(min=0)
        amb = head.ambient.float()[:, None]
        hv = light + torch.tensor([0.0, 0.0, 1.0])
        hv = hv / hv.norm(dim=1, keepdim=True)
        ndh = nx.mul_(hv[:, 0:1]).add_(ny * hv[:, 1:2]).add_(nz.mul_(hv[:, 2:3])).clamp_(min=0)
        for _ in range(3):  # ndh ** 8 by repeated squaring
            ndh.mul_(ndh)
        s = (ndh * spec).mul_(ndh)
        shade = ny.mul_(0.2).add_(0.8).mul_(amb).add_(diff.mul_(1.15 - amb))
        lc = head.light_color.float()
        return [albedo[i].mul_(shade).mul_(lc[:, i:i + 1]).add_(s * lc[:, i:i + 1]) for i in range(3)]

    # ------------------------------------------------------------------ painting boxes (head frame, cm)
    @staticmethod
    def _box(head: Head, lo: list, hi: list) -> torch.Tensor:
        """Camera box [N, 4] of head-frame boxes given by per-sample corner lists."""
        lo = torch.stack([torch.as_tensor(t, dtype=torch.float64).expand(head.rotation.shape[0]) for t in lo], 1)
        hi = torch.stack([torch.as_tensor(t, dtype=torch.float64).expand(head.rotation.shape[0]) for t in hi], 1)
        sel = torch.tensor([[i >> k & 1 for k in range(3)] for i in range(8)], dtype=torch.float64)
        corners = lo[:, None] + sel[None] * (hi - lo)[:, None]
        cam = head.to_camera(corners)
        return torch.stack([cam[..., 0].amin(1), cam[..., 0].amax(1), cam[..., 1].amin(1), cam[..., 1].amax(1)], 1)

    @staticmethod
    def _eyes_box(head: Head):
        f = head.f
        xr = f["eye_x"] + f["eye_hw"] + 1.0
        return [-xr, f["eye_y"] - 1.4, 4.5], [xr, f["brow_y"] + 1.3, 10.0]

    @staticmethod
    def _mouth_box(head: Head):
        f = head.f
        xr = f["mouth_w"] + 1.2
        return [-xr, f["mouth_y"] - 2.6, 5.0], [xr, f["nose_base_y"] + 0.3, 10.5]

    @staticmethod
    def _nose_box(head: Head):
        f = head.f
        xr = 1.2 * f["nose_w"] + 2.5
        return [-xr, f["nose_base_y"] - 1.5, 6.0], [xr, f["eye_y"], 11.5]

    # ------------------------------------------------------------------ labels
    @staticmethod
    def _jaw_xy(head: Head) -> torch.Tensor:
        """Jaw landmarks 1-17: points just inside the frontal face outline, [N, 17, 2]."""
        idx = [SKIN.index(k) for k in ("cranium", "jaw", "chin")]
        c = head.centers[:, idx]  # [N, P, 3]
        r = 1.0 / torch.diagonal(head.inv_axes[:, idx], dim1=-2, dim2=-1)  # axis-aligned radii
        theta = torch.linspace(-0.5, 0.5, 17, dtype=torch.float64) * torch.pi
        st, ct = theta.sin()[None, :, None], theta.cos()[None, :, None]
        yc = head.f["eye_y"][:, None, None] - 1.3
        cx, cy = c[:, None, :, 0], c[:, None, :, 1]
        rx, ry = r[:, None, :, 0], r[:, None, :, 1]
        dy0 = yc - cy
        qa = st * st / rx**2 + ct * ct / ry**2
        qb = -2 * (st * cx / rx**2 + ct * dy0 / ry**2)
        qc = cx * cx / rx**2 + dy0 * dy0 / ry**2 - 1
        disc = (qb * qb - 4 * qa * qc).clamp(min=0)
        rad = ((-qb + disc.sqrt()) / (2 * qa)).amax(-1) * 0.975
        return torch.stack([rad * st[..., 0], yc[..., 0] - rad * ct[..., 0]], -1)

    def _labels(self, head: Head):
        n = head.rotation.shape[0]
        xy = torch.cat([self._jaw_xy(head), landmarks_head_xy(head.f)], 1)  # [N, 68, 2] head frame
        # depth on the skin, tracing straight at the face in the head frame
        k = len(SKIN)
        quad_h = Quadrics.from_ellipsoids(head.centers[:, :k], head.inv_axes[:, :k])
        blend_h = [torch.full((n, 1), b) for b in SKIN_BLEND]
        hit = self._skin(quad_h, blend_h, xy[..., 0].float(), xy[..., 1].float())
        p_head = torch.cat([xy, hit.z.double()[..., None]], -1)
        cam = head.to_camera(p_head)  # [N, 68, 3]
        # visibility: nothing nearer along the camera ray (skin, neck, hair)
        quad, boxes, centers, inv_axes = self._camera_quadrics(head)
        u, v = cam[..., 0].float(), cam[..., 1].float()
        hw32 = head.half_width.float()[:, None]
        blend = [torch.full_like(hw32, b) / hw32 for b in SKIN_BLEND]
        front = self._skin(quad, blend, u, v).z
        front = torch.maximum(front, cast(quad[_NECK], u, v).z)
        hair = cast(quad[_HAIR], u, v)
        qh = quad[_HAIR]
        a = self._hair_alpha(head, qh, inv_axes[:, _HAIR].float(), u - qh.cx, v - qh.cy, hair.z,
                             torch.full_like(hw32, 1e-3))
        front = torch.maximum(front, torch.where(a > 0.5, hair.z, MISS))
        visible = front <= cam[..., 2].float() + _VIS_TOL_CM / hw32
        px = (cam[..., 0] + 1) * 0.5 * self.res
        py = (1 - cam[..., 1]) * 0.5 * self.res
        pz = cam[..., 2] * 0.5 * self.res
        lm = torch.stack([px, py], -1).float()
        return lm, torch.stack([px, py, pz], -1).float(), visible


def render_batch(n: int, res: int = 64, seed: int = 0, pose_dist: str = "ffhq", start_index: int = 0,
                 supersample: int = 2) -> FaceBatch:
    """Sample and render faces ``start_index .. start_index + n - 1`` of ``seed``."""
    params = sample_params(n, seed=seed, start_index=start_index, pose_dist=pose_dist)
    return FaceRenderer(res, supersample).render(params, index=torch.arange(start_index, start_index + n))


def iterate_batches(batch_size: int, res: int = 64, seed: int = 0, start_index: int = 0,
                    pose_dist: str = "ffhq", supersample: int = 2, stop: int | None = None) -> Iterator[FaceBatch]:
    """Endless (or until index ``stop``) stream of batches of consecutive sample indices.

    A trainer resumes exactly by passing the next unseen index as ``start_index``.
    """
    if batch_size < 1:
        raise ParameterRangeError(f"batch_size must be >= 1, got {batch_size}")
    renderer = FaceRenderer(res, supersample)
    i = start_index
    while stop is None or i < stop:
        m = batch_size if stop is None else min(batch_size, stop - i)
        params = sample_params(m, seed=seed, start_index=i, pose_dist=pose_dist)
        yield renderer.render(params, index=torch.arange(i, i + m))
        i += m
