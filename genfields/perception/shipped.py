"""Shipped perception weights: export (float16 safetensors + config.json + model card) and loading.

A network folder holds `model.safetensors`, `config.json` (`NetConfig`, the training settings
and the held-out results) and `MODEL_CARD.md`. `load_perception("synth")` returns the set of
networks the editor and the evaluation use.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from genfields.errors import CheckpointError, ConfigError, GenfieldsError, check_regular_file, short_message
from genfields.imageio import set_default_mode
from genfields.models import MODELS_DIR

from .interfaces import (AttributeEncoder, FeatureNetwork, IdentityEncoder, LandmarkPoseEstimator,  # noqa: F401
                         PerceptionSet)
from .networks import NetConfig, SynthFeatureNetwork, build_network
from .roles import ROLE, refuse_judge

PERCEPTION_DIR = MODELS_DIR / "perception"
FORMAT = "genfields-perception-v1"
FD_SCALE_FILE = "fd_scale.safetensors"  # beside the attribute network: per-feature std for FD
FD_SCALE_SEED = 9090  # renders of this seed define the scale; evaluations render other seeds
PRESETS = {"synth": {"landmarks": "synth_landmarks", "identity": "synth_identity", "attributes": "synth_attributes"}}
PURPOSE = {
    "landmarks": "E_lnd / E_pose: 68 iBUG landmarks (pixels) and yaw/pitch/roll (degrees) of a synthetic face.",
    "identity": "E_id: unit-norm identity embedding; same person = high cosine similarity, "
                "invariant to pose, expression, light and background.",
    "attributes": "E_attr: 256-d penultimate features of a network regressing every render parameter "
                  "(identity, expression, pose, light, landmarks); also the FD feature network.",
}


def export_network(model: torch.nn.Module, folder: str | os.PathLike, train_config: dict, results: dict,
                   command: str = "") -> Path:
    """Write `model` as float16 safetensors with its config and a generated model card."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": FORMAT})
    os.chmod(folder / "model.safetensors", 0o644)  # shipped with the package: world-readable like its code
    config = {"format": FORMAT, "network": model.config.to_dict(), "train": train_config, "results": results,
              "command": command}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(model_card(config))
    return folder


def model_card(config: dict) -> str:
    """A Markdown model card from a network folder's config."""
    net, train, results = config["network"], config["train"], config["results"]
    rows = "\n".join(f"| {k} | {results['clean'][k]:.4g} | {results['degraded'][k]:.4g} |" for k in results["clean"])
    judge = ("\n**Judge**: scores editors in `genfields evaluate`; never a loss network or an input (loading it for "
             "training is refused). Trained on people disjoint from every other set (its own seed's streams), with "
             "another seed and architecture than the loss networks.\n" if config.get("role") == "judge" else "")
    return f"""# Perception network `{net['kind']}` (synthetic world)

{PURPOSE[net['kind']]}
{judge}
- **Architecture**: `SmallCNN` (genfields/perception/networks.py), input {net['input_res']}x{net['input_res']}
  (other sizes are resized), width {net['width']}, {net.get('depth', 2)} conv layers per stage, features
  {net['feature_dim']}; weights float16.
- **Data**: synthface renders at {train['res']} px, {train['ids']} people x {train['views']} views (seed {train['seed']});
  a view redraws expression, pose, light, background and clothes; {round(100 * train['uniform_pose_share'])}% of
  poses uniform (yaw +-45, pitch/roll +-30), the rest FFHQ-like. Augmentation: colour jitter, blur,
  noise and JPEG-like quantisation, each with probability {train['augment_p']}.
- **Training**: {train['steps']} steps of batch {train['batch']}, AdamW lr {train['lr']}, seed {train['seed']},
  bfloat16 autocast, {train['threads']} thread(s).
  Command: `{config.get('command') or 'genfields train-perception --net ' + net['kind']}`
- **Held-out**: {results['heldout_people']} unseen people x {train['heldout_views']} views
  ({results['heldout_images']} images, seed {train['heldout_seed']}); "degraded" applies each degradation
  to 3 images in 4 at full strength (fixed seed).

| metric | clean | degraded |
|---|---|---|
{rows}

Metrics: `nme` = mean landmark error / face size (distance of landmarks 1-17); `*_mae` in degrees;
`eer`, `roc_auc` = verification on all same-person pairs and 20000 random different-person pairs;
`*_r2` = mean R^2 of the predicted parameters. Not meant for real photos.
"""


