"""`Editor`: the frozen generator and perception networks with a trained M_ref (or W mapper).

    editor = load_editor("synth64")                       # shipped, or a trained run's final/ folder
    result = editor.edit(seed_to_z(7, editor.G.z_dim), load_image("attr.png", 64))
    result.image                                          # I_out = G(S_id + dS), one pass

Generation and editing happen in one pass (the paper's SGE): S_id comes from z_id, dS from the
attribute image. Masks restrict dS to a conv range or a generative-field range (Table 3).
An editor folder holds `editor.safetensors` and `config.json` (format, `ModelConfig`, preset,
generator, perception, truncation, training settings and results).

Devices: `load_editor(..., device="cuda")` or `editor.to(device)` puts G, the perception networks
and M_ref on one device; `edit` moves its inputs there and returns results on it (`result.cpu()`).
`amp=True` runs the synthesis under `torch.autocast` (`genfields.devices`); perception stays float32. Files are
always written from CPU copies and read onto the CPU first, so they do not depend on the device.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from genfields.devices import amp_forward, module_device, resolve_device
from genfields.errors import CheckpointError, ConfigError, check_regular_file, short_message
from genfields.imageio import set_default_mode
from genfields.models import MODELS_DIR
from genfields.perception import LandmarksPose, PerceptionSet, load_perception
from genfields.stylegan2 import Generator, load_generator

from .config import ModelConfig
from .mref import MRef, WMapper, build_network
from .regularizer import StyleStatistics

FORMAT = "genfields-editor-v1"
EDITORS_DIR = MODELS_DIR / "editing"


@dataclass
class EditResult:
    """An edit and what the perception networks see in its three images."""

    identity_image: torch.Tensor  # I_id [B, 3, H, W]
    attribute_image: torch.Tensor  # I_attr
    image: torch.Tensor  # I_out
    delta: torch.Tensor  # dS actually applied (masked) [B, dim S]; S_out - S_id for the W baseline
    identity: torch.Tensor  # E_id(I_id)
    output_identity: torch.Tensor  # E_id(I_out)
    attribute: LandmarksPose  # E_lnd/E_pose(I_attr)
    identity_pose: LandmarksPose  # E_lnd/E_pose(I_id)
    output: LandmarksPose  # E_lnd/E_pose(I_out)

    def cpu(self) -> EditResult:
        """The same result with every tensor on the CPU (for NumPy and image files)."""
        return EditResult(**{f.name: _cpu(getattr(self, f.name)) for f in dataclasses.fields(self)})


@dataclass
class EditInputs:
    """What an edit computes from its identity and attribute images before M_ref runs. It depends only on
    the generator, the truncation and the perception networks, so every editor sharing those can reuse
    it: an evaluation of many editors on the same pairs computes it once (`evaluate_editor(shared=...)`)."""

    w: torch.Tensor  # w_id [B, num_ws, w_dim]
    styles: torch.Tensor  # S_id [B, dim S]
    identity_image: torch.Tensor  # I_id
    attribute_image: torch.Tensor  # I_attr
    identity: torch.Tensor  # E_id(I_id)
    attribute: LandmarksPose  # E_lnd/E_pose(I_attr)
    identity_pose: LandmarksPose  # E_lnd/E_pose(I_id)


def _cpu(value: torch.Tensor | LandmarksPose) -> torch.Tensor | LandmarksPose:
    return value.cpu() if torch.is_tensor(value) else LandmarksPose(*(v.cpu() for v in value))


class Editor(nn.Module):
    """Edits generated identities towards the pose and expression of attribute images.

    G, the perception networks and the trained network are submodules: `editor.to(device)` moves
    them all. `amp` (not saved) runs the synthesis under autocast; perception stays float32.
    """

    def __init__(self, G: Generator, nets: PerceptionSet, network: MRef | WMapper, config: ModelConfig,
                 truncation: float = 1.0, meta: dict | None = None, amp: bool = False):
        super().__init__()
        if config.s_dim != G.layout.dim or config.w_dim != G.config.w_dim:
            raise ConfigError(f"the editor was trained for S dim {config.s_dim} / w dim {config.w_dim}, "
                              f"the generator has {G.layout.dim} / {G.config.w_dim}")
        self.G, self.nets, self.network, self.config = G, nets, network, config
        self.perception = nn.ModuleList(nets.networks())  # registered so that `.to(device)` moves them too
        self.truncation = truncation
        self.meta = meta or {}
        self.amp = amp

    @property
    def device(self) -> torch.device:
        """Where the generator (and, after `to`, everything else) lives."""
        return module_device(self.G)

    # --- masks ---------------------------------------------------------------------------------
    def training_mask(self) -> torch.Tensor:
        """The mask applied while training: the configured one in `train` mode, else all ones."""
        if self.config.mask_mode == "train":
            return self.G.layout.mask(self.config.layers, self.config.gf).to(self.device)
        return torch.ones(self.G.layout.dim, device=self.device)

    def inference_mask(self, layers: str | None = None, gf: str | None = None) -> torch.Tensor:
        """The configured mask (both modes apply it when editing) times an extra one chosen at edit time."""
        if self.config.kind == "wspace" and (layers or gf):
            raise ConfigError("--layers/--gf select style channels: the W-space baseline has none to mask")
        layout = self.G.layout
        return (layout.mask(self.config.layers, self.config.gf) * layout.mask(layers, gf)).to(self.device)

    # --- the pipeline ----------------------------------------------------------------------------
    def identity_styles(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """w_id and S_id = A(M_G(z_id)) (Eq. 5); z is moved to the editor's device."""
        w = self.G.mapping(z.to(self.device), truncation_psi=self.truncation)
        return w, self.G.styles(w)

    def edit_styles(self, S_id: torch.Tensor, w_id: torch.Tensor, f_id: torch.Tensor | None, f_attr: torch.Tensor,
                    mask: torch.Tensor, f_attr_id: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(S_out, w_out): S_id + mask * M_ref(F) (Eq. 4-6), or the styles of the baseline's new w.

        `f_attr_id` = F_attr(I_id), needed only by the `identity_input="f_attr"` extension."""
        if self.config.kind == "style":
            own = {"f_attr": f_attr_id, "styles": S_id}.get(self.config.identity_input)
            return S_id + mask * self.network(f_attr, f_id, own), w_id
        w = self.network(f_attr, f_id).unsqueeze(1).expand(-1, self.G.num_ws, -1)
        return self.G.styles(w), w

    def attribute_features(self, images: torch.Tensor) -> torch.Tensor:
        """F_attr of images: by the network's own trainable E_attr copy (`train_attributes`), else by E_attr."""
        encoder = getattr(self.network, "attr_encoder", None)
        return self.perceive(encoder if encoder is not None else self.nets.attributes, images)

    def synthesize(self, S: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """G(S) with constant noise (under autocast with `amp`; the image is float32 either way)."""
        return amp_forward(self.G.synthesize, S, w, noise_mode="const", device=self.device, enabled=self.amp)

    def perceive(self, net: nn.Module, images: torch.Tensor):
        """`net(images)` of one of the perception networks, in float32 even with `amp`: under bfloat16 the
        identity embedding strays so far that L_id grew tenfold in training (docs/benchmarks.md), for
        networks that cost little next to the synthesis."""
        return net(images.float())

    @torch.no_grad()
    def prepare(self, z: torch.Tensor, attribute_images: torch.Tensor) -> EditInputs:
        """The identity side of edits of identities z [B, z_dim] towards attribute images [B, 3, H, W]
        (a single one is broadcast): S_id, I_id and what the perception networks see in I_id and I_attr."""
        z = self._check_z(z)
        w_id, S_id = self.identity_styles(z)
        return self.prepare_codes(w_id, S_id, attribute_images)

    @torch.no_grad()
    def prepare_codes(self, w_id: torch.Tensor, S_id: torch.Tensor, attribute_images: torch.Tensor) -> EditInputs:
        """`prepare` for identities given by their codes: w+ [B, num_ws, w_dim] and S [B, dim S] (e.g. an
        inverted photo's, `genfields.editing.inversion`)."""
        G = self.G
        if w_id.ndim != 3 or tuple(w_id.shape[1:]) != (G.num_ws, G.config.w_dim) or w_id.shape[0] == 0:
            raise ConfigError(f"w_id must be [B, {G.num_ws}, {G.config.w_dim}] with B >= 1, got {list(w_id.shape)}")
        if tuple(S_id.shape) != (w_id.shape[0], G.layout.dim):
            raise ConfigError(f"S_id must be [{w_id.shape[0]}, {G.layout.dim}], got {list(S_id.shape)}")
        if attribute_images.ndim != 4 or attribute_images.shape[1] != 3 or attribute_images.shape[0] == 0:
            raise ConfigError(f"attribute_images must be [B, 3, H, W] with B >= 1, got {list(attribute_images.shape)}")
        if not (torch.isfinite(attribute_images).all() and torch.isfinite(w_id).all() and torch.isfinite(S_id).all()):
            raise ConfigError("w_id, S_id or attribute_images contain NaN or infinite values")
        w_id, S_id = w_id.to(self.device), S_id.to(self.device)
        attribute_images = attribute_images.to(self.device)
        if attribute_images.shape[0] == 1 and w_id.shape[0] > 1:
            attribute_images = attribute_images.expand(w_id.shape[0], -1, -1, -1)
        if attribute_images.shape[0] != w_id.shape[0]:
            raise ConfigError(f"{w_id.shape[0]} identities but {attribute_images.shape[0]} attribute images")
        image_id = self.synthesize(S_id, w_id)
        nets = self.nets
        return EditInputs(w=w_id, styles=S_id, identity_image=image_id, attribute_image=attribute_images,
                          identity=self.perceive(nets.identity, image_id),
                          attribute=self.perceive(nets.landmarks, attribute_images),
                          identity_pose=self.perceive(nets.landmarks, image_id))

    @torch.no_grad()
    def edit_prepared(self, inputs: EditInputs, layers: str | None = None, gf: str | None = None) -> EditResult:
        """The edits of `prepare`d inputs (made by this editor or by one sharing its G and networks)."""
        f_attr_id = self.attribute_features(inputs.identity_image) if self.config.identity_input == "f_attr" else None
        S_out, w_out = self.edit_styles(inputs.styles, inputs.w, inputs.identity,
                                        self.attribute_features(inputs.attribute_image),
                                        self.inference_mask(layers, gf), f_attr_id)
        image = self.synthesize(S_out, w_out)
        return edit_result(inputs, image, S_out - inputs.styles, self.perceive(self.nets.identity, image),
                           self.perceive(self.nets.landmarks, image))

    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, z_dim] of finite numbers, B >= 1 (a notebook user's input, checked where it comes in)."""
        if not torch.is_tensor(z):
            raise ConfigError(f"z must be a tensor [B, {self.G.z_dim}], got {type(z).__name__}")
        if z.ndim != 2 or z.shape[1] != self.G.z_dim or z.shape[0] == 0:
            raise ConfigError(f"z must be [B, {self.G.z_dim}] with B >= 1, got {list(z.shape)}")
        if not torch.isfinite(z).all():
            raise ConfigError("z contains NaN or infinite values")
        return z

    def edit(self, z: torch.Tensor, attribute_images: torch.Tensor, layers: str | None = None,
             gf: str | None = None) -> EditResult:
        """Edit identities z [B, z_dim] towards attribute images [B, 3, H, W] (a single one is broadcast).

        Inputs are moved to the editor's device; the result stays there.
        """
        return self.edit_prepared(self.prepare(z, attribute_images), layers, gf)


def edit_result(inputs: EditInputs, image: torch.Tensor, delta: torch.Tensor, output_identity: torch.Tensor,
                output: LandmarksPose) -> EditResult:
    """The result of an edit: its inputs' images and perceptions with the output's."""
    return EditResult(identity_image=inputs.identity_image, attribute_image=inputs.attribute_image, image=image,
                      delta=delta, identity=inputs.identity, output_identity=output_identity,
                      attribute=inputs.attribute, identity_pose=inputs.identity_pose, output=output)


# --- files ------------------------------------------------------------------------------------------
def save_editor(editor: Editor, folder: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write the trained network (float32 safetensors, from a CPU copy) and config.json; other parts are named,
    not copied."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in editor.network.state_dict().items()}
    tmp = folder / "editor.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    set_default_mode(tmp)
    os.replace(tmp, folder / "editor.safetensors")
    meta = {**editor.meta, **(extra or {}), "format": FORMAT, "model": dataclasses.asdict(editor.config),
            "truncation": editor.truncation}
    (folder / "config.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def shipped_editors() -> list[str]:
    if not EDITORS_DIR.is_dir():
        return []
    return sorted(p.name for p in EDITORS_DIR.iterdir() if (p / "editor.safetensors").is_file())


def editor_folder(name_or_path: str | os.PathLike) -> Path:
    """A shipped editor name (e.g. `synth64`) or a folder (a run's `final/`) -> its folder."""
    for folder in (EDITORS_DIR / str(name_or_path), Path(name_or_path)):
        if (folder / "editor.safetensors").is_file():
            return folder
    raise CheckpointError(f"no editor '{name_or_path}' (shipped: {', '.join(shipped_editors()) or 'none yet'}; "
                          "or give a folder with editor.safetensors, e.g. a train-editor run's final/)")


def load_editor_network(name_or_path: str | os.PathLike) -> tuple[MRef | WMapper, ModelConfig, dict]:
    """An editor folder's trained network (on the CPU), its configuration and its metadata.

    Every refusal is one CheckpointError naming the file at fault: config.json (unreadable, another
    format, widths out of bounds: checked before anything is allocated) or editor.safetensors
    (truncated, empty, not safetensors, tensors of the wrong type or shape).
    """
    folder = editor_folder(name_or_path)
    config_path = check_regular_file(folder / "config.json", "editor config")
    weights = check_regular_file(folder / "editor.safetensors", "editor weights")
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config_path}: cannot read the editor's config ({short_message(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{config_path}: unknown editor format {found!r} (expected {FORMAT})")
    try:
        config = ModelConfig(**meta["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_path}: not an editor configuration ({short_message(exc)})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tensors = load_file(str(weights), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types, all meaning a bad file
        raise CheckpointError(f"{weights}: truncated or corrupt safetensors file ({short_message(exc)})") from None
    network = build_network(config)
    expected = network.state_dict()
    wrong = [name for name, t in tensors.items()
             if name in expected and t.is_floating_point() != expected[name].is_floating_point()]
    if wrong:
        raise CheckpointError(f"{weights}: tensor {wrong[0]} is {tensors[wrong[0]].dtype}, not "
                              f"{expected[wrong[0]].dtype}")
    try:
        network.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights}: weights do not fit the configuration in {config_path.name} "
                              f"({short_message(exc).split('. ')[0]})") from None
    return network, config, meta


def load_editor(name_or_path: str | os.PathLike, model: str | None = None, perception: str | None = None,
                device: str | torch.device = "cpu", amp: bool = False) -> Editor:
    """An editor from a folder, on `device` (read onto the CPU first); `model`/`perception` override the
    generator and networks it names; `amp` runs the synthesis under autocast."""
    device = resolve_device(device)
    network, config, meta = load_editor_network(name_or_path)
    G = load_generator(model or meta["generator"], device)
    nets = load_perception(perception or meta["perception"], device)
    return Editor(G, nets, network.eval().requires_grad_(False), config, meta.get("truncation", 1.0), meta,
                  amp).to(device)


def attribute_network_name(perception: str) -> str:
    """The shipped attribute network of a perception preset (what a trainable E_attr copy starts from)."""
    from genfields.perception.shipped import PRESETS

    if perception not in PRESETS:
        raise ConfigError(f"a trainable attribute encoder needs a shipped attribute network; perception preset "
                          f"'{perception}' has none (known: {', '.join(PRESETS)})")
    return PRESETS[perception]["attributes"]


def new_editor(G: Generator, nets: PerceptionSet, config: ModelConfig, stats: StyleStatistics,
               truncation: float = 1.0, meta: dict | None = None, device: str | torch.device | None = None,
               amp: bool = False) -> Editor:
    """A fresh (untrained) editor whose output scale comes from the generated set's statistics.

    The network is built on the CPU (the same initial weights on every device) and the whole
    editor then moved to `device` (None: where G is).
    """
    from genfields.perception.judges import refuse_judges

    refuse_judges(nets.networks(), "editor perception networks")
    config = dataclasses.replace(config, s_dim=G.layout.dim, w_dim=G.config.w_dim,
                                 f_id_dim=nets.identity.embedding_dim, f_attr_dim=nets.attributes.feature_dim)
    if config.train_attributes and not config.attr_network:
        config = dataclasses.replace(config, attr_network=attribute_network_name((meta or {}).get("perception", "")))
    network = build_network(config)
    if config.scale_by_std:
        network.scale.copy_(stats.style_std if config.kind == "style" else stats.w_std)
    if config.identity_input == "styles":
        network.style_mean.copy_(stats.style_mean)
        network.style_std.copy_(stats.style_std)
    if config.kind == "wspace":
        network.offset.copy_(stats.w_mean)
    device = module_device(G) if device is None else resolve_device(device)
    return Editor(G, nets, network, config, truncation, meta, amp).to(device)
