"""Images on disk and in the library: uint8 RGB PNG <-> float NCHW in [-1, 1], grids."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from genfields.errors import GenfieldsError, check_regular_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # the photos a folder is read for


class ImageError(GenfieldsError, ValueError):
    """An image that cannot be used: missing, unreadable, not RGB, wrong size, NaN."""


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in `folder` (by suffix, any case), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] float in [-1, 1] -> [B, H, W, C] uint8 (clamped, rounded as in the official code)."""
    if images.ndim != 4:
        raise ImageError(f"expected a [B, C, H, W] batch, got shape {list(images.shape)}")
    x = (images.detach().float().cpu() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """[B, H, W, C] or [H, W, C] uint8 -> [B, C, H, W] float32 in [-1, 1]."""
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.array(array, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2).float() / 127.5 - 1


SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # what save_image writes, by suffix


def default_file_mode() -> int:
    """The mode a new file gets from the process's umask (0644 under the usual 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def set_default_mode(path: str | os.PathLike) -> None:
    """Give a written file the umask's mode: safetensors and mkstemp create theirs 0600, unlike their neighbours."""
    os.chmod(path, default_file_mode())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed onto `path` on success, removed on failure.

    The parent folder is created. A reader never sees a half-written file, and a failed write
    (full disk, `path` is a folder, an exception in between) leaves no stray temporary file. The
    file gets the umask's mode, whatever the writer created it with.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if tmp.exists():
            set_default_mode(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_image(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write one image ([C, H, W] / [1, C, H, W] float, or [H, W, C] uint8) atomically.

    The format follows the suffix: .jpg/.jpeg is JPEG (quality 95), anything else PNG.
    """
    if isinstance(image, torch.Tensor):
        image = to_uint8(image if image.ndim == 4 else image[None])[0]
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
            tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def make_grid(images: torch.Tensor, cols: int | None = None, pad: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile a batch [B, C, H, W] into one image [C, H', W'] with `cols` columns."""
    b, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = torch.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=images.dtype)
    for i in range(b):
        r, k = divmod(i, cols)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = images[i]
    return grid


MAX_PIXELS = 64_000_000  # photos above this (e.g. 10000x10000) are refused before decoding


def check_image_size(path: str | os.PathLike, size: tuple[int, int]) -> None:
    """Refuse an image whose header claims more than MAX_PIXELS pixels (memory, time, decompression bombs)."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{path}: {width}x{height} pixels is above the {MAX_PIXELS // 1_000_000}-megapixel limit; "
                         "shrink the photo first")


def load_image(path: str | os.PathLike, resolution: int | None = None) -> torch.Tensor:
    """Read an RGB image as [1, 3, H, W] in [-1, 1]; resize (Lanczos) to `resolution` if given.

    Refuses missing files, non-images, and non-RGB modes other than greyscale-free RGBA/P
    palettes that convert losslessly; a 16-bit or CMYK image is an error rather than a guess.
    The EXIF orientation (a phone photo taken sideways) is applied, so the face is upright.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise ImageError(f"no such image: {path}")
    try:
        check_regular_file(path, "image")
    except GenfieldsError as exc:
        raise ImageError(str(exc)) from None
    try:
        with warnings.catch_warnings():  # PIL warns of large images; check_image_size refuses them instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)  # reads the header only: the size is checked before decoding
        with im:
            check_image_size(path, im.size)
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode not in ("RGB", "RGBA", "P"):
                raise ImageError(f"{path}: image mode {im.mode} is not RGB (convert it to 8-bit RGB first)")
            im = im.convert("RGB")
            if resolution is not None and im.size != (resolution, resolution):
                if im.size[0] != im.size[1]:
                    raise ImageError(f"{path}: {im.size[0]}x{im.size[1]} is not square; use an aligned square crop")
                im = im.resize((resolution, resolution), Image.LANCZOS)
            return from_uint8(np.asarray(im))
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: above the {MAX_PIXELS // 1_000_000}-megapixel limit ({exc}); shrink the photo "
                         "first") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None


def check_images(images: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """Validate a float image batch: [B, channels, H, W] and finite."""
    if images.ndim != 4 or images.shape[1] != channels:
        raise ImageError(f"expected images of shape [B, {channels}, H, W], got {list(images.shape)}")
    if not torch.isfinite(images).all():
        raise ImageError("images contain NaN or infinite values")
    return images