def network_folder(name: str | os.PathLike) -> Path:
    """A shipped network name (e.g. `synth_landmarks`) or a folder path -> its folder."""
    folder = Path(name)
    if not (folder / "config.json").is_file():
        folder = PERCEPTION_DIR / str(name)
    if not (folder / "config.json").is_file():
        known = ", ".join(sorted(p.name for p in PERCEPTION_DIR.glob("*") if (p / "config.json").is_file()))
        raise CheckpointError(f"no perception network '{name}' (shipped: {known or 'none'})")
    return folder


def load_network(name: str | os.PathLike, role: str | None = None) -> torch.nn.Module:
    """Load one network (float32, eval mode, no gradients for its parameters).

    Judges (`judges.py`) are refused unless `role="judge"`: only the evaluation asks for them."""
    folder = network_folder(name)
    config_path = check_regular_file(folder / "config.json", "network config")
    weights = folder / "model.safetensors"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError(f"a JSON {type(config).__name__}, not an object")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config_path}: cannot load the perception network's config "
                              f"({short_message(exc)})") from None
    if role != ROLE:  # the role first: an instrument of another architecture is refused as what it is
        refuse_judge(str(name), config)
    elif config.get("role") != ROLE:
        raise ConfigError(f"perception network '{name}' is not a judge (it may be a loss network)")
    try:
        net_config = NetConfig(**config["network"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{config_path}: cannot load the perception network's config "
                              f"({short_message(exc)})") from None
    check_regular_file(weights, "network weights")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tensors = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types, all meaning a bad file
        raise CheckpointError(f"{weights}: truncated or corrupt safetensors file ({short_message(exc)})") from None
    model = build_network(net_config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{weights}: weights do not fit the configuration in {config_path.name} "
                              f"({short_message(exc).split('. ')[0]})") from None
    model.is_judge = role == ROLE
    return model.eval().requires_grad_(False)


def load_perception(preset: str = "synth", device: str | torch.device = "cpu") -> PerceptionSet:
    """The networks of a preset on `device`; `synth` = the shipped synthetic-world networks, `ffhq256` =
    the paper's real networks (3DDFA_V2, facenet, InceptionV3) from the cached downloads."""
    if preset == "ffhq256":
        from .ffhq import load_ffhq_perception

        return load_ffhq_perception(device)
    if preset not in PRESETS:
        raise ConfigError(f"unknown perception preset '{preset}' (known: {', '.join(PRESETS)}, ffhq256)")
    names = PRESETS[preset]
    attributes = load_network(names["attributes"])
    return PerceptionSet(identity=load_network(names["identity"]), attributes=attributes,
                         landmarks=load_network(names["landmarks"]),
                         features=SynthFeatureNetwork(attributes, load_fd_scale(names["attributes"]))).to(device)


@torch.no_grad()
def measure_fd_scale(attributes: torch.nn.Module, n: int = 4096, res: int = 64, seed: int = FD_SCALE_SEED,
                     batch: int = 128) -> torch.Tensor:
    """Per-feature std of E_attr over n renders of `seed` (dead units get 1, so they stay 0)."""
    from genfields.synthface import render_batch

    feats = torch.cat([attributes(render_batch(min(batch, n - s), res=res, seed=seed, start_index=s).images)
                       for s in range(0, n, batch)])
    std = feats.double().std(dim=0)
    return torch.where(std > 1e-6, std, torch.ones_like(std)).float()


def write_fd_scale(name: str | os.PathLike, n: int = 4096, res: int = 64, seed: int = FD_SCALE_SEED) -> Path:
    """Measure and store the FD feature scale beside an attribute network (see `SynthFeatureNetwork`)."""
    folder = network_folder(name)
    scale = measure_fd_scale(load_network(folder), n, res, seed)
    path = folder / FD_SCALE_FILE
    save_file({"scale": scale}, str(path), metadata={"renders": str(n), "res": str(res), "seed": str(seed)})
    set_default_mode(path)
    return path


def load_fd_scale(name: str | os.PathLike) -> torch.Tensor | None:
    """The stored FD feature scale of an attribute network, or None (unscaled features) if it has none."""
    path = network_folder(name) / FD_SCALE_FILE
    if not path.is_file():
        return None
    try:
        return load_file(str(check_regular_file(path, "FD feature scale")))["scale"]
    except GenfieldsError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types, all meaning a bad file
        raise CheckpointError(f"{path}: cannot read the FD feature scale ({short_message(exc)})") from None
