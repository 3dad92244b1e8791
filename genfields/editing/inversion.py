"""Bring your own face: invert an image into W, W+ and S of a generator, so that it can be edited.

Optimisation only (no encoder, and never the generator's weights: tuning G, as PTI does, would change
the very fields and channels this tool studies). From the mean w, in stages W -> W+ -> S, each started
from the previous one's result:

- W: one w for every layer; W+: one w per layer; S: the channel-wise styles themselves, with the
  toRGB styles kept from W+ (they are never edited).
- Every code is optimised in units of its per-channel standard deviation over the generator's own
  mapped codes (`mapped_statistics`), so one learning rate fits every channel; a Gaussian prior in the
  same units (a diagonal Mahalanobis term) keeps the codes where the generator's own codes lie.
- Losses: L1 + MS-SSIM on pixels (`reconstruction_loss`, Eq. 9's form), and optionally a perceptual
  term from the stages of the landmark loss network (`stage_difference`: the loss networks, never the
  judges, which must stay free to score the result) and the identity loss network (1 - cosine); both
  are off by default because on this world's renders they made L1 and MS-SSIM worse on every render
  and left the identity judge's similarity within 0.01 (see `InversionConfig`).
- Noise is the generator's constant noise and is not optimised: detail hidden in per-pixel noise would
  not move with an edit of S, so there is no noise to regularise.

An inversion is saved as safetensors (`w`, `wplus`, `S`) with its settings, its measures and the
generator's weights digest: `load_inversion` refuses a file made with another generator in one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from genfields.errors import CheckpointError, ConfigError
from genfields.imageio import atomic_path
from genfields.perception import PerceptionSet
from genfields.perception.distance import stage_difference
from genfields.stylegan2.network import Generator

from .evaluate import weights_digest
from .losses import reconstruction_loss
from .regularizer import StyleStatistics, mapped_statistics

FORMAT = "genfields-inversion-v1"
SPACES = ("w", "wplus", "s")
STAGE_SHARES = {"w": (1.0,), "wplus": (0.5, 0.5), "s": (0.4, 0.3, 0.3)}  # of the steps, per stage in order
# the learning rate of each stage W, W+, S relative to `lr`: later stages refine a code that is close already
# (on tiny16's own samples, pixels only, 150 steps: L1 0.071 with (1, 1, 1), 0.021 with these)
STAGE_LR = (1.0, 0.3, 0.1)
STATS_SAMPLES = 4096
STATS_SEED = 321


@dataclass(frozen=True)
class InversionConfig:
    """How an image is inverted (saved with every inversion)."""

    space: str = "s"  # the last stage: w, wplus or s
    steps: int = 300  # in all, shared among the stages by STAGE_SHARES
    lr: float = 0.05  # Adam, in units of each channel's standard deviation; cosine ramp-down to 0
    pixel: float = 1.0  # L1 + MS-SSIM
    # Off by default, as measured: on 3 synthface renders (synth64, space s, 300 steps) the pixels alone gave
    # L1 0.014-0.017 and the identity judge's similarity 0.991-0.999; perceptual 0.3 + identity 0.1 gave
    # 0.015-0.020 and 0.989-0.999, perceptual 1 + identity 0.5 0.017-0.025 and 0.987-0.999.
    perceptual: float = 0.0
    identity: float = 0.0
    prior: float = 1e-3  # the Gaussian prior, per channel (a mean of squared standardised codes)

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ConfigError(f"--space must be one of {', '.join(SPACES)}, got '{self.space}'")
        if self.steps < len(STAGE_SHARES[self.space]):
            raise ConfigError(f"--steps must be at least {len(STAGE_SHARES[self.space])} for space {self.space}")
        if not self.lr > 0 or min(self.pixel, self.perceptual, self.identity, self.prior) < 0:
            raise ConfigError("the inversion needs lr > 0 and non-negative loss weights")

    def stage_steps(self) -> list[int]:
        """Steps of each stage, in order; they add up to `steps`."""
        shares = STAGE_SHARES[self.space]
        counts = [max(1, int(self.steps * s)) for s in shares[:-1]]
        return [*counts, self.steps - sum(counts)]


@dataclass
class Inversion:
    """An image's codes: w [w_dim], w+ [num_ws, w_dim] and S [dim S], with how they were found."""

    w: torch.Tensor
    wplus: torch.Tensor
    S: torch.Tensor
    meta: dict

    def codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w+ [1, num_ws, w_dim], S [1, dim S]) of the last stage, as a generator's synthesis takes them."""
        return self.wplus[None], self.S[None]


