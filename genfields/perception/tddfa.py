"""E_lnd / E_pose of the paper's real setting: 3DDFA_V2's MobileNet-V1 and its 62-parameter decoding.

3DDFA_V2 (Guo et al. 2020, MIT; the paper cites Zhu et al.'s 3DDFA) regresses 62 numbers from a
120x120 face crop: 12 for a 3x4 pose matrix P = [scale * R | t], 40 shape and 10 expression
coefficients of the Basel Face Model. We implement the network (module names equal to the keys
of the official `mb1_120x120.pth`) and the decoding in torch, so that landmarks and angles are
differentiable with respect to the image:

1. crop the face box and resample it bilinearly to 120x120 (outside the image: black, as
   3DDFA_V2's zero-padded crop), RGB -> BGR (3DDFA_V2 reads images with OpenCV), normalise
   (x - 127.5) / 128 with x in [0, 255];
2. params = network(crop) * param_std + param_mean (`param_mean_std_62d_120x120.pkl`);
3. 68 points = R @ (u + W_shp a_shp + W_exp a_exp) + t with the keypoint rows of the BFM bases
   (`bfm_noneck_v3.pkl`: `keypoints` indexes the 3 x 68 coordinates of u, w_shp, w_exp);
4. 3DDFA_V2's crop coordinates: x - 1 and 120 - y (0-based pixel centres, y pointing down;
   this is the "120 + 1 - y" flip of 3DDFA v1 followed by the shift to 0-based), then scaled
   into the box; we add 0.5 for our continuous pixel convention (pixel i covers [i, i + 1]);
5. yaw, pitch, roll as 3DDFA_V2 computes them: the rows of P's 3x3 part normalised (r1, r2,
   r3 = r1 x r2), yaw = asin(R[2, 0]), pitch = atan2(R[2, 1], R[2, 2]), roll = atan2(R[1, 0],
   R[0, 0]) (yaw +-90 degrees and roll 0 at gimbal lock, |R[2, 0]| > 0.998), in degrees.

The angles follow 3DDFA_V2's convention, not synthface's: the editing losses and metrics only
compare angles from the same estimator. The face box comes from a given box (default: where
faces are in FFHQ-aligned images) and is refined from the landmarks of the previous pass
(3DDFA_V2's landmark crop policy).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genfields.errors import CheckpointError
from genfields.imageio import check_images
from genfields.stylegan2.safe_pickle import safe_load_pickle

from .interfaces import LandmarkPoseEstimator, LandmarksPose, crop_boxes, image_box
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
    """3DDFA_V2's MobileNet-V1 (`mb1_120x120`): normalised BGR crop [B, 3, 120, 120] -> 62 normalised parameters."""

    def __init__(self, width: float = 1.0, num_params: int = NUM_PARAMS):
        super().__init__()
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


def official_state_dict(state: dict) -> dict:
    """The network tensors of an `mb1_120x120.pth` object: its `state_dict`, without DataParallel's
    `module.` prefix, `fc_param` renamed to `fc` (the two forms 3DDFA_V2's own loader accepts)."""
    inner = state.get("state_dict", state)
    if not isinstance(inner, dict):
        raise CheckpointError("the 3DDFA_V2 checkpoint's 'state_dict' is not a dict")
    out = {}
    for key, value in inner.items():
        key = key[len("module."):] if key.startswith("module.") else key
        out[key.replace("fc_param.", "fc.", 1) if key.startswith("fc_param.") else key] = value
    return out


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


