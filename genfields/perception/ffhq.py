"""The perception networks of the paper's real setting (preset `ffhq256`), from the cached downloads.

E_id: facenet InceptionResnetV1 (VGGFace2); E_attr: the FID InceptionV3's 2048-d pool features;
E_lnd / E_pose: 3DDFA_V2; FD features: the same InceptionV3, so that the FD is the FID.
"""

from __future__ import annotations

import torch

from genfields.downloads import require_all

from .facenet import load_facenet
from .inception import InceptionAttributeEncoder, load_fid_inception
from .interfaces import PerceptionSet
from .tddfa import load_tddfa

COMPONENTS = ("inception-fid", "facenet-vggface2", "3ddfa-mobilenet", "3ddfa-param-mean-std", "3ddfa-bfm")


def load_ffhq_perception(device: str | torch.device = "cpu"):
    """The `ffhq256` PerceptionSet; one DownloadError naming every missing file first."""
    files = require_all(COMPONENTS)
    inception = load_fid_inception(files["inception-fid"], device)
    return PerceptionSet(identity=load_facenet(files["facenet-vggface2"], device),
                         attributes=InceptionAttributeEncoder(inception),
                         landmarks=load_tddfa(files["3ddfa-mobilenet"], files["3ddfa-param-mean-std"],
                                              files["3ddfa-bfm"], device),
                         features=inception)