class _Losses:
    """The inversion's objective for one batch of target images."""

    def __init__(self, target: torch.Tensor, nets: PerceptionSet, cfg: InversionConfig):
        self.target, self.nets, self.cfg = target, nets, cfg
        with torch.no_grad():
            self.target_identity = nets.identity(target)

    def __call__(self, image: torch.Tensor, standardised: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        pixel = reconstruction_loss(self.target, image)
        perceptual = stage_difference(self.nets.landmarks, self.target, image).mean()
        identity = (1 - torch.nn.functional.cosine_similarity(self.nets.identity(image), self.target_identity)).mean()
        prior = standardised.square().mean()
        total = cfg.pixel * pixel + cfg.perceptual * perceptual + cfg.identity * identity + cfg.prior * prior
        return total, {"pixel": pixel.item(), "perceptual": perceptual.item(), "identity": identity.item(),
                       "prior": prior.item()}


def _optimise(start: torch.Tensor, render, losses: _Losses, steps: int, lr: float, progress=None) -> torch.Tensor:
    """Adam on a standardised code u from `start` for `steps` steps (cosine ramp-down); `render(u)` gives
    the image. Returns the final u."""
    u = start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr, betas=(0.9, 0.999))
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss, parts = losses(render(u), u)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(parts)
    return u.detach()


def invert(G: Generator, nets: PerceptionSet, target: torch.Tensor, cfg: InversionConfig = InversionConfig(),
           stats: StyleStatistics | None = None, progress=None) -> Inversion:
    """Invert one image [1, 3, R, R] in [-1, 1] at G's resolution. `progress(parts)` is called every step."""
    res = G.config.img_resolution
    if target.ndim != 4 or target.shape[0] != 1 or tuple(target.shape[1:]) != (3, res, res):
        raise ConfigError(f"the inversion takes one image [1, 3, {res}, {res}], got {list(target.shape)}")
    stats = stats or mapped_statistics(G, STATS_SAMPLES, STATS_SEED)
    losses = _Losses(target.float(), nets, cfg)
    w_mean, w_std = stats.w_mean, stats.w_std
    s_mean, s_std = stats.style_mean, stats.style_std
    num_ws = G.num_ws
    steps = cfg.stage_steps()

    def from_w(u):  # u [1, w_dim] -> image
        ws = (w_mean + w_std * u)[:, None].expand(-1, num_ws, -1)
        return G.synthesize(G.styles(ws), ws, noise_mode="const")

    def from_wplus(u):  # u [1, num_ws, w_dim]
        ws = w_mean + w_std * u
        return G.synthesize(G.styles(ws), ws, noise_mode="const")

    G.requires_grad_(False)
    u_w = _optimise(((G.mapping.w_avg - w_mean) / w_std)[None], from_w, losses, steps[0], cfg.lr * STAGE_LR[0],
                    progress)
    w = w_mean + w_std * u_w[0]
    wplus = w[None].expand(num_ws, -1).clone()
    if cfg.space in ("wplus", "s"):
        u_plus = _optimise(((wplus - w_mean) / w_std)[None], from_wplus, losses, steps[1], cfg.lr * STAGE_LR[1],
                           progress)
        wplus = (w_mean + w_std * u_plus)[0]
    with torch.no_grad():
        S = G.styles(wplus[None])[0]
    if cfg.space == "s":
        ws = wplus[None]

        def from_s(u):  # u [1, dim S]; the toRGB styles stay those of w+
            return G.synthesize(s_mean + s_std * u, ws, noise_mode="const")

        u_s = _optimise(((S - s_mean) / s_std)[None], from_s, losses, steps[2], cfg.lr * STAGE_LR[2], progress)
        S = (s_mean + s_std * u_s)[0]
    meta = {"format": FORMAT, "settings": asdict(cfg), "generator_digest": weights_digest(G)}
    return Inversion(w.detach(), wplus.detach(), S.detach(), meta)


