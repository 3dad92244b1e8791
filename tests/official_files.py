"""Files in the official formats of the real components, with random weights (for loader and preset tests).

Each writer puts a file under the registry's file name in `folder` (a GENFIELDS_HOME), with the
key names, shapes and container layout of the official file; only the numbers are random.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from genfields.downloads import REGISTRY


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the given key names and shapes (weights He-scaled, BN scales and statistics plausible)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        t = torch.randn(shape, generator=gen)
        if key.endswith("weight") and len(shape) >= 2:  # conv and linear weights
            t *= (2.0 / np.prod(shape[1:])) ** 0.5
        elif key.endswith("weight"):  # batch-norm scales
            t = 1 + 0.1 * t
        elif key.endswith("running_var"):
            t = t.abs() + 0.5
        elif key.endswith(("bias", "running_mean")):
            t *= 0.1
        state[key] = t
    return state


def numpy1_pickle(obj, path: Path) -> None:
    """Pickle `obj` as NumPy 1.x + Python 3 wrote 3DDFA_V2's files (protocol 3, `numpy.core.multiarray`)."""
    data = pickle.dumps(obj, protocol=3).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(data)


def path_of(folder: Path, component: str) -> Path:
    return folder / REGISTRY[component].filename


def write_inception(folder: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """`pt_inception-2015-12-05-6726825d.pth`: a plain state dict (older PyTorch: no BN step counters)."""
    from genfields.perception.inception import official_state_dict_shapes

    state = random_state(official_state_dict_shapes(), seed)
    torch.save(state, path_of(folder, "inception-fid"))
    return state


def write_facenet(folder: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """`20180402-114759-vggface2.pt`: facenet-pytorch's plain state dict (with the 8631-way `logits`)."""
    from genfields.perception.facenet import InceptionResnetV1
    from genfields.perception.weights import state_shapes

    state = random_state(state_shapes(InceptionResnetV1()), seed)
    torch.save(state, path_of(folder, "facenet-vggface2"))
    return state


def write_tddfa_weights(folder: Path, seed: int = 0, state: dict | None = None,
                        width: float = 1.0) -> dict[str, torch.Tensor]:
    """`mb1_120x120.pth` (`mb05_120x120.pth` at width 0.5): {'state_dict': ...} with DataParallel's `module.`
    prefix, as 3DDFA_V2's loader expects, and the training-time landmark head `fc_lm` that the official files
    carry and their inference ignores. Returns the network's tensors (without `fc_lm`)."""
    from genfields.perception.tddfa import TDDFAMobileNet
    from genfields.perception.weights import state_shapes

    state = state if state is not None else random_state(state_shapes(TDDFAMobileNet(width)), seed)
    features = state["fc.weight"].shape[1]
    landmark_head = random_state({"fc_lm.weight": (136, features), "fc_lm.bias": (136,)}, seed + 1)
    torch.save({"state_dict": {"module." + k: v for k, v in {**state, **landmark_head}.items()}},
               path_of(folder, "3ddfa-mobilenet"))
    return state


def write_tddfa_stats(folder: Path, mean: np.ndarray, std: np.ndarray) -> None:
    """`param_mean_std_62d_120x120.pkl`: {'mean': float32 [62], 'std': float32 [62]}."""
    numpy1_pickle({"mean": np.asarray(mean, np.float32), "std": np.asarray(std, np.float32)},
                  path_of(folder, "3ddfa-param-mean-std"))


def write_bfm(folder: Path, u: np.ndarray, w_shp: np.ndarray, w_exp: np.ndarray, vertices: np.ndarray,
              path: Path | None = None) -> None:
    """`bfm_noneck_v3.pkl`: u [3N, 1], w_shp [3N, K], w_exp [3N, L] (x y z rows per vertex) and the 204
    keypoint rows (3v, 3v + 1, 3v + 2) of the 68 landmark vertices."""
    keypoints = (3 * np.asarray(vertices, np.int64)[:, None] + np.arange(3)).reshape(-1)
    numpy1_pickle({"u": np.asarray(u, np.float32).reshape(-1, 1), "w_shp": np.asarray(w_shp, np.float32),
                   "w_exp": np.asarray(w_exp, np.float32), "keypoints": keypoints}, path or path_of(folder, "3ddfa-bfm"))


def random_bfm(folder: Path, seed: int = 0, n_vertices: int = 90) -> None:
    """A small random face basis: a plausible mean face (tens of units across) and small bases."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 30, (n_vertices, 3))
    write_bfm(folder, u.reshape(-1), rng.normal(0, 1e-2, (3 * n_vertices, 45)),
              rng.normal(0, 1e-2, (3 * n_vertices, 12)), rng.permutation(n_vertices)[:68])


def write_tddfa(folder: Path, seed: int = 0) -> None:
    """All three 3DDFA_V2 files with random numbers (the network's output decodes to a face-sized pose)."""
    mean = np.zeros(62, np.float32)
    mean[[0, 5, 10]] = 0.001  # P = scale * I: the random basis lands at a few pixels' size
    mean[[3, 7]] = 60.0
    write_tddfa_weights(folder, seed)
    write_tddfa_stats(folder, mean, np.full(62, 1e-4, np.float32))
    random_bfm(folder, seed)


def write_all(folder: Path, generator_pickle: Path | None = None) -> None:
    """Every component of the `ffhq256` preset in `folder` (the generator: a copy of an NVIDIA-format pickle)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_inception(folder)
    write_facenet(folder)
    write_tddfa(folder)
    if generator_pickle is not None:
        path_of(folder, "stylegan2-ffhq256").write_bytes(Path(generator_pickle).read_bytes())
