"""FFHQ-style face alignment: the oriented square crop of the FFHQ dataset, from 68 landmarks.

FFHQ's recipe (Karras et al. 2019, dataset tool): the crop is a square centred a little below
the eyes (10% of the eye-to-mouth vector), turned so that the eyes are level, with half-side
max(2 x eye distance, 1.8 x eye-to-mouth distance). The photo is first shrunk when the square
is much larger than the output, cropped to the square plus a border, padded by reflection
(blurred and faded to the median colour towards the outside, so the padding does not look like
a mirrored face) where the square leaves the photo, then sampled with a quad transform at 4x
the output size and downsampled (Lanczos). Any in-the-wild photo aligned this way can serve as
an attribute image for a generator trained on FFHQ.

Landmarks are [68, 2] (x, y) in continuous pixel coordinates (pixel i covers [i, i + 1]),
as `genfields.perception.real.dlib_face` returns them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from genfields.imageio import IMAGE_SUFFIXES, ImageError, list_images

if TYPE_CHECKING:  # pragma: no cover
    import torch


ALIGN_SIZE = 256  # `genfields align`'s default output: what a photo is aligned to before resizing to a generator


class AlignedFace(NamedTuple):
    """The aligned image [S, S, 3] uint8, the crop square in the photo [4, 2], and the landmarks mapped into the crop."""

    image: np.ndarray
    quad: np.ndarray
    landmarks: np.ndarray


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square in photo coordinates: corners top-left, bottom-left, bottom-right, top-right [4, 2]."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ImageError(f"FFHQ alignment needs 68 landmarks [68, 2], got {list(lm.shape)}")
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]  # the face's "right" axis, blending both cues
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]  # x turned by 90 degrees: the face's "down" axis
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_crop(quad: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine matrix that maps photo points into the size x size aligned crop."""
    src = np.asarray(quad, dtype=np.float64)[[0, 1, 3]]  # top-left, bottom-left, top-right
    dst = np.array([[0.0, 0.0], [0.0, size], [size, 0.0]])
    A = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(A, dst).T


def _shrink(img: Image.Image, quad: np.ndarray, qsize: float, output_size: int) -> tuple[Image.Image, np.ndarray, float]:
    """Downscale the photo (by an integer factor) when the square is more than twice the output size."""
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink <= 1:
        return img, quad, qsize
    size = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
    return img.resize(size, Image.LANCZOS), quad / shrink, qsize / shrink


def _crop(img: Image.Image, quad: np.ndarray, border: int) -> tuple[Image.Image, np.ndarray]:
    """Cut the photo down to the square's bounding box plus a border (within the photo)."""
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    box = (max(lo[0] - border, 0), max(lo[1] - border, 0),
           min(hi[0] + border, img.size[0]), min(hi[1] + border, img.size[1]))
    if box[2] - box[0] < img.size[0] or box[3] - box[1] < img.size[1]:
        img, quad = img.crop(box), quad - box[:2]
    return img, quad


def _pad(img: Image.Image, quad: np.ndarray, qsize: float, border: int) -> tuple[Image.Image, np.ndarray]:
    """Reflect-pad where the square leaves the photo; blur and fade the padding towards the median colour."""
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = np.array([max(-lo[0] + border, 0), max(-lo[1] + border, 0),
                    max(hi[0] - img.size[0] + border, 0), max(hi[1] - img.size[1] + border, 0)])
    if pad.max() <= border - 4:
        return img, quad
    pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
    a = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
    h, w = a.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    # 0 inside the photo, rising to 1 at the far edge of each padded side
    mask = np.maximum(1.0 - np.minimum(np.float32(xx) / pad[0], np.float32(w - 1 - xx) / pad[2]),
                      1.0 - np.minimum(np.float32(yy) / pad[1], np.float32(h - 1 - yy) / pad[3]))[..., None]
    blur = qsize * 0.02
    a += (gaussian_filter(a, [blur, blur, 0]) - a) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    a += (np.median(a, axis=(0, 1)) - a) * np.clip(mask, 0.0, 1.0)
    return Image.fromarray(np.uint8(np.clip(np.rint(a), 0, 255)), "RGB"), quad + pad[:2]


