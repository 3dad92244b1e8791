"""Degradations that make renders look like GAN samples: colour shifts, blur, noise, JPEG blocks.

Used as training augmentation and, with a fixed generator, to build the degraded held-out set.
Every random number comes from the `torch.Generator` passed in, so runs are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The JPEG standard's quantisation tables (ITU T.81 Annex K), luma and chroma.
_LUMA_Q = torch.tensor([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=torch.float32).view(8, 8)
_CHROMA_Q = torch.full((8, 8), 99.0)
_CHROMA_Q[:4, :4] = torch.tensor([[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99.0]])
_RGB_TO_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def colour_jitter(x: torch.Tensor, gen: torch.Generator, amount: float = 1.0) -> torch.Tensor:
    """Random brightness, contrast, saturation and per-channel gain, per image."""
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * _uniform(n, 1 - 0.3 * amount, 1 + 0.3 * amount, gen).view(shape)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * _uniform(n, 1 - 0.25 * amount, 1 + 0.25 * amount, gen).view(shape)
    gain = 1 + 0.1 * amount * (2 * torch.rand(n, 3, 1, 1, generator=gen) - 1)
    return (x + 1) * gain - 1 + _uniform(n, -0.15 * amount, 0.15 * amount, gen).view(shape)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur image i with its own sigma[i] (pixels; 0 = unchanged), separable, reflect padding."""
    n, c, h, w = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [n*c, taps]
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)
    return y.view(n, c, h, w)


def _dct_matrix(size: int = 8) -> torch.Tensor:
    i = torch.arange(size, dtype=torch.float32)
    m = torch.cos(math.pi * (2 * i[None] + 1) * i[:, None] / (2 * size)) * math.sqrt(2 / size)
    m[0] /= math.sqrt(2)
    return m


def jpeg_like(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG's lossy step (YCbCr, 8x8 DCT, quantisation by the standard tables at `quality[i]`), no chroma subsampling."""
    n, _, h, w = x.shape
    pad_h, pad_w = (-h) % 8, (-w) % 8
    ycc = torch.einsum("ij,njhw->nihw", _RGB_TO_YCC, F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") * 127.5)
    blocks = ycc.unfold(2, 8, 8).unfold(3, 8, 8)  # [n, 3, H/8, W/8, 8, 8]
    d = _dct_matrix()
    coef = d @ blocks @ d.T
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 50 / q, 2 - q / 50).view(n, 1, 1, 1, 1, 1)
    table = torch.stack([_LUMA_Q, _CHROMA_Q, _CHROMA_Q]).view(1, 3, 1, 1, 8, 8)
    step = (table * scale).clamp_min(1)
    blocks = d.T @ (torch.round(coef / step) * step) @ d
    ycc = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, 3, h + pad_h, w + pad_w)
    rgb = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YCC), ycc) / 127.5
    return rgb[:, :, :h, :w]


def degrade(images: torch.Tensor, gen: torch.Generator, p: float = 0.5, amount: float = 1.0) -> torch.Tensor:
    """Apply each degradation to each image with probability `p` (strength scaled by `amount`)."""
    n = images.shape[0]

    def chosen() -> torch.Tensor:
        return (torch.rand(n, generator=gen) < p).view(n, 1, 1, 1)

    x = torch.where(chosen(), colour_jitter(images, gen, amount), images)
    x = torch.where(chosen(), gaussian_blur(x, _uniform(n, 0.3, 0.3 + 0.9 * amount, gen)), x)
    noise = torch.randn(x.shape, generator=gen) * _uniform(n, 0.0, 0.08 * amount, gen).view(n, 1, 1, 1)
    x = torch.where(chosen(), x + noise, x)
    x = torch.where(chosen(), jpeg_like(x.clamp(-1, 1), _uniform(n, 95 - 65 * amount, 95, gen)), x)
    return x.clamp(-1, 1)
