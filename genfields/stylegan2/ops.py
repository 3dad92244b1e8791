"""Low-level StyleGAN2 operations: FIR resampling, bias + activation, modulated convolution.

These are plain PyTorch re-formulations of the operations of NVIDIA's StyleGAN2
(stylegan2-ada-pytorch), written to give the same numbers on the CPU in float32. The
modulated convolution uses the non-fused form (scale the activations by the styles, one
shared convolution for the batch, scale the result by the demodulation coefficients): it is
mathematically identical to the per-sample-weight form and faster on a CPU.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from genfields.devices import freed_memory_kept

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def derived(weight: torch.Tensor, kind: tuple, make) -> torch.Tensor:
    """`make(weight)`, kept on `weight` for the next call when no gradient can flow into it.

    A generator at inference, or frozen under a trained editor, converts the same weights on every call
    (the convolution's memory layout, the squared norms of demodulation, Winograd's filter transform).
    Each form is kept with the storage and version of the weight it was made from, so an optimiser
    step, `load_state_dict` or a replaced `.data` makes it again. Under `torch.inference_mode` nothing is
    kept (its tensors could not be used by autograd afterwards), nor while `torch.compile` traces (the graph
    computes the form itself).
    """
    if (torch.is_grad_enabled() and weight.requires_grad) or torch.is_inference_mode_enabled() \
            or weight.is_inference() or torch.compiler.is_compiling():
        return make(weight)
    store = weight.__dict__.setdefault("_genfields_derived", {})
    entry = store.get(kind)
    if (entry is not None and entry[1] == weight._version and entry[0].data_ptr() == weight.data_ptr()
            and entry[0].dtype == weight.dtype and entry[0].shape == weight.shape):
        return entry[2]
    value = make(weight)
    if value is not weight:  # nothing to keep when the form is the weight itself
        store[kind] = (weight.detach(), weight._version, value)  # the source's storage stays alive: a unique key
    return value


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
    wsq = derived(weight, ("squared norms", dtype), lambda w: w.to(dtype).square().sum(dim=[2, 3]))  # [out, in]
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

    A batch of one whose weights are smaller than its input folds styles and out_scale into the weights
    (the official "fused" form); otherwise the activations are scaled and the convolution shares the
    weights as they are (the non-fused form, faster on a CPU, whose weight layout `derived` keeps).
    Both run channels-last, which the CPU convolutions are faster in.
    """
    b = x.shape[0]
    weight = derived(weight, ("dtype", x.dtype), lambda w: w.to(x.dtype))
    if b == 1 and weight.numel() < x.numel():
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
        if _winograd_pays(x, weight):
            return winograd_conv3x3(x, weight)
        return F.conv2d(x, derived(weight, ("channels last",), _channels_last), padding=weight.shape[-1] // 2)
    x = F.conv_transpose2d(x, derived(weight, ("transposed, channels last",), _transposed_channels_last), stride=up)
    return _crop_and_filter_after_transposed_conv(x, resample_filter, weight.shape[-1], up)


def _channels_last(weight: torch.Tensor) -> torch.Tensor:
    return weight.contiguous(memory_format=torch.channels_last)


def _transposed_channels_last(weight: torch.Tensor) -> torch.Tensor:
    return weight.transpose(0, 1).contiguous(memory_format=torch.channels_last)


def _crop_and_filter_after_transposed_conv(x: torch.Tensor, f: torch.Tensor, kernel: int, up: int) -> torch.Tensor:
    """FIR-filter the output of a stride-`up` transposed conv so that the result is `up` times larger."""
    taps = f.shape[-1]
    pad = kernel // 2  # the 'same' padding of the conv
    p0 = pad + (taps + up - 1) // 2 - (kernel - 1)
    p1 = pad + (taps - up) // 2 - (kernel - up)
    return upfirdn2d(x, f, pad=(p0, p1, p0, p1), gain=up * up)


# --- Winograd F(4x4, 3x3) for the wide 3x3 convolutions at inference ---------------------------
# Lavin & Gray (2016), interpolation points 0, +-1, +-2, infinity: a 4x4 output tile from a 6x6 input
# tile with 36 multiplications per channel pair instead of 144. Input transform B^T d B, filter
# transform G g G^T, output transform A^T m A.
_WINOGRAD_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
                (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_WINOGRAD_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
               (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_WINOGRAD_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
# Measured on a 2-core x86 CPU (benchmarks/winograd.py, docs/benchmarks.md), the filter transform kept with
# the weights (`derived`): 1.1-2.6x faster than oneDNN's direct convolution from 256 channels and 2,048
# output pixels per call (batch x height x width) on, and from 512 channels and 1,024 pixels on (1.8-2.0x);
# narrower or smaller layers are bound by the transforms' memory traffic. The rule: at least
# WINOGRAD_MIN_CHANNELS channels, and channels x pixels at least their product with WINOGRAD_MIN_PIXELS.
WINOGRAD_MIN_CHANNELS = 256
WINOGRAD_MIN_PIXELS = 2048  # at WINOGRAD_MIN_CHANNELS; half as many at twice the channels
_winograd_on = True


@contextlib.contextmanager
def without_winograd():
    """Every 'same' convolution direct (oneDNN) while open: the baseline of the Winograd benchmarks."""
    global _winograd_on
    before, _winograd_on = _winograd_on, False
    try:
        yield
    finally:
        _winograd_on = before


def _channels(weight: torch.Tensor) -> int:
    """The narrower of a convolution's input and output channels."""
    return min(weight.shape[0], weight.shape[1])


def _winograd_pays(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a 'same' conv goes the Winograd way: wide float32 3x3 layers on the CPU, outside autograd and
    autocast.

    Also needed: oneDNN on (it runs the products; turning it off, as the exact-field measurement does to keep
    a sparse input's zeros exact, turns this off too), and freed memory kept for reuse (`devices.
    keep_freed_memory`, which the CLI sets): with glibc's default allocator the transforms' large temporaries
    page-fault in anew at every call and the gain is gone (0.96x on paper256, docs/benchmarks.md).
    """
    return (_winograd_on and torch.backends.mkldnn.enabled and freed_memory_kept()
            and x.device.type == "cpu" and x.dtype == torch.float32 and x.ndim == 4
            and weight.shape[-2:] == (3, 3) and _channels(weight) >= WINOGRAD_MIN_CHANNELS
            and _channels(weight) * x.shape[0] * x.shape[2] * x.shape[3] >= WINOGRAD_MIN_CHANNELS * WINOGRAD_MIN_PIXELS
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and not torch.is_autocast_enabled(x.device.type))  # its products in bfloat16 would lose the transforms


def _winograd_filters(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """U = G g G^T for every (out, in) pair, as one product with kron(G, G): [36 * O, C, 1, 1], channels-last."""
    out, c = weight.shape[:2]
    g = torch.tensor(_WINOGRAD_G, dtype=torch.float64)
    u = torch.kron(g, g).to(dtype) @ weight.reshape(out * c, 9).t().to(dtype)
    return u.reshape(36 * out, c, 1, 1).contiguous(memory_format=torch.channels_last)


def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """'Same' 3x3 convolution (cross-correlation, like F.conv2d with padding 1) by Winograd F(4x4, 3x3).

    x: [N, C, H, W], weight: [O, C, 3, 3]; returns [N, O, H, W] channels-last. The 36 products of the
    transformed tiles run as one grouped 1x1 convolution (oneDNN: faster here than a batched matmul).
    Agrees with the direct convolution to float32 rounding (relative 1e-5; tests/test_network.py).
    """
    n, c, h, w = x.shape
    out = weight.shape[0]
    th, tw = -(-h // 4), -(-w // 4)
    tiles = n * th * tw
    bt = torch.tensor(_WINOGRAD_BT, dtype=x.dtype)
    at = torch.tensor(_WINOGRAD_AT, dtype=x.dtype)
    u = derived(weight, ("winograd", x.dtype), lambda w: _winograd_filters(w, x.dtype))
    # Input tiles 6x6 with stride 4 of the zero-padded NHWC map, then V = B^T d B by rows and columns.
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1 + 4 * tw - w, 1, 1 + 4 * th - h))
    sn, sh, sw, sc = padded.stride()
    d = padded.as_strided((n, th, tw, 6, 6, c), (sn, 4 * sh, 4 * sw, sh, sw, sc)).reshape(tiles, 6, 6 * c)
    v = torch.matmul(bt, torch.matmul(bt, d).reshape(tiles * 6, 6, c))
    v = v.reshape(1, tiles, 1, 36 * c).permute(0, 3, 1, 2)  # channels-last [1, 36 C, tiles, 1]
    m = F.conv2d(v, u, groups=36)
    m = m.permute(0, 2, 3, 1).reshape(tiles, 6, 6 * out)
    y = torch.matmul(at, torch.matmul(at, m).reshape(tiles * 4, 6, out))  # A^T m A: [tiles * 4, 4, O]
    y = y.reshape(n, th, tw, 4, 4, out).permute(0, 1, 3, 2, 4, 5).reshape(n, 4 * th, 4 * tw, out)
    return y[:, :h, :w].permute(0, 3, 1, 2)