def align_face(rgb: np.ndarray, landmarks: np.ndarray, output_size: int = 256, supersample: int = 4,
               padding: bool = True) -> AlignedFace:
    """Align a photo [H, W, 3] uint8 to an FFHQ-style output_size crop from its 68 landmarks."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    quad0 = ffhq_quad(landmarks)
    qsize = float(np.hypot(*(quad0[3] - quad0[0])))
    img, quad, qsize = _shrink(Image.fromarray(rgb, "RGB"), quad0.copy(), qsize, output_size)
    border = max(int(np.rint(qsize * 0.1)), 3)
    img, quad = _crop(img, quad, border)
    if padding:
        img, quad = _pad(img, quad, qsize, border)
    big = output_size * supersample
    img = img.transform((big, big), Image.QUAD, tuple(quad.flatten()), Image.BILINEAR)
    if big != output_size:
        img = img.resize((output_size, output_size), Image.LANCZOS)
    M = quad_to_crop(quad0, output_size)
    mapped = np.asarray(landmarks, dtype=np.float64) @ M[:, :2].T + M[:, 2]
    return AlignedFace(np.asarray(img), quad0, mapped)


def align_photo(rgb: np.ndarray, output_size: int = 256) -> AlignedFace:
    """Detect the largest face with dlib (68 landmarks) and align it FFHQ-style."""
    from genfields.perception.real import dlib_face

    landmarks, _ = dlib_face(np.ascontiguousarray(rgb))
    return align_face(rgb, landmarks, output_size)


def align_images(source: Path, out: Path, size: int = 256) -> tuple[list[Path], dict[Path, str]]:
    """Align one photo (`out`: an image file, or a folder for `<stem>.png`) or every photo of a folder (`out`: a folder).

    Returns the files written and, for a folder, the photos that could not be aligned with the
    reason (no face found, not a readable image); a single photo that fails raises instead.
    """
    from genfields.imageio import load_image, save_image, to_uint8
    from genfields.perception.real import NoFaceError

    if size < 16:
        raise ImageError(f"the aligned size must be at least 16 pixels, got {size}")
    if out.suffix.lower() in IMAGE_SUFFIXES and out.suffix.lower() != ".png":
        raise ImageError(f"{out}: aligned faces are written as PNG; give a .png name or a folder")
    if source.is_file():
        target = out if out.suffix.lower() == ".png" else out / f"{source.stem}.png"
        save_image(align_photo(to_uint8(load_image(source))[0], size).image, target)
        return [target], {}
    if not source.is_dir():
        raise ImageError(f"no such photo or folder: {source}")
    photos = list_images(source)
    if not photos:
        raise ImageError(f"{source}: no photos ({', '.join(IMAGE_SUFFIXES)})")
    if out.suffix.lower() == ".png":
        raise ImageError(f"{out}: aligning a folder needs an output folder, not an image file name")
    names = aligned_names(photos)
    written, failed = [], {}
    for photo in photos:
        try:
            written.append(save_image(align_photo(to_uint8(load_image(photo))[0], size).image, out / names[photo]))
        except (ImageError, NoFaceError) as exc:
            failed[photo] = str(exc)
    return written, failed


def aligned_names(photos: list[Path]) -> dict[Path, str]:
    """The output name of each photo: `<stem>.png`, or `<stem>_<suffix>.png` where photos share a stem.

    `face.png` and `face.webp` in one folder would otherwise both be written to `face.png`, the
    second replacing the first. Names are compared without case (a case-insensitive disk clashes too).
    """
    stems = Counter(photo.stem.casefold() for photo in photos)
    names = {photo: (f"{photo.stem}_{photo.suffix[1:].lower()}.png" if stems[photo.stem.casefold()] > 1
                     else f"{photo.stem}.png") for photo in photos}
    clashes = [name for name, n in Counter(name.casefold() for name in names.values()).items() if n > 1]
    if clashes:
        raise ImageError(f"{photos[0].parent}: several photos would be aligned to {clashes[0]}; rename them first")
    return names


# --- photos given to a command: find the face first ----------------------------------------------
def is_aligned_crop(landmarks: np.ndarray, width: int, height: int) -> bool:
    """True when the image already is an aligned face crop: square, with the FFHQ square about the frame.

    Scale and centre are checked, not rotation: the synthetic world's renders keep their head roll
    (their generator learnt it), while their face fills the frame like an aligned photo's.
    """
    if width != height:
        return False
    quad = ffhq_quad(landmarks)
    side = float(np.hypot(*(quad[3] - quad[0])))
    centre = quad.mean(0)
    return 0.75 <= side / width <= 1.33 and float(np.hypot(*(centre - width / 2))) <= 0.1 * width


def photo_for_generator(path: str | Path, resolution: int | None, align: bool = True,
                        native: int | None = None) -> tuple["torch.Tensor", str]:
    """A photo as a generator's attribute image [1, 3, R, R], with a note on what was done to it.

    `resolution` None keeps an aligned crop's own size (and aligns photos to ALIGN_SIZE).
    `native` (default: `resolution`) is the size of the world's own aligned crops (see below).

    `align=False` takes the image as it is (it must be square). Otherwise the face is found
    first: with dlib installed, a photo that is not already an aligned crop is aligned FFHQ-style
    (as `genfields align` does, at ALIGN_SIZE, then resized), and a photo without a face is
    refused. An image at the generator's own resolution in which dlib finds no face is taken as
    an aligned crop (dlib misses about 5% of the synthetic world's 64 px renders). Without dlib,
    only an image at the generator's resolution is taken as an aligned crop, and any other is
    refused with the command that aligns it.
    """
    from genfields.imageio import from_uint8, load_image, to_uint8

    from .real import NoFaceError, dlib_available, dlib_face

    path = Path(path)
    if not align:
        return load_image(path, resolution), "used as given (--no-align)"
    image = load_image(path)
    height, width = image.shape[-2:]
    if not dlib_available():
        if width == height and resolution in (None, width):
            return image, "taken as an aligned crop (its size is the generator's; dlib is not installed to check)"
        raise ImageError(f"{path}: a {width}x{height} photo must be aligned first, and finding the face needs dlib "
                         f"(pip install 'genfields[real]'): run `genfields align {path} --out aligned.png` where dlib "
                         f"is installed, or pass --no-align if it already is an aligned square face crop")
    rgb = to_uint8(image)[0]
    try:
        landmarks, _ = dlib_face(rgb)
    except NoFaceError as exc:
        if width == height == (native or resolution):  # dlib misses about 1 in 20 of the 64 px renders
            return image, f"taken as an aligned crop (it has the {width} px of the model's own crops; dlib found no " \
                          "face to check)"
        raise NoFaceError(f"{path}: {exc}; give a photo with a visible face, or pass --no-align to use it as it "
                          "is") from None
    if is_aligned_crop(landmarks, width, height):
        return load_image(path, resolution), "an aligned face crop, used as given"
    aligned = align_face(rgb, landmarks, max(ALIGN_SIZE, resolution or 0)).image
    # the same resampling as reading `genfields align`'s output file
    if resolution is not None and aligned.shape[0] != resolution:
        aligned = np.asarray(Image.fromarray(aligned).resize((resolution, resolution), Image.LANCZOS))
    return from_uint8(aligned), f"aligned FFHQ-style from the {width}x{height} photo (--no-align to skip)"
