"""InceptionV3 as used by FID (the pytorch-fid variant), without torchvision, and FID itself.

The network reproduces the graph of TensorFlow's `inception-2015-12-05` that the standard FID
numbers use: torchvision-style module names (`Conv2d_1a_3x3`, `Mixed_5b`, ...) so that
`pt_inception-2015-12-05-6726825d.pth` loads strictly, average pools in the A, C and first E
blocks that ignore the zero padding, a max pool in the last E block, a 1008-way `fc` (kept
only so that the official file loads), and 2048-d features from the final average pool.
Inputs are our images in [-1, 1] at any size: they are resized bilinearly to 299x299
(align_corners=False, no antialiasing, as pytorch-fid does); [-1, 1] is already the range the
network expects, so pytorch-fid's `2x - 1` step is the identity here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genfields.imageio import ImageError, check_images, list_images, load_image
from genfields.perception.interfaces import AttributeEncoder, FeatureNetwork
from genfields.perception.metrics import feature_statistics, frechet_distance
from genfields.perception.weights import check_state_keys, load_official, state_shapes

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the TF graph's 1008 outputs (1000 ImageNet classes + 8 unused)


class BasicConv2d(nn.Module):
    """Conv (no bias) + batch norm (eps 1e-3, TF's value) + ReLU: the unit of every Inception block."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that, like TensorFlow's, averages only the non-padded inputs."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _pair_1xn(c_in: int, c_out: int, n: int) -> tuple[BasicConv2d, BasicConv2d]:
    """A factorised n x n conv: (1 x n) and (n x 1), each padded to keep the size."""
    return (BasicConv2d(c_in, c_out, (1, n), padding=(0, n // 2)),
            BasicConv2d(c_in, c_out, (n, 1), padding=(n // 2, 0)))


class FIDInceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (64 + 64 + 96 + pool_features channels)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3, strided double 3x3 and a max pool."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convs (4 x 192 channels); TF-style average pool."""

    def __init__(self, cin: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = x
        for k in range(1, 6):
            d7 = getattr(self, f"branch7x7dbl_{k}")(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: strided 3x3 after 1x1, strided 3x3 after a 7x7 pair, and a max pool."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for k in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{k}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (320 + 768 + 768 + 192 = 2048 channels).

    `max_pool` selects the pooled branch: the first E block of the FID graph uses a TF-style
    average pool, the last one a max pool (a quirk of that graph that FID numbers depend on).
    """

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a, self.branch3x3_2b = _pair_1xn(384, 384, 3)
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a, self.branch3x3dbl_3b = _pair_1xn(384, 384, 3)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d3 = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d3, self.branch_pool(pooled)], 1)


class FIDInceptionV3(FeatureNetwork):
    """The FID InceptionV3: images in [-1, 1] of any size -> 2048-d pool features (differentiable)."""

    feature_dim = FEATURE_DIM

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)  # unused by FID; present in the official file

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """Check a [B, 3, H, W] batch in [-1, 1] and resize it bilinearly to 299x299 (pytorch-fid's resize)."""
        check_images(images)
        if images.shape[-2:] == (INPUT_SIZE, INPUT_SIZE):
            return images
        return F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """299x299 input -> 35x35x192 (the convs and two max pools before the Inception blocks)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        return F.max_pool2d(x, 3, stride=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.prepare(images))
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


class InceptionAttributeEncoder(AttributeEncoder):
    """E_attr of the paper: the FID Inception's 2048-d pooled features of the attribute image."""

    feature_dim = FEATURE_DIM

    def __init__(self, network: FIDInceptionV3):
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)


def official_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of `pt_inception-2015-12-05-6726825d.pth` (without BN step counters)."""
    return state_shapes(FIDInceptionV3())


def _check_keys(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a state dict whose keys or shapes differ from the official file's, naming the differences."""
    check_state_keys(state, official_state_dict_shapes(), "FID Inception", source)


def load_fid_inception(path: Optional[str | Path] = None, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The FID InceptionV3 with the official weights (default: the cached `inception-fid` download).

    The file is read with `torch.load(weights_only=True)`: tensors only, no code runs.
    BatchNorm step counters are optional (files from older PyTorch versions lack them).
    """
    return load_official(FIDInceptionV3(), path, "inception-fid", "FID Inception").to(device)


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"no such image folder: {folder}")
    files = list_images(folder)
    if len(files) < 2:
        raise ImageError(f"{folder}: FID needs at least 2 images, found {len(files)}")
    return files


def folder_batches(folder: str | Path, batch: int = 50) -> Iterator[torch.Tensor]:
    """Batches of the folder's images resized to 299x299 (images of different sizes are fine)."""
    files = image_files(folder)
    for start in range(0, len(files), batch):
        yield torch.cat([FIDInceptionV3.prepare(load_image(p)) for p in files[start:start + batch]])


def features_of(network: FeatureNetwork, batches: Iterable[torch.Tensor],
                device: str | torch.device = "cpu") -> np.ndarray:
    """Stack the network's features of every batch into [N, D] float64."""
    with torch.no_grad():
        return np.concatenate([network(b.to(device)).double().cpu().numpy() for b in batches])


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two feature sets [N, 2048] (the project's single Fréchet distance)."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def fid_folders(folder_a: str | Path, folder_b: str | Path, network: Optional[FeatureNetwork] = None,
                batch: int = 50, device: str | torch.device = "cpu") -> float:
    """FID between two folders of images (PNG/JPEG), as pytorch-fid computes it.

    `network` defaults to the official FID Inception; any other FeatureNetwork gives an FD.
    """
    network = network or load_fid_inception(device=device)
    return fid_from_features(features_of(network, folder_batches(folder_a, batch), device),
                             features_of(network, folder_batches(folder_b, batch), device))


def fid_generator(G, folder: str | Path, n: int = 50_000, network: Optional[FeatureNetwork] = None,
                  batch: int = 50, seed: int = 0, truncation_psi: float = 1.0,
                  device: str | torch.device = "cpu") -> float:
    """FID of n samples of generator G against a folder of real images (the paper uses 50k vs FFHQ)."""
    from genfields.stylegan2.network import generator_batches

    network = network or load_fid_inception(device=device)
    fake = features_of(network, generator_batches(G, n, seed, batch, truncation_psi), device)
    return fid_from_features(fake, features_of(network, folder_batches(folder, batch), device))
