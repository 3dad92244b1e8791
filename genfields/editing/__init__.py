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

import importlib

_EXPORTS = {  # name -> the submodule that defines it; imported on first use (PEP 562), so that a command
    # that only registers the editing commands does not import the editing stack and the perception networks
    "config": ["NAMED_CONFIGS", "LossConfig", "ModelConfig", "TrainConfig"],
    "dataset": ["DatasetConfig", "GeneratedSet", "make_dataset"],
    "demo": ["run_demo"],
    "editor": ["Editor", "EditResult", "load_editor", "save_editor", "shipped_editors"],
    "evaluate": ["evaluate_editor", "pair_metrics"],
    "losses": ["EditingLoss", "identity_loss", "landmark_loss", "pose_loss", "reconstruction_loss"],
    "mref": ["MRef", "WDiscriminator", "WMapper"],
    "presets": ["PRESETS", "EditingPreset", "get_preset"],
    "regularizer": ["StyleStatistics", "style_nll"],
    "trainer": ["train_editor"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
