"""Low-level StyleGAN2 operations: FIR resampling, bias + activation, modulated convolution.

These are plain PyTorch re-formulations of the operations of NVIDIA's StyleGAN2
(stylegan2-ada-pytorch), written to give the same numbers on the CPU in float32. The
modulated convolution uses the non-fused form (scale the activations by the styles, one
shared convolution for the batch, scale the result by the demodulation coefficients): it is
mathematically identical to the per-sample-weight form and faster on a CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def fir_filter_2d(taps: list[float] | tuple[float, ...] = (1, 3, 3, 1)) -> torch.Tensor:
    """The normalised 2D FIR filter (outer product of `taps`, summing to 1) used for resampling."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, pad: tuple[int, int, int, int] = (0, 0, 0, 0),
              gain: float = 1.0) -> torch.Tensor:
    """Zero-insertion upsampling by `up`, padding (x0, x1, y0, y1), then filtering with 2D FIR `f`.

    The filter is applied as a true convolution; our filters are symmetric, so this equals
    correlation. `gain` scales the filter (upsampling by 2 needs gain 4 to keep the mean).
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(pad[0], 0), max(pad[1], 0), max(pad[2], 0), max(pad[3], 0)])
    x = x[:, :, max(-pad[2], 0):x.shape[2] - max(-pad[3], 0), max(-pad[0], 0):x.shape[3] - max(-pad[1], 0)]
    kernel = (f * gain).flip([0, 1]).to(dtype=x.dtype, device=x.device)
    kernel = kernel[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, kernel, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Upsample an image by `factor` with FIR filter `f` (StyleGAN2's skip-path upsampling)."""
    taps = f.shape[-1]
    pad0 = (taps + factor - 1) // 2
    pad1 = (taps - factor) // 2
    return upfirdn2d(x, f, up=factor, pad=(pad0, pad1, pad0, pad1), gain=factor * factor)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, lrelu: bool, gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias, apply leaky ReLU (slope 0.2) if `lrelu`, scale by `gain`, clamp."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    if lrelu:
        x = F.leaky_relu(x, LRELU_SLOPE)
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of `x` to unit mean square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 / ||weight * style|| per sample and output channel: [B, out_channels]."""
    wsq = weight.square().sum(dim=[2, 3])  # [out, in]
    return (styles.square() @ wsq.t() + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: int = 1, resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN2's modulated (and optionally demodulated) convolution, non-fused form.

    x: [B, in, H, W]; weight: [out, in, k, k]; styles: [B, in]. With `up=2` the convolution is
    a stride-2 transposed convolution followed by the FIR filter, as in the official
    implementation, giving [B, out, 2H, 2W]. Otherwise 'same' padding.
    """
    x = x * styles.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
    weight = weight.to(x.dtype)
    if up == 1:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    else:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=up)
        x = _crop_and_filter_after_transposed_conv(x, resample_filter, weight.shape[-1], up)
    if demodulate:
        d = demodulation_coefficients(weight, styles.to(weight.dtype))
        x = x * d.reshape(x.shape[0], -1, 1, 1)
    return x


def _crop_and_filter_after_transposed_conv(x: torch.Tensor, f: torch.Tensor, kernel: int, up: int) -> torch.Tensor:
    """FIR-filter the output of a stride-`up` transposed conv so that the result is `up` times larger."""
    taps = f.shape[-1]
    pad = kernel // 2  # the 'same' padding of the conv
    p0 = pad + (taps + up - 1) // 2 - (kernel - 1)
    p1 = pad + (taps - up) // 2 - (kernel - up)
    return upfirdn2d(x, f, pad=(p0, p1, p0, p1), gain=up * up)
