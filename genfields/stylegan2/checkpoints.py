"""Checkpoint formats: NVIDIA network pickles, rosinality `.pt`, and our own safetensors + JSON.

`load_generator(name_or_path)` accepts:
- a shipped model name (`synth64`), from `genfields/models/<name>/`;
- `random:<arch>[:seed]`: a randomly initialised generator of a named architecture (for tests,
  benchmarks and the generative-field table; its images are noise, and are labelled as such);
- a path to an official stylegan2-ada-pytorch / stylegan3 `.pkl` (read without running its code);
- a path to a rosinality stylegan2-pytorch `.pt` (its `g_ema`);
- a path to our own checkpoint: a folder with `config.json` + `model.safetensors`, or the
  `.safetensors` file itself (the config is also stored in its metadata).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from genfields.errors import CheckpointError, ConfigError, GenfieldsError, check_regular_file
from genfields.imageio import set_default_mode
from genfields.models import MODELS_DIR
from genfields.stylegan2.config import GeneratorConfig, get_architecture
from genfields.stylegan2.network import Generator
from genfields.downloads import REGISTRY, require
from genfields.stylegan2.safe_pickle import PersistentRecord, safe_load_pickle

CONFIG_KEY = "genfields_config"
PICKLE_MAGIC = (b"\x80",)
ZIP_MAGIC = b"PK\x03\x04"


def shipped_models() -> list[str]:
    """Names of the generators that ship with the package."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.safetensors").is_file())


def load_generator(name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
                   channel_multiplier: int | None = None) -> Generator:
    """A generator in eval mode, float32, on `device`, from a shipped name, `random:<arch>`, a download
    name (`stylegan2-ffhq256`: the cached file, or a DownloadError saying where to get it) or a path."""
    spec = str(name_or_path)
    if spec.startswith("random:"):
        G = _random_generator(spec)
    elif (MODELS_DIR / spec / "model.safetensors").is_file():
        G = load_own(MODELS_DIR / spec)
    elif spec in REGISTRY:  # a downloadable component, e.g. stylegan2-ffhq256: its cached file
        G = _load_path(require(spec), channel_multiplier)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            known = ", ".join(shipped_models()) or "none yet"
            raise CheckpointError(f"no such model or file: '{spec}' (shipped models: {known}; "
                                  "or give a path to a .pkl, .pt or our safetensors checkpoint)")
        G = _load_path(path, channel_multiplier)
    return G.to(device=device, dtype=torch.float32).eval().requires_grad_(False)


def _random_generator(spec: str) -> Generator:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ConfigError(f"cannot read '{spec}': use random:<arch> or random:<arch>:<seed>")
    try:
        seed = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        raise ConfigError(f"cannot read the seed in '{spec}'") from None
    return Generator.from_arch(parts[1], seed=seed)


def _load_path(path: Path, channel_multiplier: int | None) -> Generator:
    if path.is_dir():
        return load_own(path)
    check_regular_file(path, "checkpoint")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    if not head:
        raise CheckpointError(f"{path} is empty")
    if path.suffix == ".safetensors":
        return load_own(path)
    if head.startswith(ZIP_MAGIC):
        return load_rosinality(path, channel_multiplier)
    if head[:1] == b"\x80":
        return load_nvidia_pickle(path)
    raise CheckpointError(f"{path}: unknown checkpoint format (expected an NVIDIA .pkl, a rosinality .pt "
                          "or a genfields .safetensors)")


# --- NVIDIA network pickles ------------------------------------------------------------------
def load_nvidia_pickle(path: str | os.PathLike) -> Generator:
    """`G_ema` of an official stylegan2-ada-pytorch or stylegan3-repo StyleGAN2 pickle, code never run."""
    with open(path, "rb") as f:
        data = safe_load_pickle(f)
    record = data.get("G_ema", data.get("G")) if isinstance(data, dict) else None
    if not isinstance(record, PersistentRecord):
        raise CheckpointError(f"{path}: no G_ema or G network in this pickle")
    if record.class_name != "Generator":
        raise CheckpointError(f"{path}: G_ema is a '{record.class_name}', not a StyleGAN2 Generator")
    config = config_from_nvidia_kwargs(record.init_kwargs, record.init_args)
    G = Generator(config)
    _load_state(G, record.tensors(), str(path))
    return G


