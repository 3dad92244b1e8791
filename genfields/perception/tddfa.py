"""E_lnd / E_pose of the paper's real setting: 3DDFA_V2's MobileNet-V1 and its 62-parameter decoding.

3DDFA_V2 (Guo et al. 2020, MIT; the paper cites Zhu et al.'s 3DDFA) regresses 62 numbers from a
120x120 face crop: 12 for a 3x4 pose matrix P = [scale * R | t], 40 shape and 10 expression
coefficients of the Basel Face Model. We implement the network (module names equal to the keys
of the official `mb1_120x120.pth` / `mb05_120x120.pth`, width read from the file) and the
official pipeline in torch, so that landmarks and angles are differentiable with respect to the
image, with the numbers of the official code (`tests/test_tddfa_official.py`):

1. ROI box: from a detector box as the official `parse_roi_box_from_bbox` (a square of side
   int(1.58 x the box's mean side), 0.14 of that side lower), or from 68 landmarks as its
   `parse_roi_box_from_landmark` (sqrt(2) x their larger extent, centred on them);
2. crop as the official `crop_img` + `cv2.resize`: the ROI box rounded to whole pixels, black
   outside the image, bilinear (half-pixel centres, edge clamped, no antialiasing) to 120x120,
   rounded to 8-bit levels (straight-through, so gradients still flow); RGB -> BGR (3DDFA_V2 reads
   images with OpenCV), (x - 127.5) / 128 with x in [0, 255];
3. params = network(crop) * param_std + param_mean (`param_mean_std_62d_120x120.pkl`);
4. 68 points = R @ (u + W_shp a_shp + W_exp a_exp) + t with the keypoint rows of the BFM bases
   (`bfm_noneck_v3.pkl`: `keypoints` indexes the 3 x 68 coordinates of u, w_shp, w_exp);
5. the official `similar_transform`: (x - 1, 120 - y) scaled into the (unrounded) ROI box, which
   puts pixel centres at integers; + 0.5 for our convention (pixel i covers [i, i + 1]);
6. the official `calc_pose` angles (`pose_from_matrix`): the rows of P's 3x3 part normalised
   (r1, r2, r3 = r1 x r2), yaw = asin(R[2, 0]), pitch = atan2(R[2, 1], R[2, 2]), roll =
   atan2(R[1, 0], R[0, 0]) (yaw +-90 degrees and roll 0 at gimbal lock, |R[2, 0]| > 0.998).
   The estimator returns the pose in genfields' convention instead (docs/perception.md, "Pose
   convention"): the same rotation decomposed as synthface's (`genfields_pose_from_matrix`);
   the official angles stay available (`TDDFAPass.official_pose`).

Passes: the first crops the given ROI box (default: where faces are in FFHQ-aligned images); each
further pass crops the landmark ROI box of the previous pass's landmarks (3DDFA_V2's
`crop_policy='landmark'`). Without the BFM there are no landmarks: one pass, pose only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genfields.errors import CheckpointError
from genfields.imageio import check_images
from genfields.models import MODELS_DIR
from genfields.stylegan2.safe_pickle import safe_load_pickle
from genfields.synthface.geometry import pose_from_rotation

from .interfaces import LandmarkPoseEstimator, LandmarksPose, image_box
from .weights import load_official, read_state_dict, resolve

INPUT_SIZE = 120
NUM_PARAMS = 62  # 12 pose + 40 shape + 10 expression
SHAPE_DIM, EXP_DIM = 40, 10
NUM_LANDMARKS = 68
# The 3DDFA_V2 crop of an FFHQ-aligned face, as fractions of the image side (x0, y0, x1, y1):
# the landmark crop rule (square of side sqrt(2) x the landmarks' larger extent, centred on
# them) applied to dlib's landmarks of the face_recognition test photos aligned FFHQ-style
# (mean over six photos, made symmetric in x). An estimate; the second pass refines it.
ALIGNED_FACE_BOX = (0.075, 0.255, 0.925, 1.105)
# The official mb05 files, shipped byte for byte (MIT): see MODEL_CARD.md there.
SHIPPED_DIR = MODELS_DIR / "perception" / "3ddfa_v2_mb05"
SHIPPED_WEIGHTS, SHIPPED_STATS = "mb05_120x120.pth", "param_mean_std_62d_120x120.pkl"


class DepthWiseBlock(nn.Module):
    """Depth-wise 3x3 conv + BN + ReLU, then point-wise 1x1 conv + BN + ReLU (MobileNet-V1's unit)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.bn_dw = nn.BatchNorm2d(cin)
        self.conv_sep = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn_sep = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn_sep(self.conv_sep(F.relu(self.bn_dw(self.conv_dw(x))))))


