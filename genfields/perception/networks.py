"""The synthetic world's perception networks: one small CNN backbone, three task heads.

`SmallCNN` sees 64x64 images: four stride-2 stages (32, 16, 8, 4 px) of conv-BN-ReLU pairs, then
a fully connected layer over the 4x4 map (keeping *where* things are, which landmarks need)
to `feature_dim` features, then a linear head. The classes below wrap it behind the interfaces
and hold the label scalings, so training and inference share one definition of the outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genfields.errors import WIDTH_MAX, ConfigError, check_number
from genfields.synthface import EXPRESSION, IDENTITY, LIGHT

from .data import FACE_CODES
from .interfaces import (AttributeEncoder, FeatureNetwork, IdentityEncoder, LandmarkPoseEstimator, LandmarksPose,
                         resize_input)

NUM_LANDMARKS = 68
POSE_SCALE = 30.0  # degrees per output unit
LIGHT_CENTRE = torch.tensor([0.0, 25.0, 0.325, 0.0])  # azimuth, elevation, ambient, warmth
LIGHT_SCALE = torch.tensor([40.0, 15.0, 0.1, 0.5])
KINDS = ("landmarks", "identity", "attributes")


@dataclass(frozen=True)
class NetConfig:
    """Architecture of one network (saved as the shipped `config.json`)."""

    kind: str = "landmarks"  # landmarks | identity | attributes
    input_res: int = 64
    width: int = 32
    feature_dim: int = 256
    embedding_dim: int = 128
    depth: int = 2  # conv-BN-ReLU layers per stage (the first one strides)

    def __post_init__(self) -> None:
        """Refuse sizes out of bounds (a hostile or mistyped config.json) before anything is allocated."""
        for name, most in (("input_res", 4096), ("width", 1024), ("feature_dim", WIDTH_MAX),
                           ("embedding_dim", WIDTH_MAX), ("depth", 64)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            check_number(name, value, 1, most)

    def to_dict(self) -> dict:
        return asdict(self)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """64x64 image -> `feature_dim` features -> `out_dim` outputs; `depth` conv layers per stage."""

    def __init__(self, out_dim: int, width: int = 32, feature_dim: int = 256, depth: int = 2):
        super().__init__()
        chans = [width, 2 * width, 4 * width, 8 * width]
        layers, cin = [], 3
        for c in chans:
            layers += [conv_bn_relu(cin, c, stride=2)] + [conv_bn_relu(c, c) for _ in range(depth - 1)]
            cin = c
        self.trunk = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * 16, feature_dim), nn.BatchNorm1d(feature_dim),
                                nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SynthLandmarkPose(LandmarkPoseEstimator):
    """E_lnd / E_pose: 68 landmarks (normalised to [-1, 1] inside) and pose / 30 degrees."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.net = SmallCNN(2 * NUM_LANDMARKS + 3, config.width, config.feature_dim, config.depth)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(resize_input(images, self.config.input_res))

    def forward(self, images: torch.Tensor) -> LandmarksPose:
        out = self.raw(images)
        return decode_landmarks_pose(out, images.shape[-1])


def decode_landmarks_pose(out: torch.Tensor, res: int) -> LandmarksPose:
    """Raw outputs [B, 139] -> landmarks in pixels of a res x res image, pose in degrees."""
    lm = (out[:, :2 * NUM_LANDMARKS].view(-1, NUM_LANDMARKS, 2) + 1) * (res / 2)
    return LandmarksPose(lm, out[:, 2 * NUM_LANDMARKS:] * POSE_SCALE)


def encode_landmarks_pose(landmarks: torch.Tensor, pose: torch.Tensor, res: int) -> torch.Tensor:
    """The inverse of `decode_landmarks_pose`: training targets [B, 139]."""
    return torch.cat([(landmarks / (res / 2) - 1).flatten(1), pose / POSE_SCALE], dim=1)


class SynthIdentityEncoder(IdentityEncoder):
    """E_id: a unit-norm embedding; a linear probe on it regresses the person's face codes while training."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.embedding_dim = config.embedding_dim
        self.net = SmallCNN(config.embedding_dim, config.width, config.feature_dim, config.depth)
        self.probe = nn.Linear(config.embedding_dim, len(FACE_CODES))

    def unnormalised(self, images: torch.Tensor) -> torch.Tensor:
        """The embedding before projection to the unit sphere (its norm says how sure the network is)."""
        return self.net(resize_input(images, self.config.input_res))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.unnormalised(images), dim=1)


ATTRIBUTE_DIM = len(IDENTITY) + len(EXPRESSION) + 3 + len(LIGHT) + 2 * NUM_LANDMARKS


def encode_attributes(identity, expression, pose, light, landmarks, res: int) -> torch.Tensor:
    """All render parameters as one normalised target vector [B, ATTRIBUTE_DIM]."""
    return torch.cat([identity, expression, (light - LIGHT_CENTRE) / LIGHT_SCALE,
                      encode_landmarks_pose(landmarks, pose, res)], dim=1)


class SynthAttributeEncoder(AttributeEncoder):
    """E_attr: the penultimate features of a network that predicts every render parameter."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.feature_dim = config.feature_dim
        self.net = SmallCNN(ATTRIBUTE_DIM, config.width, config.feature_dim, config.depth)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(resize_input(images, self.config.input_res))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(resize_input(images, self.config.input_res))


class SynthFeatureNetwork(FeatureNetwork):
    """FD features: the attribute network's penultimate features (shared weights), each divided by
    its standard deviation over a fixed set of renders (`scale`; ones if not given).

    Unscaled, one rarely-firing unit holds ~96% of the features' variance, so FD would mostly count
    how often that unit fires and its floor would swing by +-2 between render sets; standardised,
    every feature counts alike.
    """

    def __init__(self, attributes: SynthAttributeEncoder, scale: torch.Tensor | None = None):
        super().__init__()
        self.attributes = attributes
        self.feature_dim = attributes.feature_dim
        self.register_buffer("scale", torch.ones(self.feature_dim) if scale is None else scale.float().clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.attributes(images) / self.scale


def build_network(config: NetConfig) -> nn.Module:
    """The (untrained) module of `config.kind`."""
    if config.kind == "landmarks":
        return SynthLandmarkPose(config)
    if config.kind == "identity":
        return SynthIdentityEncoder(config)
    if config.kind == "attributes":
        return SynthAttributeEncoder(config)
    from genfields.errors import ConfigError

    raise ConfigError(f"unknown perception network '{config.kind}' (choose from {', '.join(KINDS)})")
