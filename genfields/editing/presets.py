"""Editing presets: which generator, perception networks and attribute images go together, and
the sizes and schedule that suit them.

A preset names the parts; nothing else in `genfields.editing` knows about a particular world.
`synth64` is the embedded default (a 64x64 StyleGAN2 trained on synthface renders, the
shipped synthetic perception networks, rendered faces as the "real" attribute images);
`paper256` records the paper's own settings; `ffhq256` runs them on the real downloads (NVIDIA's
generator, 3DDFA_V2, facenet, InceptionV3; FFHQ photos in $GENFIELDS_HOME/ffhq256); `tiny16`
exists for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from genfields.errors import ConfigError

from .config import LossConfig, ModelConfig, TrainConfig, named_config


@dataclass(frozen=True)
class EditingPreset:
    """The parts and default hyper-parameters of one editing world."""

    name: str
    generator: str  # load_generator name or path
    perception: str  # load_perception preset
    attributes: str  # "synthface" (renders) or a folder of aligned face photos
    resolution: int
    hidden: tuple[int, ...]  # M_ref hidden layers (input F_attr [++ F_id], output dim S)
    loss: LossConfig = field(default_factory=LossConfig)
    style_reg_weight: float = 1e-3
    adversarial_weight: float = 0.1
    steps: int = 20000
    lr_start: float = 1e-4
    lr_end: float = 1e-6
    identities: int = 9000  # generated identity images of `make-dataset`
    attribute_images: int = 3000  # generated attribute images of `make-dataset`
    eval_render_seed: int = 20000  # renders never used to train the GAN or the perception networks
    fd_render_seed: int = 30000  # the real reference set of FD
    downloads: tuple[str, ...] = ()  # registry components it needs (genfields download)
    # Whether the W baseline trains its own copy of E_attr (IDDISEN's setting) by default: only where the
    # attribute network is a shipped one that can be copied and trained; elsewhere (InceptionV3 on real
    # photos) it stays frozen unless asked with --train-attributes.
    trainable_attributes: bool = True

    def require(self, attribute_images: bool = True) -> None:
        """One DownloadError naming every missing download (and the attribute folder, when needed)."""
        if not self.downloads:
            return
        from genfields.downloads import require_all

        folder = Path(self.attributes)
        missing = [] if not attribute_images or self.attributes == "synthface" or folder.is_dir() else [
            f"FFHQ photos: put aligned {self.resolution}x{self.resolution} face photos in {folder} (the FFHQ "
            f"dataset resized, or `genfields align PHOTOS --out {folder} --size {self.resolution}`)"]
        require_all(self.downloads, extra_missing=missing)

    def train_config(self, config_name: str = "paper", **overrides) -> TrainConfig:
        """A TrainConfig for a named configuration (`default`, `no-concat`, `style-reg`, `paper`, `wspace`)."""
        model, loss = named_config(config_name, self.loss, self.style_reg_weight, self.adversarial_weight,
                                   ModelConfig(hidden=self.hidden, disc_hidden=self.hidden[:2]))
        if not self.trainable_attributes:
            model = replace(model, train_attributes=False)
        base = {"preset": self.name, "config_name": config_name, "generator": self.generator, "model": model,
                "loss": loss, "steps": self.steps, "lr_start": self.lr_start, "lr_end": self.lr_end}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig(**base)


PRESETS: dict[str, EditingPreset] = {
    # The paper (Sec. 3.5): 2048-d InceptionV3 F_attr -> 4096 x 3 -> 4928-d S; lr 5e-6 -> 1e-7;
    # 36,000 identity + 12,000 attribute images. Needs differentiable real-photo networks (not offline).
    "paper256": EditingPreset(
        name="paper256", generator="ffhq-res256-mirror-paper256-noaug.pkl", perception="real",
        attributes="ffhq256", resolution=256, hidden=(4096, 4096, 4096),
        loss=LossConfig(identity=1.0, attribute=0.01, reconstruction=0.02), steps=200000,
        lr_start=5e-6, lr_end=1e-7, identities=36000, attribute_images=12000, trainable_attributes=False),
    # The embedded default: 256-d F_attr -> 1024 x 3 -> 1088-d S (3.5 M parameters; S is 4.5x
    # smaller than paper256's, so the hidden width is 4x smaller). lambda_2 = 0.5: with the paper's
    # scale (0.01-0.04) the L1 identity term holds dS at zero (docs/editing.md, "Tuning"). M_ref
    # starts from zero output, so a larger learning rate than the paper's is safe. 10,000 steps (about
    # 30 minutes on 2 cores) meet the editing bar; the shipped editor's card has its curves.
    "synth64": EditingPreset(
        name="synth64", generator="synth64", perception="synth", attributes="synthface", resolution=64,
        hidden=(1024, 1024, 1024), loss=LossConfig(identity=1.0, attribute=0.5, reconstruction=0.02),
        style_reg_weight=1e-3, steps=10000, lr_start=3e-4, lr_end=3e-6, identities=9000, attribute_images=3000),
    # paper256 on the real downloads; the attribute and FD reference images are FFHQ photos.
    "ffhq256": EditingPreset(
        name="ffhq256", generator="stylegan2-ffhq256", perception="ffhq256",
        attributes="{GENFIELDS_HOME}/ffhq256", resolution=256, hidden=(4096, 4096, 4096),
        loss=LossConfig(identity=1.0, attribute=0.01, reconstruction=0.02), steps=200000,
        lr_start=5e-6, lr_end=1e-7, identities=36000, attribute_images=12000,
        downloads=("stylegan2-ffhq256", "inception-fid", "facenet-vggface2", "3ddfa-mobilenet",
                   "3ddfa-param-mean-std", "3ddfa-bfm"), trainable_attributes=False),
    # Tests: a random tiny generator, the shipped perception networks (they resize to 64 px).
    "tiny16": EditingPreset(
        name="tiny16", generator="random:tiny16:1", perception="synth", attributes="synthface", resolution=16,
        hidden=(32, 32), loss=LossConfig(identity=1.0, attribute=0.16, reconstruction=0.02),
        style_reg_weight=1e-3, steps=8, lr_start=1e-3, lr_end=1e-4, identities=12, attribute_images=6,
        eval_render_seed=20000),
}


def get_preset(name: str) -> EditingPreset:
    """The named preset (its attribute folder under the current GENFIELDS_HOME), or a clear error listing the known names."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown editing preset '{name}' (known: {', '.join(PRESETS)})") from None
    if "{GENFIELDS_HOME}" in preset.attributes:
        from genfields.downloads import home

        preset = replace(preset, attributes=preset.attributes.format(GENFIELDS_HOME=home()))
    return preset
