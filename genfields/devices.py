"""Devices and mixed precision for the pipelines that run frozen networks (`--device`, `--amp`).

- `resolve_device("cuda:1")`: a `torch.device`, or one `ConfigError` line when it is not usable here.
- `autocast(device, enabled)`: `torch.autocast` with the dtype that suits the device (float16 on
  CUDA and MPS, bfloat16 on the CPU); a no-op context when disabled, so that results are bit-identical.
- `amp_forward(fn, ...)`: run `fn` under that autocast and return its tensors as float32, so that
  losses and statistics computed afterwards stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from genfields.errors import ConfigError

DEVICE_HELP = "Device: cpu (default), cuda, cuda:N or mps."
KEEP_FREED_MEMORY_ENV = "GENFIELDS_KEEP_FREED_MEMORY"  # "0": the CLI leaves glibc's allocator as it is
AMP_HELP = ("Mixed precision: generator synthesis under torch.autocast (float16 on cuda/mps, bfloat16 on cpu); the "
            "perception networks, losses, the style regulariser, demodulation and optimizer state stay float32.")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`cpu`, `cuda`, `cuda:N` or `mps` as a `torch.device`; a ConfigError when it is unknown or unavailable."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device '{device}' (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{device} requested but torch.cuda.is_available() is False (no CUDA GPU or driver, or "
                              "a CPU-only PyTorch build); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{device} requested but only {torch.cuda.device_count()} CUDA device(s) are visible")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{device} requested but torch.backends.mps.is_available() is False (not an Apple "
                              "GPU, or a PyTorch build without MPS); use --device cpu")
        return dev
    raise ConfigError(f"unsupported device '{device}' (use cpu, cuda, cuda:N or mps)")


def amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype of a device: bfloat16 on the CPU, float16 on GPUs."""
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """`torch.autocast` for `device` when enabled, else a context that changes nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype(device))


def to_float32(value: Any) -> Any:
    """Floating tensors (also inside tuples and NamedTuples such as `LandmarksPose`) cast to float32."""
    if torch.is_tensor(value):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple):
        items = [to_float32(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


def amp_forward(fn: Callable[..., Any], *args: Any, device: torch.device, enabled: bool, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` under `autocast(device, enabled)`, its tensors returned as float32."""
    if not enabled:
        return fn(*args, **kwargs)
    with autocast(device, True):
        out = fn(*args, **kwargs)
    return to_float32(out)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module without tensors)."""
    for tensor in [*module.parameters(), *module.buffers()]:
        return tensor.device
    return torch.device("cpu")


def keep_freed_memory() -> bool:
    """Let glibc's allocator keep freed memory for reuse instead of returning it to the system.

    By default glibc serves every large tensor with a fresh `mmap` and unmaps it when freed, so each
    layer of a forward pass page-faults its feature maps in anew; on this kind of CPU that churn cost
    a quarter of paper256's synthesis time (docs/benchmarks.md, synthesis section). Serving them from
    the heap, with no trimming, removes it; resident memory then stays at its peak until the process
    ends, which suits a command-line run. Called by the CLI's launcher, not on import of the library:
    a notebook may call it itself. Returns False where the C library is not glibc (nothing changed).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    global _freed_memory_kept
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    _freed_memory_kept = all(mallopt(param, value) == 1 for param, value in
                             ((m_mmap_max, 0), (m_trim_threshold, 2**31 - 1), (m_top_pad, 1 << 28)))
    return _freed_memory_kept


_freed_memory_kept = False


def freed_memory_kept() -> bool:
    """Whether `keep_freed_memory` took effect in this process (paths whose large temporaries only pay with it,
    such as the Winograd convolutions of `genfields.stylegan2.ops`, check this)."""
    return _freed_memory_kept
