"""Reading official PyTorch weight files safely and checking them against our networks' layouts.

Every real-world network (FID Inception, 3DDFA_V2 MobileNet, facenet InceptionResnetV1) is our
own module whose parameter names equal the official file's keys. Files are read with
`torch.load(weights_only=True)` (tensors only, no code runs) and refused unless every key and
shape matches; BatchNorm step counters are optional (older PyTorch versions did not save them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from genfields.errors import CheckpointError


def state_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a module's state dict, without BatchNorm step counters."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


def read_state_dict(path: str | Path) -> dict:
    """The object saved in a `.pth`/`.pt` file, read with the weights-only loader; a CheckpointError if unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def check_state_keys(state: dict, expected: dict[str, tuple[int, ...]], what: str, source: str) -> None:
    """Refuse a state dict whose keys or shapes differ from `expected`, naming the first differences."""
    got = {k: tuple(v.shape) for k, v in state.items()
           if isinstance(v, torch.Tensor) and not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
    if missing or unexpected or wrong:
        raise CheckpointError(f"{source} is not the {what} state dict: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}")


def load_official(module: nn.Module, path: Optional[str | Path], component: str, what: str,
                  state: Optional[dict] = None) -> nn.Module:
    """Load checked official weights into `module` (eval mode, frozen).

    `path` None means the cached download of registry entry `component` (a DownloadError naming
    the file, URL and folder when it is missing); `state` is the already unpacked state dict.
    """
    if state is None:
        state = read_state_dict(resolve(path, component))
    check_state_keys(state, state_shapes(module), what, str(path or component))
    module.load_state_dict(state, strict=False)  # keys checked above; BN counters may be absent
    return module.eval().requires_grad_(False)


def resolve(path: Optional[str | Path], component: str) -> Path:
    """`path`, or the cached file of registry entry `component`."""
    if path is not None:
        return Path(path)
    from genfields.downloads import require

    return require(component)
