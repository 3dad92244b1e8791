"""Perception networks: identity (E_id), attributes (E_attr), landmarks and pose (E_lnd/E_pose), FD features.

>>> from genfields.perception import load_perception
>>> nets = load_perception("synth")
>>> nets.landmarks(images).landmarks.shape      # [B, 68, 2] pixels of the input
>>> nets.identity.similarity(nets.identity(a), nets.identity(b))   # cosine, [B]
>>> judges = load_judges("synth")                 # networks nothing is trained against: scoring only
"""

from .interfaces import (AttributeEncoder, FeatureNetwork, IdentityEncoder, LandmarkPoseEstimator, LandmarksPose,
                         resize_input)
from .metrics import equal_error_rate, feature_statistics, frechet_distance, landmark_nme, pose_mae, roc_auc
from .shipped import PerceptionSet, load_network, load_perception
from .judges import Judges, load_judges

__all__ = [
    "AttributeEncoder", "FeatureNetwork", "IdentityEncoder", "LandmarkPoseEstimator", "LandmarksPose", "resize_input",
    "equal_error_rate", "feature_statistics", "frechet_distance", "landmark_nme", "pose_mae", "roc_auc",
    "PerceptionSet", "load_network", "load_perception", "Judges", "load_judges",
]
