"""The FID InceptionV3: official key layout, strict loading of a random-weight file, FID on folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genfields.errors import CheckpointError
from genfields.perception.inception import (FIDInceptionV3, InceptionAttributeEncoder, _check_keys, fid_folders,
                                            load_fid_inception, official_state_dict_shapes)
from genfields.perception.interfaces import FeatureNetwork
from official_files import random_state

# torchvision's inception_v3(aux_logits=False) has 23,834,568 parameters with 1000 classes;
# the FID graph has 1008 classes, i.e. 8 more rows of the 2048-d fc (+ bias).
OFFICIAL_PARAMETERS = 23_834_568 + 8 * 2049


def random_official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the official key names and shapes."""
    return random_state(official_state_dict_shapes(), seed)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """A file written like the official one (older PyTorch: no BN step counters), and its tensors."""
    state = random_official_state()
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    return path, state


def test_official_layout():
    shapes = official_state_dict_shapes()
    assert len(shapes) == 94 * 5 + 2  # 94 conv+BN units (weight, BN weight/bias/mean/var) and fc
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
    assert shapes["Mixed_7b.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
    assert shapes["fc.weight"] == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in shapes)
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == OFFICIAL_PARAMETERS


def test_random_official_file_loads_strictly(official):
    path, state = official
    net = load_fid_inception(path)
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert not any(p.requires_grad for p in net.parameters())
    with_counters = {k: torch.empty(shape) for k, shape in official_state_dict_shapes().items()}
    with_counters.update({k.replace("running_var", "num_batches_tracked"): torch.tensor(0)
                          for k in list(with_counters) if k.endswith("running_var")})
    _check_keys(with_counters, "with counters")  # files from newer PyTorch carry them: also accepted


def test_wrong_file_is_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(1000, 2048), "AuxLogits.fc.bias": torch.zeros(1000)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"not the FID Inception.*AuxLogits.*fc\.weight"):
        load_fid_inception(tmp_path / "bad.pth")


def test_features_are_2048_d_and_differentiable(official):
    torch.set_num_threads(1)
    net = load_fid_inception(official[0])
    x = (torch.rand(1, 3, 40, 40) * 2 - 1).requires_grad_()
    encoder = InceptionAttributeEncoder(net)
    f = encoder(x)
    assert f.shape == (1, 2048) and encoder.feature_dim == 2048
    f.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


class SomeDims(FeatureNetwork):
    """A few Inception features: FID's whole path at a dimension small enough for a fast test.

    (scipy's sqrtm of a 2048 x 2048 product takes ~30 s on this machine; random weights leave
    some ReLU features dead, so the dims are ones that vary.)
    """

    def __init__(self, net: FIDInceptionV3, dims: tuple[int, ...]):
        super().__init__()
        self.net, self.dims, self.feature_dim = net, list(dims), len(dims)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)[:, self.dims]


def _numpy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Reference: |mu_a - mu_b|^2 + tr Sa + tr Sb - 2 tr sqrt(Sa Sb), the root via symmetric eigendecompositions."""
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sb @ root_a), 0, None)).sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * cross)


def test_fid_of_two_tiny_folders_matches_numpy(official, tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    folders = {}
    for name, shift in (("a", 0), ("b", 60)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(5):
            pixels = np.clip(rng.normal(128 + shift, 50, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
        folders[name] = folder
    net = SomeDims(load_fid_inception(official[0]), (3, 5, 10))
    fid = fid_folders(folders["a"], folders["b"], network=net, batch=4)

    def reference_features(folder):
        images = [np.asarray(Image.open(p), dtype=np.float32) / 127.5 - 1 for p in sorted(folder.glob("*.png"))]
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        with torch.no_grad():
            return net(batch).double().numpy()

    expected = _numpy_frechet(reference_features(folders["a"]), reference_features(folders["b"]))
    assert fid == pytest.approx(expected, rel=1e-6)
    assert fid > 0


def test_real_download_loads_if_present():
    """With the real `inception-fid` download in GENFIELDS_HOME, its keys and shapes are ours exactly."""
    from genfields.downloads import REGISTRY, asset_path

    path = asset_path(REGISTRY["inception-fid"])
    if not path.is_file():
        pytest.skip(f"real weights not downloaded ({path}); run `genfields download inception-fid`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert {k for k in state if not k.endswith("num_batches_tracked")} == set(official_state_dict_shapes())
    load_fid_inception(path)