def config_from_nvidia_kwargs(kwargs: dict, args: tuple = ()) -> GeneratorConfig:
    """Our config from the official `Generator(z_dim, c_dim, w_dim, img_resolution, img_channels, ...)` args."""
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
    kwargs = {**dict(zip(names, args)), **kwargs}
    if int(kwargs.get("c_dim", 0)):
        raise CheckpointError("conditional generators (c_dim > 0) are not supported: the paper's S is unconditional")
    mapping = dict(kwargs.get("mapping_kwargs") or {})
    synthesis = dict(kwargs.get("synthesis_kwargs") or {})
    if synthesis.get("architecture", "skip") != "skip":
        raise CheckpointError(f"synthesis architecture '{synthesis['architecture']}' is not supported (only 'skip', "
                              "the StyleGAN2 default)")
    if mapping.get("layer_features") not in (None, kwargs.get("w_dim", 512)):
        raise CheckpointError("mapping networks with layer_features != w_dim are not supported")
    if mapping.get("activation", "lrelu") != "lrelu" or synthesis.get("activation", "lrelu") != "lrelu":
        raise CheckpointError("only leaky-ReLU activations are supported")
    if list(synthesis.get("resample_filter", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        raise CheckpointError("only the [1, 3, 3, 1] resampling filter is supported")
    if int(synthesis.get("kernel_size", 3)) != 3:
        raise CheckpointError("only 3x3 synthesis kernels are supported")
    conv_clamp = synthesis.get("conv_clamp")
    try:
        return GeneratorConfig(
            img_resolution=int(kwargs["img_resolution"]), img_channels=int(kwargs.get("img_channels", 3)),
            z_dim=int(kwargs["z_dim"]), w_dim=int(kwargs["w_dim"]),
            mapping_layers=int(mapping.get("num_layers", 8)),
            mapping_lr_multiplier=float(mapping.get("lr_multiplier", 0.01)),
            w_avg_beta=float(mapping.get("w_avg_beta", 0.995)),
            channel_base=int(synthesis.get("channel_base", 32768)),
            channel_max=int(synthesis.get("channel_max", 512)),
            conv_clamp=None if conv_clamp is None else float(conv_clamp),
            num_fp16_res=int(synthesis.get("num_fp16_res", 0)),
        )
    except KeyError as exc:
        raise CheckpointError(f"the pickle's Generator arguments lack {exc}") from None


# --- rosinality stylegan2-pytorch ------------------------------------------------------------
def load_rosinality(path: str | os.PathLike, channel_multiplier: int | None = None) -> Generator:
    """`g_ema` of a rosinality stylegan2-pytorch checkpoint, mapped exactly onto our parameterisation."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from None
    except Exception as exc:  # torch raises UnpicklingError for anything outside the weights-only allow-list
        raise CheckpointError(f"{path}: refused by PyTorch's weights-only loader ({_weights_only_reason(exc)}); "
                              "nothing in it was run. A file that needs more than plain tensors can run code when "
                              "loaded: convert it on a machine you trust, or use a checkpoint of plain "
                              "tensors") from None
    state = ckpt.get("g_ema") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no 'g_ema' state dict (is this a rosinality stylegan2-pytorch checkpoint?)")
    config = _rosinality_config(state, channel_multiplier, ckpt.get("args"))
    G = Generator(config)
    tensors = _rosinality_to_nvidia(state, config)
    latent_avg = ckpt.get("latent_avg")
    tensors["mapping.w_avg"] = torch.zeros(config.w_dim) if latent_avg is None else latent_avg.reshape(-1)
    _load_state(G, tensors, str(path))
    if latent_avg is None:
        _estimate_w_avg(G)
    return G


def _rosinality_config(state: dict, channel_multiplier: int | None, args) -> GeneratorConfig:
    try:
        const = state["input.input"]
        state["convs.0.conv.weight"], state["to_rgb1.conv.weight"]
        style_dim = state["style.1.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"rosinality state dict lacks {exc}") from None
    n_mlp = sum(1 for k in state if re.fullmatch(r"style\.\d+\.weight", k))
    n_blocks = sum(1 for k in state if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    resolution = 4 * 2 ** n_blocks
    if channel_multiplier is None:
        channel_multiplier = getattr(args, "channel_multiplier", None)
    if channel_multiplier is None and resolution >= 64:
        channel_multiplier = state["convs.6.conv.weight"].shape[1] // 256 if n_blocks >= 4 else 2
    channel_multiplier = channel_multiplier or 2
    lr_mlp = float(getattr(args, "lr_mlp", 0.01) or 0.01)
    return GeneratorConfig(img_resolution=resolution, z_dim=style_dim, w_dim=style_dim, mapping_layers=n_mlp,
                           mapping_lr_multiplier=lr_mlp, channel_base=16384 * channel_multiplier,
                           channel_max=const.shape[1], conv_clamp=None)


def _rosinality_to_nvidia(state: dict, config: GeneratorConfig) -> dict[str, torch.Tensor]:
    """Rename (and rescale) rosinality tensors to NVIDIA's names; the result is numerically identical."""
    try:
        return _rename_rosinality(state, config)
    except KeyError as exc:
        raise CheckpointError(f"rosinality state dict lacks {exc}") from None


def _rename_rosinality(state: dict, config: GeneratorConfig) -> dict[str, torch.Tensor]:
    out = {"synthesis.b4.const": state["input.input"][0]}
    for i in range(config.mapping_layers):
        out[f"mapping.fc{i}.weight"] = state[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = state[f"style.{i + 1}.bias"]

    def styled(dst: str, src: str) -> None:
        w = state[f"{src}.conv.weight"][0]
        out[f"{dst}.weight"] = w / math.sqrt(w[0].numel())  # rosinality scales weights before demodulating
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
        out[f"{dst}.noise_strength"] = state[f"{src}.noise.weight"].reshape([])
        out[f"{dst}.bias"] = state[f"{src}.activate.bias"].reshape(-1)

    def to_rgb(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = state[f"{src}.bias"].reshape(-1)

    styled("synthesis.b4.conv1", "conv1")
    to_rgb("synthesis.b4.torgb", "to_rgb1")
    out["synthesis.b4.conv1.noise_const"] = state["noises.noise_0"][0, 0]
    for j, res in enumerate(config.block_resolutions[1:]):
        for k, name in enumerate(("conv0", "conv1")):
            styled(f"synthesis.b{res}.{name}", f"convs.{2 * j + k}")
            out[f"synthesis.b{res}.{name}.noise_const"] = state[f"noises.noise_{2 * j + k + 1}"][0, 0]
        to_rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
    return out


def _estimate_w_avg(G: Generator, n: int = 10000, seed: int = 0) -> None:
    """rosinality checkpoints carry no w_avg: use the mean w of `n` seeded samples."""
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))


# --- our own format --------------------------------------------------------------------------
def save_generator(G: Generator, folder: str | os.PathLike, dtype: torch.dtype = torch.float32,
                   extra: dict | None = None) -> Path:
    """Write `config.json` + `model.safetensors` into `folder` (atomically), and return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_json = G.config.to_json()
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in G.state_dict().items()}
    meta = {CONFIG_KEY: config_json, "format": "genfields-generator-v1", **(extra or {})}
    _atomic_write(folder / "model.safetensors", lambda p: save_file(tensors, str(p), metadata=meta))
    _atomic_write(folder / "config.json", lambda p: p.write_text(config_json + "\n"))
    return folder


def load_own(path: str | os.PathLike) -> Generator:
    """Our format: a folder with config.json + model.safetensors, or the .safetensors file."""
    path = Path(path)
    weights = path / "model.safetensors" if path.is_dir() else path
    if not weights.exists():
        raise CheckpointError(f"{path}: no model.safetensors here")
    check_regular_file(weights, "checkpoint")
    try:
        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: truncated or corrupt safetensors file ({_first_line(exc)})") from None
    config_file = weights.parent / "config.json"
    text = meta.get(CONFIG_KEY) or (config_file.read_text() if config_file.is_file() else None)
    if text is None:
        raise CheckpointError(f"{weights}: no generator config (neither in its metadata nor a config.json beside it)")
    try:
        config = GeneratorConfig.from_dict(json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{weights}: unreadable generator config ({exc})") from None
    G = Generator(config)
    _load_state(G, {k: v.float() for k, v in tensors.items()}, str(weights))
    return G


# --- shared ----------------------------------------------------------------------------------
def _load_state(G: Generator, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy tensors into G, with one clear error for missing, unexpected or misshaped tensors."""
    expected = G.state_dict()
    tensors = {k: v for k, v in tensors.items() if not k.endswith("resample_filter")}
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CheckpointError(f"{source}: missing tensors {_few(missing)}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {_few(unexpected)} (a different architecture?)")
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: tensor {key} has shape {list(value.shape)}, "
                                  f"the config implies {list(expected[key].shape)}")
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{source}: tensor {key} contains NaN or infinite values")
    G.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    set_default_mode(tmp)
    os.replace(tmp, path)


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _weights_only_reason(exc: BaseException) -> str:
    """The line of PyTorch's weights-only refusal that names what was refused (not its advice to trust the file)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if any(key in line for key in ("GLOBAL", "Unsupported global", "WeightsUnpickler error", "Unsupported operand")):
            return line[:300]
    return lines[0][:300] if lines else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


__all__ = ["load_generator", "save_generator", "load_nvidia_pickle", "load_rosinality", "load_own",
           "shipped_models", "config_from_nvidia_kwargs", "GenfieldsError", "get_architecture"]
