"""A restricted unpickler for NVIDIA's StyleGAN2 network pickles (and NumPy array pickles) that never runs code.

Official snapshots (stylegan2-ada-pytorch, stylegan3) are plain pickles of `torch_utils.persistence`
objects: each module is stored as its class's *source code* plus its `__dict__`, and a plain
`pickle.load` re-executes that source. Here every global the pickle asks for is looked up in an
allow-list; persistent objects become inert `PersistentRecord`s (the source is kept as a string
and never executed); tensors are rebuilt by torch's own safe loader. Anything else, for example
`os.system` or `builtins.eval`, is refused with `UnsafePickleError` before it can be called.
The same allow-list reads plain pickles of NumPy arrays (3DDFA_V2's `.pkl` files): arrays are
rebuilt by `_reconstruct` + `ndarray.__setstate__` with non-object dtypes only.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import torch

from genfields.errors import CheckpointError, UnsafePickleError


@dataclass
class PersistentRecord:
    """What a `torch_utils.persistence` object holds: its class name and its state, inert."""

    class_name: str
    module_name: str
    state: dict = field(repr=False)

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs", {}) or {})

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args", ()) or ())

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The module tree's parameters and buffers as a flat state dict."""
        out: dict[str, torch.Tensor] = {}
        for key in ("_parameters", "_buffers"):
            for name, value in (self.state.get(key) or {}).items():
                if value is not None:
                    out[prefix + name] = value
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, PersistentRecord):
                out.update(child.tensors(prefix + name + "."))
        return out


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _reconstruct_persistent_obj(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("unsupported persistent object in the pickle (expected a persisted class)")
    state = meta.get("state") or {}
    return PersistentRecord(class_name=str(meta.get("class_name")), module_name="", state=dict(state))


def _load_storage_from_bytes(data: bytes):
    """Storages are pickled as nested `torch.save` blobs; load those with torch's weights-only loader."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_parameter(data, requires_grad, backward_hooks, *extra):
    return torch.nn.Parameter(data, requires_grad=False)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("refusing a NumPy object scalar in the pickle")
    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


class _NdarrayType:
    """What the pickle gets for `numpy.ndarray`: a marker that `_reconstruct` accepts, not a callable class."""


def _numpy_reconstruct(subtype, shape, dtype_code):
    """An empty ndarray that the pickle's BUILD step fills (`numpy.core.multiarray._reconstruct`, plain ndarray only)."""
    if subtype is not _NdarrayType:
        raise UnsafePickleError("refusing an ndarray subclass in the pickle")
    return np.ndarray.__new__(np.ndarray, shape, _numpy_dtype(dtype_code))


def _numpy_dtype(name, align=False, copy=False):
    dt = np.dtype(name)
    if dt.hasobject:
        raise UnsafePickleError("refusing a NumPy object dtype in the pickle")
    return dt


_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}

ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): _NdarrayType,  # only as _reconstruct's subtype argument
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("torch", "Size"): torch.Size,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals only through `ALLOWED`; refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        raise UnsafePickleError(f"refused: the pickle references {module}.{name}, which is not on the allow-list "
                                "(StyleGAN2 network pickles, NumPy arrays); nothing was executed")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused: the pickle uses persistent ids, which network pickles do not")


def safe_load_pickle(f: BinaryIO) -> Any:
    """Unpickle `f` with the allow-list. Raises `UnsafePickleError` or `CheckpointError`, never runs code."""
    try:
        return RestrictedUnpickler(f).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError, UnicodeDecodeError, MemoryError) as exc:
        raise CheckpointError(f"the pickle is truncated or corrupt ({type(exc).__name__}: {exc})") from None
