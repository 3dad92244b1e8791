"""E_id of the paper's real setting: facenet's InceptionResnetV1 trained on VGGFace2.

The paper's authors used facenet (Schroff et al. 2015) as ported to PyTorch by facenet-pytorch
(MIT; weights from David Sandberg's TensorFlow facenet). This is our own implementation whose
module names equal the keys of `20180402-114759-vggface2.pt`, so that the file loads with every
key and shape checked: a stem of plain convolutions, 5 / 10 / 5 scaled residual Inception blocks
at 35 / 17 / 8 pixels (scales 0.17 / 0.10 / 0.20) with two reduction blocks between them, a final
block without ReLU, average pooling, a 1792 -> 512 linear layer and batch norm, and the
8631-way VGGFace2 classifier `logits` (kept only so that the official file loads). The embedding
is the L2-normalised 512-d output.

Input: a face crop resized to 160x160 and standardised as facenet-pytorch's
`fixed_image_standardization`, (x - 127.5) / 128 with x in [0, 255], RGB. facenet-pytorch gets
the crop from its MTCNN detector; for FFHQ-aligned images a fixed box stands in for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genfields.imageio import check_images

from .inception import BasicConv2d
from .interfaces import IdentityEncoder, crop_boxes, image_box
from .weights import load_official

INPUT_SIZE = 160
EMBEDDING_DIM = 512
VGGFACE2_CLASSES = 8631
# The crop of an FFHQ-aligned face (fractions of the side, x0 y0 x1 y1): the square face box that
# MTCNN would give (from dlib's landmark box of the face_recognition test photos aligned FFHQ-style:
# jaw to jaw, a little above the brows to the chin) widened by facenet's training margin (~8% a
# side: 44 px at 182 px, centre-cropped to 160). An estimate, to be checked against MTCNN on FFHQ.
ALIGNED_FACE_BOX = (0.14, 0.28, 0.86, 1.0)


def _chain(*convs: tuple) -> nn.Sequential:
    """Consecutive BasicConv2d units, each given as (cin, cout, kernel[, stride[, padding]])."""
    return nn.Sequential(*(BasicConv2d(*spec) for spec in convs))


class ResidualInception(nn.Module):
    """x + scale * conv1x1(concat(branches(x))), then ReLU unless `relu` is False (Block35/17/8 of facenet)."""

    def __init__(self, channels: int, branches: Sequence[nn.Module], scale: float, relu: bool = True):
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)
        self.n_branches, self.scale, self.relu = len(branches), scale, relu
        width = sum(_out_channels(b) for b in branches)
        self.conv2d = nn.Conv2d(width, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.n_branches)], 1)
        out = x + self.scale * self.conv2d(mixed)
        return F.relu(out) if self.relu else out


class Reduction(nn.Module):
    """Grid reduction: strided conv branches and a 3x3 stride-2 max pool, concatenated (Mixed_6a/7a)."""

    def __init__(self, branches: Sequence[nn.Module]):
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)
        self.n_branches = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [getattr(self, f"branch{i}")(x) for i in range(self.n_branches)]
        return torch.cat(outs + [F.max_pool2d(x, 3, stride=2)], 1)


def _out_channels(module: nn.Module) -> int:
    last = module[-1] if isinstance(module, nn.Sequential) else module
    return last.conv.out_channels


def block35(scale: float = 0.17) -> ResidualInception:
    """35x35 residual block on 256 channels: 1x1, 1x1-3x3, 1x1-3x3-3x3 branches of 32 channels."""
    return ResidualInception(256, [BasicConv2d(256, 32, 1),
                                   _chain((256, 32, 1), (32, 32, 3, 1, 1)),
                                   _chain((256, 32, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1))], scale)


def block17(scale: float = 0.10) -> ResidualInception:
    """17x17 residual block on 896 channels: 1x1 and 1x1-1x7-7x1 branches of 128 channels."""
    return ResidualInception(896, [BasicConv2d(896, 128, 1),
                                   _chain((896, 128, 1), (128, 128, (1, 7), 1, (0, 3)),
                                          (128, 128, (7, 1), 1, (3, 0)))], scale)


def block8(scale: float = 0.20, relu: bool = True) -> ResidualInception:
    """8x8 residual block on 1792 channels: 1x1 and 1x1-1x3-3x1 branches of 192 channels."""
    return ResidualInception(1792, [BasicConv2d(1792, 192, 1),
                                    _chain((1792, 192, 1), (192, 192, (1, 3), 1, (0, 1)),
                                           (192, 192, (3, 1), 1, (1, 0)))], scale, relu)


class InceptionResnetV1(nn.Module):
    """facenet's InceptionResnetV1: standardised 160x160 RGB crops -> L2-normalised 512-d embeddings."""

    def __init__(self, num_classes: int = VGGFACE2_CLASSES):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*(block35() for _ in range(5)))
        self.mixed_6a = Reduction([BasicConv2d(256, 384, 3, stride=2),
                                   _chain((256, 192, 1), (192, 192, 3, 1, 1), (192, 256, 3, 2))])
        self.repeat_2 = nn.Sequential(*(block17() for _ in range(10)))
        self.mixed_7a = Reduction([_chain((896, 256, 1), (256, 384, 3, 2)),
                                   _chain((896, 256, 1), (256, 256, 3, 2)),
                                   _chain((896, 256, 1), (256, 256, 3, 1, 1), (256, 256, 3, 2))])
        self.repeat_3 = nn.Sequential(*(block8() for _ in range(5)))
        self.block8 = block8(scale=1.0, relu=False)
        self.last_linear = nn.Linear(1792, EMBEDDING_DIM, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBEDDING_DIM, eps=0.001)
        self.logits = nn.Linear(EMBEDDING_DIM, num_classes)  # the training classifier; unused for embeddings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        x = self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(F.max_pool2d(x, 3, stride=2))))
        x = self.repeat_3(self.mixed_7a(self.repeat_2(self.mixed_6a(self.repeat_1(x)))))
        x = self.block8(x).mean(dim=(2, 3))
        return F.normalize(self.last_bn(self.last_linear(x)), p=2, dim=1)


class FacenetIdentity(IdentityEncoder):
    """E_id: the face box of an image in [-1, 1] -> facenet's unit-norm 512-d embedding (differentiable)."""

    embedding_dim = EMBEDDING_DIM

    def __init__(self, network: InceptionResnetV1, box: Sequence[float] = ALIGNED_FACE_BOX):
        super().__init__()
        self.network, self.box = network, tuple(float(v) for v in box)

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """The standardised 160x160 input: the face box, (x255 - 127.5) / 128 = x * 127.5 / 128 for x in [-1, 1]."""
        check_images(images)
        return crop_boxes(images, image_box(images, self.box), INPUT_SIZE) * (127.5 / 128)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self.crop(images))


def load_facenet(path: Optional[str | Path] = None, device: str | torch.device = "cpu",
                 box: Sequence[float] = ALIGNED_FACE_BOX) -> FacenetIdentity:
    """facenet's E_id from `20180402-114759-vggface2.pt` (default: the cached `facenet-vggface2` download)."""
    network = load_official(InceptionResnetV1(), path, "facenet-vggface2", "facenet InceptionResnetV1 (VGGFace2)")
    return FacenetIdentity(network, box).eval().requires_grad_(False).to(device)
