"""Reference-based pose and expression editing in StyleGAN2's style space (paper Sec. 3.3-3.5).

>>> from genfields.editing import load_editor
>>> editor = load_editor("synth64")
>>> result = editor.edit(z, attribute_images)        # I_out = G(S_id + M_ref(E_attr(I_attr)))

Parts: `mref` (M_ref, the W-space baseline and its discriminator), `losses` (Eq. 7-11),
`regularizer` (Eq. 12 and the adversarial W regulariser), `dataset` (the generated set and
S statistics), `trainer` (two-stage training), `editor` (inference and files), `evaluate`
(the paper's metrics), `presets` (synth64, paper256, tiny16) and `config` (the named
configurations of Table 2).
"""

from .config import NAMED_CONFIGS, LossConfig, ModelConfig, TrainConfig
from .dataset import DatasetConfig, GeneratedSet, make_dataset
from .demo import run_demo
from .editor import Editor, EditResult, load_editor, save_editor, shipped_editors
from .evaluate import evaluate_editor, pair_metrics
from .losses import (
    EditingLoss,
    identity_loss,
    landmark_loss,
    pose_loss,
    reconstruction_loss,
)
from .mref import MRef, WDiscriminator, WMapper
from .presets import PRESETS, EditingPreset, get_preset
from .regularizer import StyleStatistics, style_nll
from .trainer import train_editor

__all__ = [
    "NAMED_CONFIGS", "LossConfig", "ModelConfig", "TrainConfig", "DatasetConfig", "GeneratedSet", "make_dataset",
    "run_demo", "Editor", "EditResult", "load_editor", "save_editor", "shipped_editors", "evaluate_editor",
    "pair_metrics", "EditingLoss", "identity_loss", "landmark_loss", "pose_loss", "reconstruction_loss", "MRef",
    "WDiscriminator", "WMapper", "PRESETS", "EditingPreset", "get_preset", "StyleStatistics", "style_nll",
    "train_editor",
]