# (name, output channels at width 1, stride) of the 13 depth-wise blocks, as in 3DDFA_V2's mb1.
_BLOCKS = (("dw2_1", 64, 1), ("dw2_2", 128, 2), ("dw3_1", 128, 1), ("dw3_2", 256, 2), ("dw4_1", 256, 1),
           ("dw4_2", 512, 2), ("dw5_1", 512, 1), ("dw5_2", 512, 1), ("dw5_3", 512, 1), ("dw5_4", 512, 1),
           ("dw5_5", 512, 1), ("dw5_6", 1024, 2), ("dw6", 1024, 1))


class TDDFAMobileNet(nn.Module):
    """3DDFA_V2's MobileNet-V1 (`mb1_120x120`, width 1; `mb05_120x120`, width 0.5):
    normalised BGR crop [B, 3, 120, 120] -> 62 normalised parameters."""

    def __init__(self, width: float = 1.0, num_params: int = NUM_PARAMS):
        super().__init__()
        self.width = width
        cin = int(32 * width)
        self.conv1 = nn.Conv2d(3, cin, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        for name, cout, stride in _BLOCKS:
            self.add_module(name, DepthWiseBlock(cin, int(cout * width), stride))
            cin = int(cout * width)
        self.fc = nn.Linear(cin, num_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for name, _, _ in _BLOCKS:
            x = getattr(self, name)(x)
        return self.fc(x.mean(dim=(2, 3)))


# Heads of the official checkpoints that the official inference leaves unused (its `load_model`
# keeps only its network's keys): `fc_lm`, the 68-landmark head trained beside the parameters.
UNUSED_HEADS = ("fc_lm.",)


def official_state_dict(state: dict) -> dict:
    """The network tensors of an official checkpoint object: its `state_dict`, without DataParallel's
    `module.` prefix, `fc_param` renamed to `fc` (the two forms 3DDFA_V2's own loader accepts), the
    unused `fc_lm` head dropped; every other key stays, to be checked against the network."""
    inner = state.get("state_dict", state)
    if not isinstance(inner, dict):
        raise CheckpointError("the 3DDFA_V2 checkpoint's 'state_dict' is not a dict")
    out = {}
    for key, value in inner.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith(UNUSED_HEADS):
            continue
        out[key.replace("fc_param.", "fc.", 1) if key.startswith("fc_param.") else key] = value
    return out


def network_width(state: dict, source: str) -> float:
    """MobileNet width of an official state dict from its first conv (32 x width filters): 1 (mb1), 0.5 (mb05)."""
    conv1 = state.get("conv1.weight")
    if not isinstance(conv1, torch.Tensor) or conv1.ndim != 4 or conv1.shape[0] < 8 or conv1.shape[0] % 8:
        raise CheckpointError(f"{source} is not the 3DDFA_V2 MobileNet state dict: no conv1.weight "
                              f"[32 x width, 3, 3, 3] (missing ['conv1.weight'] or wrong shape)")
    return conv1.shape[0] / 32


def load_tddfa_network(path: Optional[str | Path] = None) -> TDDFAMobileNet:
    """The official MobileNet of `mb1_120x120.pth` or `mb05_120x120.pth` (width from the file; every key
    and shape checked; default: the cached download `3ddfa-mobilenet`)."""
    path = resolve(path, "3ddfa-mobilenet")
    state = official_state_dict(read_state_dict(path))
    width = network_width(state, str(path))
    return load_official(TDDFAMobileNet(width), path, "3ddfa-mobilenet", f"3DDFA_V2 MobileNet (width {width:g})",
                         state)


def read_pickle_arrays(path: str | Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Numeric arrays `keys` of a 3DDFA_V2 `.pkl` dict, read with the allow-listed unpickler (no code runs)."""
    try:
        with open(path, "rb") as f:
            data = safe_load_pickle(f)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a pickled dict of arrays, got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise CheckpointError(f"{path}: missing {missing} (has {sorted(map(str, data))[:8]})")
    out = {k: np.asarray(data[k]) for k in keys}
    bad = [k for k, v in out.items() if v.dtype.kind not in "fiu"]
    if bad:
        raise CheckpointError(f"{path}: {bad} are not numeric arrays")
    return out


def load_param_stats(path: Optional[str | Path] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) [62] of `param_mean_std_62d_120x120.pkl` (keys `mean`, `std`)."""
    path = resolve(path, "3ddfa-param-mean-std")
    arrays = read_pickle_arrays(path, ("mean", "std"))
    mean, std = (torch.from_numpy(arrays[k].astype(np.float32).reshape(-1)) for k in ("mean", "std"))
    if mean.shape != (NUM_PARAMS,) or std.shape != (NUM_PARAMS,):
        raise CheckpointError(f"{path}: mean and std must hold {NUM_PARAMS} values, got {mean.numel()} and {std.numel()}")
    return mean, std


def load_bfm_keypoints(path: Optional[str | Path] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 68-point rows of the BFM in `bfm_noneck_v3.pkl`: u [204], w_shp [204, 40], w_exp [204, 10].

    `keypoints` indexes the flattened (x, y, z per vertex) coordinate rows; the first 40 shape and
    10 expression columns are the ones 3DDFA_V2 regresses.
    """
    path = resolve(path, "3ddfa-bfm")
    arrays = read_pickle_arrays(path, ("u", "w_shp", "w_exp", "keypoints"))
    u = arrays["u"].reshape(-1).astype(np.float32)
    w_shp, w_exp = arrays["w_shp"].astype(np.float32), arrays["w_exp"].astype(np.float32)
    keypoints = arrays["keypoints"].reshape(-1).astype(np.int64)
    rows = u.shape[0]
    if (w_shp.ndim != 2 or w_exp.ndim != 2 or w_shp.shape[0] != rows or w_exp.shape[0] != rows
            or w_shp.shape[1] < SHAPE_DIM or w_exp.shape[1] < EXP_DIM):
        raise CheckpointError(f"{path}: expected u [3N], w_shp [3N, >={SHAPE_DIM}], w_exp [3N, >={EXP_DIM}]; got "
                              f"{list(arrays['u'].shape)}, {list(w_shp.shape)}, {list(w_exp.shape)}")
    if keypoints.shape != (3 * NUM_LANDMARKS,) or keypoints.min() < 0 or keypoints.max() >= rows:
        raise CheckpointError(f"{path}: keypoints must be {3 * NUM_LANDMARKS} row indices below {rows}")
    return (torch.from_numpy(u[keypoints]), torch.from_numpy(w_shp[keypoints, :SHAPE_DIM].copy()),
            torch.from_numpy(w_exp[keypoints, :EXP_DIM].copy()))


def decode_params(params: torch.Tensor, u: torch.Tensor, w_shp: torch.Tensor,
                  w_exp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """De-normalised parameters [B, 62] -> (68 points [B, 3, 68] in 3DDFA's 120x120 model frame, P [B, 3, 4])."""
    P = params[:, :12].reshape(-1, 3, 4)
    shape = params[:, 12:12 + SHAPE_DIM]
    expression = params[:, 12 + SHAPE_DIM:NUM_PARAMS]
    flat = u + shape @ w_shp.T + expression @ w_exp.T  # [B, 204], x y z per point
    vertices = flat.reshape(-1, NUM_LANDMARKS, 3).transpose(1, 2)
    return P[:, :, :3] @ vertices + P[:, :, 3:], P


def model_to_image(points: torch.Tensor, roi: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """3DDFA model-frame points [B, 3, 68] -> image landmarks [B, 68, 2] (our continuous pixels) for ROI boxes
    [B, 4]: the official `similar_transform` (pixel centres at integers), then + 0.5 for our convention."""
    x = points[:, 0] - 1
    y = size - points[:, 1]  # the model frame's y points up
    scale = (roi[:, 2:] - roi[:, :2]) / size  # [B, 2]
    return torch.stack([x * scale[:, :1] + roi[:, :1], y * scale[:, 1:] + roi[:, 1:2]], dim=-1) + 0.5


def rotation_from_matrix(P: torch.Tensor) -> torch.Tensor:
    """The rotation [B, 3, 3] of pose matrices [B, 3, 4] as 3DDFA_V2's `P2sRt`: rows 1 and 2 of P's 3x3 part
    normalised, row 3 their cross product (model frame: x right, y up, z toward the camera)."""
    r1 = F.normalize(P[:, 0, :3], dim=-1)
    r2 = F.normalize(P[:, 1, :3], dim=-1)
    return torch.stack([r1, r2, torch.linalg.cross(r1, r2, dim=-1)], dim=1)


def pose_from_matrix(P: torch.Tensor) -> torch.Tensor:
    """Yaw, pitch, roll [B, 3] in degrees from pose matrices [B, 3, 4], as 3DDFA_V2's calc_pose (its convention)."""
    R = rotation_from_matrix(P)
    s = R[:, 2, 0]
    yaw = torch.asin(s.clamp(-1 + 1e-7, 1 - 1e-7))
    pitch = torch.atan2(R[:, 2, 1], R[:, 2, 2])  # = atan2(R21 / cos(yaw), R22 / cos(yaw)): cos(yaw) > 0
    roll = torch.atan2(R[:, 1, 0], R[:, 0, 0])
    up, down = s > 0.998, s < -0.998  # gimbal lock: 3DDFA_V2 fixes yaw at +-90 degrees and roll at 0
    half_pi = torch.full_like(yaw, math.pi / 2)
    yaw = torch.where(up, half_pi, torch.where(down, -half_pi, yaw))
    pitch = torch.where(up, torch.atan2(-R[:, 0, 1], -R[:, 0, 2]),
                        torch.where(down, torch.atan2(R[:, 0, 1], R[:, 0, 2]), pitch))
    roll = torch.where(up | down, torch.zeros_like(roll), roll)
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1))


def genfields_pose_from_matrix(P: torch.Tensor) -> torch.Tensor:
    """Yaw, pitch, roll [B, 3] in degrees in genfields' convention (docs/perception.md, "Pose convention") from
    pose matrices [B, 3, 4]: the same rotation as 3DDFA_V2's, decomposed as synthface's R = Rz(roll) Rx(-pitch)
    Ry(yaw). Against 3DDFA_V2's own angles, yaw and pitch change sign (its yaw is positive with the nose toward
    image left, its pitch with the nose down) and, away from frontal, the Euler order differs."""
    return pose_from_rotation(rotation_from_matrix(P))


def roi_box_from_bbox(bbox: torch.Tensor) -> torch.Tensor:
    """The official `parse_roi_box_from_bbox`: detector boxes [B, 4] (x0, y0, x1, y1) -> ROI boxes [B, 4]:
    a square of side int(1.58 x the mean side), centred 0.14 x the mean side below the box's centre."""
    left, top, right, bottom = bbox.double().unbind(-1)
    old_size = (right - left + bottom - top) / 2
    cx, cy = right - (right - left) / 2, bottom - (bottom - top) / 2 + old_size * 0.14
    size = torch.trunc(old_size * 1.58)
    x0, y0 = cx - size / 2, cy - size / 2
    return torch.stack([x0, y0, x0 + size, y0 + size], dim=-1)


def roi_box_from_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """The official `parse_roi_box_from_landmark` of landmarks [B, 68, 2] (our pixels; the official frame
    is 0.5 px lower): a square of side sqrt(2) x their larger extent, centred on them."""
    pts = landmarks.double() - 0.5
    lo, hi = pts.min(dim=1).values, pts.max(dim=1).values
    centre = (lo + hi) / 2
    half = (hi - lo).max(dim=-1, keepdim=True).values * math.sqrt(2) / 2
    return torch.cat([centre - half, centre + half], dim=-1)


def resize_taps(n_src: int, n_dst: int, clamp: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV's INTER_LINEAR taps along one axis: source indices i0, i1 [n_dst] and 11-bit fixed-point weights
    a0, a1 (sum ~2048), computed in float32 as OpenCV does; columns clamp the position at the borders
    (`clamp`), rows clip the source indices instead (both as in OpenCV's `resize`)."""
    pos = ((torch.arange(n_dst, dtype=torch.float64) + 0.5) * (n_src / n_dst) - 0.5).float()
    i0 = torch.floor(pos)
    frac = pos - i0
    i0 = i0.long()
    if clamp:
        low, high = i0 < 0, i0 >= n_src - 1
        frac = torch.where(low | high, torch.zeros_like(frac), frac)
        i0 = torch.where(low, torch.zeros_like(i0), torch.where(high, torch.full_like(i0, n_src - 1), i0))
    a0, a1 = torch.round((1 - frac) * 2048).long(), torch.round(frac * 2048).long()
    return i0.clamp(0, n_src - 1), (i0 + 1).clamp(0, n_src - 1), a0, a1


def resize_like_opencv(x255: torch.Tensor, size: int) -> torch.Tensor:
    """`cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)` of an 8-bit image [C, H, W] (float values
    in [0, 255], rounded to whole levels as the uint8 image the official code reads): OpenCV's fixed-point taps and
    the rounding of its vectorised 8-bit path, bit-exact (OpenCV 5.0 on x86-64). Gradients: the same bilinear
    weights in floating point."""
    x0, x1, ax0, ax1 = resize_taps(x255.shape[2], size, clamp=True)
    y0, y1, ay0, ay1 = resize_taps(x255.shape[1], size, clamp=False)
    # Floating point, for the gradient: horizontal then vertical pass with the fixed-point weights / 2048.
    rows = x255[:, :, x0] * (ax0 / 2048).to(x255) + x255[:, :, x1] * (ax1 / 2048).to(x255)
    smooth = rows[:, y0] * (ay0 / 2048).to(x255)[:, None] + rows[:, y1] * (ay1 / 2048).to(x255)[:, None]
    with torch.no_grad():  # the 8-bit result: integer sums, then OpenCV's (h >> 4) * b >> 16 and (sum + 2) >> 2
        src = x255.detach().round().clamp(0, 255).long()
        h = src[:, :, x0] * ax0 + src[:, :, x1] * ax1
        exact = ((((h[:, y0] >> 4) * ay0[:, None]) >> 16) + (((h[:, y1] >> 4) * ay1[:, None]) >> 16) + 2) >> 2
        exact = exact.clamp(0, 255).to(x255.dtype)
    return smooth + (exact - smooth).detach()


def crop_official(images: torch.Tensor, roi: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """The official `crop_img` + `cv2.resize(INTER_LINEAR)`: ROI boxes [B, 4] rounded to whole pixels (Python's
    `round`, ties to even, as torch.round), black outside the image, resized to size x size as OpenCV does on
    8-bit images -> [B, 3, size, size] in [-1, 1]. Differentiable in the images (the 8-bit rounding passes
    gradients straight through)."""
    h, w = images.shape[-2:]
    crops = []
    for image, (x0, y0, x1, y1) in zip(images, torch.round(roi.detach()).long().tolist()):
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"empty ROI box {roi.tolist()}")
        inside = image[:, max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)]
        top, left = min(max(-y0, 0), y1 - y0), min(max(-x0, 0), x1 - x0)
        bottom, right = y1 - y0 - top - inside.shape[1], x1 - x0 - left - inside.shape[2]
        crop = F.pad((inside + 1) * 127.5, (left, right, top, bottom), value=0.0)  # black: 0 of 255
        crops.append(resize_like_opencv(crop, size))
    return torch.stack(crops) / 127.5 - 1


class TDDFAPass(NamedTuple):
    """One pass of the official pipeline: ROI boxes [B, 4], de-normalised parameters [B, 62], landmarks
    [B, 68, 2] (our pixels; None without the BFM), the pose [B, 3] in genfields' convention and the official
    `calc_pose` angles [B, 3] (3DDFA_V2's convention)."""

    roi: torch.Tensor
    params: torch.Tensor
    landmarks: Optional[torch.Tensor]
    pose: torch.Tensor
    official_pose: torch.Tensor


class TDDFALandmarkPose(LandmarkPoseEstimator):
    """E_lnd / E_pose from 3DDFA_V2: images in [-1, 1] -> 68 landmarks (input pixels) and yaw/pitch/roll
    (degrees, genfields' convention). Without the BFM (`bfm=None`) it gives the pose only (`pose`)."""

    def __init__(self, network: TDDFAMobileNet, param_mean: torch.Tensor, param_std: torch.Tensor,
                 bfm: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
                 box: Sequence[float] = ALIGNED_FACE_BOX, passes: int = 2):
        super().__init__()
        if passes < 1:
            raise ValueError("passes must be at least 1")
        self.network, self.passes, self.has_bfm = network, passes, bfm is not None
        self.relative_box = tuple(float(v) for v in box)
        self.register_buffer("param_mean", param_mean.float())
        self.register_buffer("param_std", param_std.float())
        u, w_shp, w_exp = bfm if bfm is not None else (torch.zeros(0),) * 3
        for name, value in (("u", u), ("w_shp", w_shp), ("w_exp", w_exp)):
            self.register_buffer(name, value.float())

    def parameters_62(self, images: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """De-normalised 62 parameters of the face in ROI boxes [B, 4] (pixels), cropped as the official code."""
        crop = crop_official(images, roi)
        x = crop.flip(1) * (127.5 / 128)  # RGB -> BGR; (x255 - 127.5) / 128 with x255 = (crop + 1) * 127.5
        return self.network(x) * self.param_std + self.param_mean

    def landmarks_of(self, params: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """The 68 landmarks [B, 68, 2] (our pixels) of de-normalised parameters and their ROI boxes (needs the BFM)."""
        if not self.has_bfm:
            raise CheckpointError("3DDFA_V2 landmarks need the BFM keypoints: genfields download 3ddfa-bfm")
        points, _ = decode_params(params, self.u, self.w_shp, self.w_exp)
        return model_to_image(points, roi.to(points.dtype))

    def run(self, images: torch.Tensor, roi: Optional[torch.Tensor] = None,
            passes: Optional[int] = None) -> list[TDDFAPass]:
        """Every pass of the official pipeline from ROI boxes [B, 4] (default: the aligned-face box); the
        passes after the first crop the landmark ROI of the previous landmarks (one pass without the BFM)."""
        check_images(images)
        roi = image_box(images, self.relative_box) if roi is None else roi
        out = []
        for k in range(passes or self.passes):
            if k:
                if out[-1].landmarks is None:
                    break
                roi = roi_box_from_landmarks(out[-1].landmarks.detach())
            params = self.parameters_62(images, roi)
            landmarks = self.landmarks_of(params, roi) if self.has_bfm else None
            P = params[:, :12].reshape(-1, 3, 4)
            out.append(TDDFAPass(roi, params, landmarks, genfields_pose_from_matrix(P), pose_from_matrix(P)))
        return out

    def forward(self, images: torch.Tensor, box: Optional[torch.Tensor] = None) -> LandmarksPose:
        """Landmarks and pose (genfields' convention) of the faces in first-pass ROI boxes `box` [B, 4]."""
        last = self.run(images, box)[-1]
        if last.landmarks is None:
            self.landmarks_of(last.params, last.roi)  # the one-line error naming the missing BFM
        return LandmarksPose(last.landmarks, last.pose)

    def pose(self, images: torch.Tensor, box: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Yaw, pitch, roll [B, 3] (degrees, genfields' convention); works without the BFM (first pass only)."""
        return self.run(images, box)[-1].pose

    def pose_from_detector_boxes(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Pose [B, 3] (genfields' convention) of the faces in detector boxes [B, 4] (x0, y0, x1, y1, pixels),
        enlarged to ROI boxes as the official code does."""
        return self.pose(images, roi_box_from_bbox(boxes))


def load_tddfa(weights: Optional[str | Path] = None, param_stats: Optional[str | Path] = None,
               bfm: Optional[str | Path] | bool = None, device: str | torch.device = "cpu", passes: int = 2,
               box: Sequence[float] = ALIGNED_FACE_BOX) -> TDDFALandmarkPose:
    """3DDFA_V2's E_lnd/E_pose from `mb1_120x120.pth` or `mb05_120x120.pth`, `param_mean_std_62d_120x120.pkl`
    and `bfm_noneck_v3.pkl` (default: the cached downloads `3ddfa-mobilenet`, `3ddfa-param-mean-std`,
    `3ddfa-bfm`); `bfm=False`: no BFM, pose only."""
    network = load_tddfa_network(weights)
    mean, std = load_param_stats(param_stats)
    keypoints = None if bfm is False else load_bfm_keypoints(None if bfm is True else bfm)
    estimator = TDDFALandmarkPose(network, mean, std, keypoints, box=box, passes=passes)
    return estimator.eval().requires_grad_(False).to(device)


def cached_bfm() -> Optional[Path]:
    """The downloaded `bfm_noneck_v3.pkl` if `genfields download 3ddfa-bfm` fetched it, else None."""
    from genfields.downloads import asset_path, get_asset

    path = asset_path(get_asset("3ddfa-bfm"))
    return path if path.is_file() else None


def load_shipped_tddfa(bfm: Optional[str | Path] = None, device: str | torch.device = "cpu",
                       passes: int = 2, box: Sequence[float] = ALIGNED_FACE_BOX) -> TDDFALandmarkPose:
    """The shipped official mb05 files (offline), with the BFM at `bfm` or the cached download when there is
    one (landmarks and the second pass), else pose only from one pass."""
    bfm = bfm if bfm is not None else cached_bfm()
    return load_tddfa(SHIPPED_DIR / SHIPPED_WEIGHTS, SHIPPED_DIR / SHIPPED_STATS,
                      bfm if bfm is not None else False, device, passes, box)