def model_to_image(points: torch.Tensor, box: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """3DDFA model-frame points [B, 3, 68] -> image landmarks [B, 68, 2] (continuous pixels) for crop boxes [B, 4]."""
    x = points[:, 0] - 1  # 3DDFA_V2's 0-based crop coordinates (pixel centres at integers)
    y = size - points[:, 1]  # y flipped: the model frame's y points up
    scale = (box[:, 2:] - box[:, :2]) / size  # [B, 2]
    return torch.stack([(x + 0.5) * scale[:, :1] + box[:, :1], (y + 0.5) * scale[:, 1:] + box[:, 1:2]], dim=-1)


def pose_from_matrix(P: torch.Tensor) -> torch.Tensor:
    """Yaw, pitch, roll [B, 3] in degrees from pose matrices [B, 3, 4], as 3DDFA_V2's calc_pose."""
    r1 = F.normalize(P[:, 0, :3], dim=-1)
    r2 = F.normalize(P[:, 1, :3], dim=-1)
    r3 = torch.linalg.cross(r1, r2, dim=-1)
    R = torch.stack([r1, r2, r3], dim=1)
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


def box_from_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """3DDFA_V2's crop from landmarks [B, 68, 2]: a square of side sqrt(2) x the larger extent, centred on them."""
    lo, hi = landmarks.min(dim=1).values, landmarks.max(dim=1).values
    centre = (lo + hi) / 2
    half = (hi - lo).max(dim=-1, keepdim=True).values * math.sqrt(2) / 2
    return torch.cat([centre - half, centre + half], dim=-1)


class TDDFALandmarkPose(LandmarkPoseEstimator):
    """E_lnd / E_pose from 3DDFA_V2: images in [-1, 1] -> 68 landmarks (input pixels) and yaw/pitch/roll (degrees)."""

    def __init__(self, network: TDDFAMobileNet, param_mean: torch.Tensor, param_std: torch.Tensor,
                 u: torch.Tensor, w_shp: torch.Tensor, w_exp: torch.Tensor,
                 box: Sequence[float] = ALIGNED_FACE_BOX, passes: int = 2):
        super().__init__()
        if passes < 1:
            raise ValueError("passes must be at least 1")
        self.network, self.passes = network, passes
        self.relative_box = tuple(float(v) for v in box)
        for name, value in (("param_mean", param_mean), ("param_std", param_std), ("u", u), ("w_shp", w_shp),
                            ("w_exp", w_exp)):
            self.register_buffer(name, value.float())

    def parameters_62(self, images: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """De-normalised 62 parameters of the face in boxes [B, 4] (continuous pixels)."""
        crop = crop_boxes(images, box, INPUT_SIZE)
        x = crop.flip(1) * (127.5 / 128)  # RGB -> BGR; (x255 - 127.5) / 128 with x255 = (crop + 1) * 127.5
        return self.network(x) * self.param_std + self.param_mean

    def decode(self, params: torch.Tensor, box: torch.Tensor) -> LandmarksPose:
        """Landmarks in the image and angles from de-normalised parameters and their crop boxes."""
        points, P = decode_params(params, self.u, self.w_shp, self.w_exp)
        return LandmarksPose(model_to_image(points, box), pose_from_matrix(P))

    def forward(self, images: torch.Tensor, box: Optional[torch.Tensor] = None) -> LandmarksPose:
        check_images(images)
        if box is None:
            box = image_box(images, self.relative_box)
        result = None
        for k in range(self.passes):
            if k:
                box = box_from_landmarks(result.landmarks.detach())  # 3DDFA_V2's landmark crop policy
            result = self.decode(self.parameters_62(images, box), box)
        return result


def load_tddfa(weights: Optional[str | Path] = None, param_stats: Optional[str | Path] = None,
               bfm: Optional[str | Path] = None, device: str | torch.device = "cpu", passes: int = 2,
               box: Sequence[float] = ALIGNED_FACE_BOX) -> TDDFALandmarkPose:
    """3DDFA_V2's E_lnd/E_pose from `mb1_120x120.pth`, `param_mean_std_62d_120x120.pkl` and
    `bfm_noneck_v3.pkl` (default: the cached downloads `3ddfa-mobilenet`, `3ddfa-param-mean-std`, `3ddfa-bfm`)."""
    path = resolve(weights, "3ddfa-mobilenet")
    state = official_state_dict(read_state_dict(path))
    network = load_official(TDDFAMobileNet(), path, "3ddfa-mobilenet", "3DDFA_V2 mb1_120x120", state)
    mean, std = load_param_stats(param_stats)
    estimator = TDDFALandmarkPose(network, mean, std, *load_bfm_keypoints(bfm), box=box, passes=passes)
    return estimator.eval().requires_grad_(False).to(device)
