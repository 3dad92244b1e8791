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
    kernel = (f * gain).flip([0, 1]).to(dtype=x.dtype, device=x.device)[None, None]
    if pad[0] == pad[1] >= 0 and pad[2] == pad[3] >= 0:  # symmetric: let the convolution pad
        return _depthwise(x, kernel, padding=(pad[2], pad[0]))
    x = F.pad(x, [max(pad[0], 0), max(pad[1], 0), max(pad[2], 0), max(pad[3], 0)])
    x = x[:, :, max(-pad[2], 0):x.shape[2] - max(-pad[3], 0), max(-pad[0], 0):x.shape[3] - max(-pad[1], 0)]
    return _depthwise(x, kernel, padding=(0, 0))


def _depthwise(x: torch.Tensor, kernel: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """The same 2D filter on every channel. float64 (used for field measurements) has no fast
    grouped kernel on the CPU, so it folds the channels into the batch instead."""
    b, c, h, w = x.shape
    if x.dtype == torch.float64:
        y = F.conv2d(x.reshape(b * c, 1, h, w), kernel, padding=padding)
        return y.reshape(b, c, *y.shape[-2:])
    return F.conv2d(x, kernel.expand(c, 1, *kernel.shape[-2:]), padding=padding, groups=c)


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


def lrelu_clamp(x: torch.Tensor, clamp: float | None) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) and the optional clamp; in place when no gradient is recorded (saves two
    full-size allocations per layer at inference)."""
    inplace = not torch.is_grad_enabled()
    x = F.leaky_relu(x, LRELU_SLOPE, inplace=inplace)
    if clamp is None:
        return x
    return x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of `x` to unit mean square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 / ||weight * style|| per sample and output channel: [B, out_channels].

    Written with elementwise ops (not a matmul) so that it stays float32 under autocast.
    """
    dtype = torch.promote_types(torch.promote_types(weight.dtype, styles.dtype), torch.float32)
    wsq = weight.to(dtype).square().sum(dim=[2, 3])  # [out, in]
    return ((styles.to(dtype).square()[:, None, :] * wsq[None]).sum(dim=-1) + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, up: int = 1,
                     resample_filter: torch.Tensor | None = None, out_scale: torch.Tensor | None = None,
                     shift: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN2's modulated convolution: conv(x * styles, weight) * out_scale + shift.

    x: [B, in, H, W]; weight: [out, in, k, k]; styles: [B, in]; out_scale: [B, out] (the
    demodulation coefficients, times any gain); shift: broadcastable to the output, and
    channels-last if it is full-size (mixed layouts take a slow elementwise path). With `up=2`
    the conv is a stride-2 transposed conv followed by the FIR filter, as in the official code,
    giving [B, out, 2H, 2W]; otherwise 'same' padding.

    A batch of one folds styles and out_scale into the weights (the official "fused" form);
    larger batches scale the activations instead and share one convolution (the non-fused form,
    faster on a CPU). Both run channels-last, which the CPU convolutions are faster in.
    """
    b = x.shape[0]
    weight = weight.to(x.dtype)
    if b == 1:
        weight = weight * styles.to(x.dtype).reshape(1, -1, 1, 1)
        if out_scale is not None:
            weight = weight * out_scale.to(x.dtype).reshape(-1, 1, 1, 1)
        y = conv2d_resample(x.contiguous(memory_format=torch.channels_last), weight, up, resample_filter)
        return y if shift is None else y + shift
    x = (x * styles.to(x.dtype).reshape(b, -1, 1, 1)).contiguous(memory_format=torch.channels_last)
    y = conv2d_resample(x, weight, up, resample_filter)
    if out_scale is None:
        return y if shift is None else y + shift
    out_scale = out_scale.to(x.dtype).reshape(b, -1, 1, 1)
    if shift is None:
        return y * out_scale
    return torch.addcmul(shift, y, out_scale)


def conv2d_resample(x: torch.Tensor, weight: torch.Tensor, up: int,
                    resample_filter: torch.Tensor | None) -> torch.Tensor:
    """'Same' conv, or the upsampling conv (stride-2 transposed conv + FIR), channels-last: the convolution
    of `modulated_conv2d` once the styles are applied (also used with styles folded into `weight`)."""
    if up == 1:
        return F.conv2d(x, weight.contiguous(memory_format=torch.channels_last), padding=weight.shape[-1] // 2)
    x = F.conv_transpose2d(x, weight.transpose(0, 1).contiguous(memory_format=torch.channels_last), stride=up)
    return _crop_and_filter_after_transposed_conv(x, resample_filter, weight.shape[-1], up)


def _crop_and_filter_after_transposed_conv(x: torch.Tensor, f: torch.Tensor, kernel: int, up: int) -> torch.Tensor:
    """FIR-filter the output of a stride-`up` transposed conv so that the result is `up` times larger."""
    taps = f.shape[-1]
    pad = kernel // 2  # the 'same' padding of the conv
    p0 = pad + (taps + up - 1) // 2 - (kernel - 1)
    p1 = pad + (taps - up) // 2 - (kernel - up)
    return upfirdn2d(x, f, pad=(p0, p1, p0, p1), gain=up * up)
