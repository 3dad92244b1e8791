"""`genfields detect`: landmarks, head pose and identity-embedding norm of one image, and a drawing of them."""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from genfields.errors import ConfigError
from genfields.imageio import load_image, to_uint8

from .interfaces import Detection

BACKENDS = ("synth", "dlib", "3ddfa")


def centre_square(image: torch.Tensor) -> torch.Tensor:
    """Crop [B, C, H, W] to its central square (aligned face crops are square)."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[..., top:top + s, left:left + s]


@torch.no_grad()
def detect_synth(image: torch.Tensor) -> Detection:
    """The shipped synthetic-world networks on one square image [1, 3, S, S]."""
    from .shipped import load_network

    lnd, ident = load_network("synth_landmarks"), load_network("synth_identity")
    found = lnd(image)
    norm = float(ident.unnormalised(image).norm(dim=1)[0])
    return Detection("synth", (image.shape[-1], image.shape[-2]), found.landmarks[0].numpy(),
                     tuple(float(v) for v in found.pose[0]), norm)


@functools.lru_cache(maxsize=1)
def shipped_tddfa_judge():
    """dlib's face box -> 3DDFA_V2 (the shipped official mb05 files; the BFM if downloaded), loaded once."""
    from .real import DlibTDDFAPose

    return DlibTDDFAPose()


@torch.no_grad()
def detect_3ddfa(image: torch.Tensor) -> Detection:
    """3DDFA_V2's pose (genfields' convention) of the largest face (dlib's box enlarged to the official ROI);
    the 68 landmarks and the second pass only when the BFM was downloaded."""
    last = shipped_tddfa_judge().run(image)[-1]
    landmarks = None if last.landmarks is None else last.landmarks[0].numpy()
    note = "" if landmarks is not None else ("no landmarks: they need the BFM (genfields download 3ddfa-bfm); "
                                             "pose from one pass")
    return Detection("3ddfa", (image.shape[-1], image.shape[-2]), landmarks, tuple(float(v) for v in last.pose[0]),
                     None, note)


def detect(image: torch.Tensor, backend: str = "synth") -> Detection:
    """Detect the face in `image` [1, 3, H, W] in [-1, 1].

    The synthetic backend expects an aligned crop and sees the central square; dlib and 3ddfa
    find the largest face anywhere in the photo (dlib's detector).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if backend == "dlib":
        from .real import detect_dlib

        return detect_dlib(image)
    if backend == "3ddfa":
        return detect_3ddfa(image)
    square = centre_square(image)
    found = detect_synth(square)
    offset = np.array([(image.shape[-1] - square.shape[-1]) // 2, (image.shape[-2] - square.shape[-2]) // 2])
    found.landmarks = found.landmarks + offset
    found.image_size = (image.shape[-1], image.shape[-2])
    return found


def detect_file(path: str | os.PathLike, backend: str = "synth") -> tuple[torch.Tensor, Detection]:
    """Read an image (clear `ImageError` if it cannot be read) and detect its face."""
    image = load_image(path)
    return image, detect(image, backend)


def draw_detection(image: torch.Tensor, found: Detection) -> np.ndarray:
    """The image as uint8 HWC with the 68 landmarks, a nose direction line and the pose written on it."""
    canvas = Image.fromarray(to_uint8(image)[0])
    scale = max(1, min(canvas.size) // 200)
    if min(canvas.size) < 256:  # small images: enlarge so that points and text stay legible
        factor = 256 // min(canvas.size) + 1
        canvas = canvas.resize((canvas.size[0] * factor, canvas.size[1] * factor), Image.NEAREST)
        scale, lm = 2, None if found.landmarks is None else found.landmarks * factor
    else:
        lm = found.landmarks
    draw = ImageDraw.Draw(canvas)
    yaw, pitch, roll = found.pose
    draw.text((4, 4), f"yaw {yaw:+.1f} pitch {pitch:+.1f} roll {roll:+.1f}", fill=(255, 255, 255))
    if lm is None:  # a pose without landmarks (3DDFA_V2 without the BFM)
        return np.asarray(canvas)
    for i, (x, y) in enumerate(lm):
        colour = (255, 64, 64) if i < 17 else (64, 255, 64)
        draw.ellipse([x - scale, y - scale, x + scale, y + scale], fill=colour)
    nose = lm[30]
    length = 0.5 * float(np.linalg.norm(lm[0] - lm[16]))
    tip = nose + length * np.array([np.sin(np.radians(yaw)), -np.sin(np.radians(pitch))])
    draw.line([tuple(nose), tuple(tip)], fill=(255, 255, 0), width=scale)
    return np.asarray(canvas)