@torch.no_grad()
def reconstruct(G: Generator, inversion: Inversion) -> torch.Tensor:
    """The image of an inversion's codes [1, 3, R, R]."""
    wplus, S = inversion.codes()
    return G.synthesize(S, wplus, noise_mode="const")


def save_inversion(inversion: Inversion, path: str | os.PathLike) -> Path:
    """Write an inversion (atomically) as safetensors with its metadata."""
    path = Path(path)
    tensors = {"w": inversion.w.contiguous(), "wplus": inversion.wplus.contiguous(), "S": inversion.S.contiguous()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"genfields": json.dumps(inversion.meta)})
    return path


def load_inversion(path: str | os.PathLike, G: Generator | None = None) -> Inversion:
    """Read an inversion; with G, refuse one made with another generator or of other sizes."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("genfields", "{}"))
            tensors = {k: f.get_tensor(k) for k in ("w", "wplus", "S")}
    except Exception as exc:  # safetensors raises its own error types for unreadable files
        raise CheckpointError(f"{path}: not a readable inversion file ({str(exc).splitlines()[0]})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genfields inversion (format {meta.get('format')!r})")
    inversion = Inversion(tensors["w"], tensors["wplus"], tensors["S"], meta)
    if G is not None:
        if meta.get("generator_digest") != weights_digest(G):
            raise CheckpointError(f"{path} was inverted with another generator (digest "
                                  f"{str(meta.get('generator_digest'))[:12]}), not this one: invert the photo again "
                                  "with this --model")
        if inversion.S.shape != (G.layout.dim,) or inversion.wplus.shape != (G.num_ws, G.config.w_dim):
            raise CheckpointError(f"{path}: codes of other sizes than this generator's")
    return inversion


@torch.no_grad()
def reconstruction_measures(target: torch.Tensor, image: torch.Tensor, judges=None) -> dict[str, float]:
    """How close a reconstruction is: L1 and MS-SSIM (images in [0, 1]), and, with judges, the identity
    judge's cosine similarity of the two (a network the inversion never optimised)."""
    from pytorch_msssim import ms_ssim

    from .losses import msssim_window

    x, y = (target.float() + 1) / 2, (image.float() + 1) / 2
    out = {"l1": float((x - y).abs().mean()),
           "ms_ssim": float(ms_ssim(x, y, data_range=1.0, win_size=msssim_window(x.shape[-1]), size_average=True))}
    if judges is not None:
        out["identity_judge"] = float(torch.nn.functional.cosine_similarity(judges.identity(image),
                                                                            judges.identity(target)).mean())
    return out


def cached_inversion_path(photo: torch.Tensor, G: Generator, cfg: InversionConfig) -> Path:
    """Where `edit --identity PHOTO` keeps the inversion of a photo: named by the digests of the aligned
    image, the generator and the settings, under $GENFIELDS_HOME/inversions."""
    from genfields.downloads import home

    key = hashlib.sha256()
    key.update(photo.detach().float().cpu().contiguous().numpy().tobytes())
    key.update(weights_digest(G).encode())
    key.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    return home() / "inversions" / f"{key.hexdigest()[:32]}.safetensors"


def inverted_identities(folder: str | os.PathLike, G: Generator) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every inversion file of a folder (sorted by name), made with G: (w+ [N, num_ws, w_dim], S [N, dim S],
    names), to evaluate edits of faces the generator did not make (`evaluate --identities DIR`)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{folder}: no inversion files (*.safetensors from `genfields invert`)")
    inversions = [load_inversion(f, G) for f in files]
    return (torch.stack([inv.wplus for inv in inversions]), torch.stack([inv.S for inv in inversions]),
            [f.stem for f in files])
