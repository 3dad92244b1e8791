"""What `genfields explore` computes, without any web code: images, fields, probes, channels, edits.

`Explorer` holds a generator (and optionally an editor with its perception networks) and answers
the page's requests as plain dicts of numbers, names and PNG data URLs. Every request carries the
whole `View` it is about (seed, truncation, noise mode, channel offsets), so the explorer keeps no
per-page state: only caches of what a view costs to compute (w, S, the image, the identity's
embedding), so that moving one slider re-runs only what it changes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genfields.errors import ConfigError, GenfieldsError
from genfields.explore.checks import RequestError, check_integer, check_number, shown
from genfields.explore.window import synthesize_pixel
from genfields.fields import centred_square_side, exact_field_intervals
from genfields.imageio import ImageError, from_uint8, load_image, to_uint8
from genfields.stylegan2.network import NOISE_MODES, Generator, seed_to_z

STATS_SAMPLES = 2000  # generated samples for each channel's std (slider unit)
STATS_SEED = 0
GALLERY_SIZE = 8
FACE_SIZE_IMAGES = 64  # attribute images whose mean face size sets Table 3's ranges
MAX_CHANNEL_VALUE = 100.0  # |slider value| in stds
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_UPLOADS = 32
CACHE_SIZE = 64
EFFECTIVE_SHARE = 0.9  # as the effective fields of `genfields fields --measure`
MAX_TOP = 100  # rows of a ranking
FEATURE_MAPS = 16  # feature maps shown per layer
REGION_PROBES = 16  # random probes of the region channel search (relative error about sqrt(2 / probes))
BATCH_PIXELS = 32 * 64 * 64  # image pixels per batch of the region search (synth64: all 32 copies at once)
REGION_BACKWARD_CHUNK = 4  # cotangents per batched backward pass when the copies do not fit
REGION_FLOOR = 0.02  # the region search ranks channels that change the box at least this share of the strongest


def png_data_url(image: np.ndarray | torch.Tensor) -> str:
    """A PNG data URL of an image: [1, 3, H, W] float in [-1, 1], or [H, W, 3] / [H, W] uint8."""
    if torch.is_tensor(image):
        image = to_uint8(image)[0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


MIX_GROUPS = {"coarse": (0, 8), "middle": (16, 32), "fine": (64, 2**20)}  # layer resolutions, as StyleGAN's paper


@dataclass(frozen=True)
class View:
    """One generated image: seed (NVIDIA's seed-to-z), truncation, noise mode, style mixing and channel offsets.

    `channels` holds (flat offset into S, value in that channel's std over generated samples).
    `mix_seed` and `mix` (coarse, middle or fine) take the styles of the layers of those resolutions
    (4-8, 16-32, 64 and up, toRGB included) from a second seed's w, as StyleGAN's style mixing does.
    Random noise is drawn from a generator seeded by `seed`, so a view always gives the same image.
    """

    seed: int = 0
    truncation: float = 1.0
    noise: str = "const"
    channels: tuple[tuple[int, float], ...] = ()
    mix_seed: int | None = None
    mix: str | None = None


@dataclass
class Attribute:
    """An attribute face of the editing view and what the perception networks see in it."""

    image: torch.Tensor  # [1, 3, R, R]
    features: torch.Tensor  # E_attr
    found: object  # LandmarksPose
    source: str


@dataclass
class _Identity:
    w: torch.Tensor
    S: torch.Tensor
    image: torch.Tensor
    embedding: torch.Tensor | None = None
    found: object | None = None  # LandmarksPose


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


@dataclass
class StoredFields:
    """Fields measured on this model when it was shipped (`fields.json`): effective sizes by layer name."""

    effective: dict[str, int] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def for_model(cls, model: str) -> "StoredFields":
        from genfields.evaluation.gan_card import FIELDS_FILE
        from genfields.stylegan2 import shipped_models
        from genfields.stylegan2.checkpoints import MODELS_DIR

        path = MODELS_DIR / model / FIELDS_FILE
        if model not in shipped_models() or not path.is_file():
            return cls()
        rows = json.loads(path.read_text())
        return cls({r["name"]: r["gf_effective"] for r in rows if r.get("gf_effective")},
                   f"measured on {model} when it was shipped ({FIELDS_FILE}: 90% of the response energy, "
                   "at the centre unit)")


class Explorer:
    """The computations of the explore page for one generator (and optionally one editor).

    All methods take and return plain data; images go out as PNG data URLs. Methods are
    serialised by a lock (the page may fire requests while a slider moves).
    """

    def __init__(self, G: Generator, editor=None, model_name: str = "", editor_name: str | None = None,
                 stored_fields: StoredFields | None = None, gallery_size: int = GALLERY_SIZE):
        self.G = G.eval().requires_grad_(False)
        self.editor = editor
        self.layout = G.layout
        self.resolution = G.config.img_resolution
        self.model_name = model_name
        self.editor_name = editor_name
        self.stored_fields = stored_fields or StoredFields()
        self.nets = editor.nets if editor is not None else None
        self._lock = threading.RLock()
        self._identities = _LRU(CACHE_SIZE)
        self._attributes: dict[str, Attribute] = {}
        self._uploads: list[str] = []
        self._upload_count = 0
        self.style_std = self._style_std()
        self.gallery_note = ""
        self.face_size_mean, self.table3 = None, []
        if editor is not None:
            self._load_gallery(gallery_size)

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def load(cls, model: str = "synth64", editor: str | None = "auto") -> "Explorer":
        """An explorer for `model`, with `editor` (a shipped name or a folder; `auto`: the shipped editor of
        the model's name if there is one; None or `none`: no editing view)."""
        from genfields.editing import load_editor, shipped_editors
        from genfields.stylegan2 import load_generator

        if editor == "auto":
            editor = model if model in shipped_editors() else None
        if editor in (None, "none"):
            G, ed = load_generator(model), None
        else:
            try:
                ed = load_editor(editor, model=model)
            except ConfigError as exc:
                raise ConfigError(f"editor '{editor}' does not fit model '{model}': {exc}") from None
            G = ed.G
        return cls(G, ed, model_name=model, editor_name=editor, stored_fields=StoredFields.for_model(model))

    @torch.no_grad()
    def _style_std(self) -> torch.Tensor:
        """Std of every channel of S over generated samples (truncation 1): the slider's unit."""
        gen = torch.Generator().manual_seed(STATS_SEED)
        z = torch.randn(STATS_SAMPLES, self.G.z_dim, generator=gen)
        S = torch.cat([self.G.styles(self.G.mapping(chunk)) for chunk in z.split(500)])
        return S.std(dim=0).clamp_min(1e-8)

    def _load_gallery(self, count: int) -> None:
        from genfields.editing.dataset import attribute_images
        from genfields.editing.presets import get_preset
        from genfields.evaluation.gf_ranges import select_gf_ranges
        from genfields.evaluation.reproduce import measure_face_size
        from genfields.stylegan2 import StyleLayout

        try:
            preset = get_preset(self.editor.meta.get("preset", "synth64"))
            images = attribute_images(preset.attributes, count, self.resolution, preset.eval_render_seed)
            face = measure_face_size(preset, self.nets, self.resolution, FACE_SIZE_IMAGES, preset.eval_render_seed)
        except ConfigError as exc:
            self.gallery_note = f"no attribute gallery: {exc}"
            return
        for i in range(images.shape[0]):
            self._attributes[f"gallery:{i}"] = self._perceive_attribute(images[i:i + 1], f"{preset.attributes} "
                                                                        f"#{preset.eval_render_seed}+{i}")
        if preset.attributes == "synthface":
            self.gallery_note = (f"synthface renders of the evaluation seed {preset.eval_render_seed} (not used to "
                                 "train the GAN or the perception networks)")
        else:
            self.gallery_note = f"the first {count} photos of {preset.attributes}"
        self.face_size_mean = face["mean_px"]
        ranges = select_gf_ranges([lay.gf for lay in self.layout], face["mean_px"],
                                  [lay.gf for lay in StyleLayout.from_arch("paper256")])
        self.table3 = [{"config": r.config, "convs": [f"conv{k}" for k in range(r.lo, r.hi + 1)],
                        "label": r.convs, "gf": [r.gf_min, r.gf_max]} for r in ranges]

    # --- info -------------------------------------------------------------------------------------
    def info(self) -> dict:
        """What the page needs to lay itself out: layers, fields, defaults, editing parts."""
        from genfields.evaluation.paper_numbers import FACE_SIZE_PX, RESOLUTION

        layers = [{"name": lay.name, "conv": lay.conv, "s_index": lay.s_index, "in_resolution": lay.in_resolution,
                   "resolution": lay.resolution, "channels": lay.channels, "gf": lay.gf,
                   "effective": self.stored_fields.effective.get(lay.name)} for lay in self.layout]
        face_ref = None
        if self.face_size_mean is not None:
            face_ref = {"size": self.face_size_mean, "source": f"mean over {FACE_SIZE_IMAGES} attribute images"}
        elif self.resolution == RESOLUTION:
            face_ref = {"size": FACE_SIZE_PX, "source": "the paper's mean FFHQ face size"}
        editing = None
        if self.editor is not None:
            editing = {"kind": self.editor.config.kind, "gallery": [
                {"id": key, "image": png_data_url(a.image), "source": a.source}
                for key, a in self._attributes.items() if key.startswith("gallery:")],
                "gallery_note": self.gallery_note, "table3": self.table3, "aligner": _dlib_available(),
                "upload_limit": MAX_UPLOAD_BYTES}
        return {"model": self.model_name, "editor": self.editor_name, "resolution": self.resolution,
                "s_dim": self.layout.dim, "layers": layers, "noise_modes": list(NOISE_MODES),
                "truncation": self.editor.truncation if self.editor is not None else 1.0,
                "effective_source": self.stored_fields.source, "face_reference": face_ref,
                "landmarks": self.nets is not None, "editing": editing}

    def channel_row(self, flat: int) -> dict:
        """A channel by its flat offset: its names in the three notations, layer, Eq. 1 field and std."""
        layer, channel = self.layout.locate(flat)
        return {"flat": flat, "paper": self.layout.format_index(flat, "paper"),
                "stylespace": self.layout.format_index(flat, "stylespace"),
                "conv": self.layout.format_index(flat, "conv"), "layer": layer.name, "channel": channel,
                "gf": layer.gf, "std": float(self.style_std[flat])}

    # --- generation -------------------------------------------------------------------------------
    def _identity(self, view: View) -> _Identity:
        """w, S (with the view's channel offsets) and the image of a view, cached."""
        def make() -> _Identity:
            w = self.G.mapping(seed_to_z(view.seed, self.G.z_dim), truncation_psi=view.truncation)
            if view.mix is not None:
                w = self._mixed_w(w, view)
            S = self.G.styles(w)
            for flat, value in view.channels:
                S[:, flat] += value * self.style_std[flat]
            return _Identity(w, S, self._synthesize(S, w, view))

        with torch.no_grad():
            return self._identities.get_or(view, make)

    def _mixed_w(self, w: torch.Tensor, view: View) -> torch.Tensor:
        """Per-layer w [1, num_ws, w_dim]: `w`, with the w vectors of the view's mix group from the mix seed."""
        other = self._per_layer(self.G.mapping(seed_to_z(view.mix_seed, self.G.z_dim),
                                               truncation_psi=view.truncation))
        ws = self._per_layer(w).clone()
        for index in self.mix_indices(view.mix):
            ws[:, index] = other[:, index]
        return ws

    def _per_layer(self, w: torch.Tensor) -> torch.Tensor:
        return w if w.ndim == 3 else w.unsqueeze(1).expand(-1, self.G.num_ws, -1)

    def mix_indices(self, group: str) -> list[int]:
        """The w indices whose layers (conv or toRGB) have output resolutions in the mix group's range."""
        lo, hi = MIX_GROUPS[group]
        resolution_of = {layer.w_index: layer.resolution for layer in self.layout}
        resolution_of.setdefault(self.G.num_ws - 1, self.resolution)  # the last toRGB (the others share a conv's)
        return [index for index in range(self.G.num_ws) if lo <= resolution_of[index] <= hi]

    def _layer(self, name, field: str = "layer"):
        """A conv layer by name; a RequestError naming `field` otherwise."""
        if not isinstance(name, str) or name not in {layer.name for layer in self.layout}:
            raise RequestError(f"{field}: no layer {shown(name)}; the layers are conv0..conv{len(self.layout) - 1}",
                               field)
        return self.layout.layer(name)

    def _synthesize(self, S: torch.Tensor, w: torch.Tensor, view: View) -> torch.Tensor:
        noise_gen = torch.Generator().manual_seed(view.seed) if view.noise == "random" else None
        return self.G.synthesize(S, w, noise_mode=view.noise, noise_generator=noise_gen)

    def _landmarks(self, ident: _Identity):
        if ident.found is None:
            ident.found = self.nets.landmarks(ident.image)
        return ident.found

    def render(self, view: View) -> dict:
        """The view's image, and with a landmark network its landmarks and face size."""
        with self._lock, torch.no_grad():
            ident = self._identity(view)
            out = {"image": png_data_url(ident.image), "resolution": self.resolution,
                   "channels": [{**self.channel_row(flat), "value": value} for flat, value in view.channels]}
            if self.nets is not None:
                out.update(_face(self._landmarks(ident), 0))
            return out

    # --- generative fields --------------------------------------------------------------------------
    def _pixel(self, x, y) -> tuple[int, int]:
        return check_integer(x, "x", 0, self.resolution - 1), check_integer(y, "y", 0, self.resolution - 1)

    def fields_at(self, x: int, y: int) -> dict:
        """For every conv layer, the unit covering pixel (x, y) and its fields as boxes in image pixels.

        `eq1` and `effective` are squares of the Eq. 1 / measured effective side centred on the unit's
        centre; `exact` is the support of an impulse at that unit (unclipped; pixel i spans [i, i + 1]).
        """
        x, y = self._pixel(x, y)
        rows = []
        for layer in self.layout:
            scale = self.resolution / layer.in_resolution
            ux, uy = int(x // scale), int(y // scale)
            cx, cy = (ux + 0.5) * scale, (uy + 0.5) * scale  # continuous image coordinates
            ix = exact_field_intervals(self.layout, position=ux)[layer.name]
            iy = exact_field_intervals(self.layout, position=uy)[layer.name]
            eff = self.stored_fields.effective.get(layer.name)
            rows.append({"name": layer.name, "s_index": layer.s_index, "in_resolution": layer.in_resolution,
                         "unit": [ux, uy], "centre": [cx, cy], "gf": layer.gf,
                         "eq1": _square(cx, cy, layer.gf), "exact": [ix.lo, iy.lo, ix.hi + 1, iy.hi + 1],
                         "exact_size": [ix.size, iy.size],
                         "effective": _square(cx, cy, eff) if eff else None, "effective_size": eff})
        return {"pixel": [x, y], "layers": rows}

    def probe(self, view: View, x: int, y: int, layer: str, amount: float = 1.0) -> dict:
        """Scale the unit covering (x, y) at `layer`'s input by (1 + amount) and show how the image changes.

        Returns the difference |I' - I| (summed over RGB) as a heat map, the box of the pixels that
        changed, the side of the centred square holding 90% of the change's energy (this unit's
        effective field in this image; the stored effective fields average units and images), and
        the unit's exact and Eq. 1 fields for comparison.
        """
        x, y = self._pixel(x, y)
        amount = check_number(amount, "amount", -1.0, 10.0)
        lay = self._layer(layer)
        with self._lock, torch.no_grad():
            ident = self._identity(view)
            scale = self.resolution / lay.in_resolution
            ux, uy = int(x // scale), int(y // scale)

            def scale_unit(module, args):
                inp = args[0].clone()
                inp[:, :, uy, ux] *= 1.0 + amount
                return (inp, *args[1:])

            handle = self.G.conv_module(lay.name).register_forward_pre_hook(scale_unit)
            try:
                image = self._synthesize(ident.S, ident.w, view)
            finally:
                handle.remove()
            change = image - ident.image
        diff = change.abs().sum(dim=1)[0].numpy()
        peak = float(diff.max())
        box, energy_side = None, None
        if peak > 0:  # float32 changes nothing outside the support: every changed pixel is in the field
            rows, cols = np.nonzero((diff > 0).any(axis=1))[0], np.nonzero((diff > 0).any(axis=0))[0]
            box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
            energy = change.double().square().sum(dim=1)[0]
            energy_side = centred_square_side(energy, (uy + 0.5) * scale - 0.5, (ux + 0.5) * scale - 0.5,
                                              EFFECTIVE_SHARE)
        field = self.fields_at(x, y)["layers"][lay.conv]
        return {"layer": lay.name, "unit": [ux, uy], "amount": amount, "image": png_data_url(_heat_map(diff, peak)),
                "changed_box": box, "peak": float(change.abs().max()) * 127.5, "exact": field["exact"], "eq1": field["eq1"],
                "energy_side": energy_side, "energy_box": _square(*field["centre"], energy_side) if box else None,
                "perturbed": png_data_url(image)}

    def rank_channels(self, view: View, x: int, y: int, top: int = 12) -> dict:
        """The channels of S whose change by one std moves pixel (x, y) the most (first-order, in uint8 levels).

        The effect of channel c is |dI(x, y)/dS_c| (over RGB, Euclidean) times the channel's std: three
        backward passes of the pixel's value, computed over the window of units that reach it.
        """
        x, y = self._pixel(x, y)
        top = check_integer(top, "top", 1, MAX_TOP)
        with self._lock:
            ident = self._identity(view)
            S = ident.S.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                pixel = self._pixel_value(S, ident.w, view, x, y)
                grads = torch.autograd.grad(pixel, S, grad_outputs=torch.eye(3), is_grads_batched=True)[0][:, 0]
            effect = grads.norm(dim=0) * self.style_std * 127.5
        order = torch.argsort(effect, descending=True)[:top]
        return {"pixel": [x, y], "channels": [{**self.channel_row(int(k)), "effect": float(effect[k])}
                                              for k in order]}

    def feature_maps(self, view: View, x: int, y: int, layer: str, top: int = FEATURE_MAPS) -> dict:
        """The feature maps entering `layer` (the maps its styles scale) whose value at the unit covering
        (x, y) is largest in magnitude: each as a diverging heat map (blue < 0 < red, scaled by its own
        largest |value|), with the channel of S that modulates it."""
        x, y = self._pixel(x, y)
        lay = self._layer(layer)
        top = check_integer(top, "top", 1, lay.channels)
        captured = {}

        def keep_input(module, args):
            captured["x"] = args[0]

        with self._lock, torch.no_grad():
            ident = self._identity(view)
            handle = self.G.conv_module(lay.name).register_forward_pre_hook(keep_input)
            try:
                self._synthesize(ident.S, ident.w, view)
            finally:
                handle.remove()
        maps = captured["x"][0].float()
        ux, uy = x * lay.in_resolution // self.resolution, y * lay.in_resolution // self.resolution
        at_unit = maps[:, uy, ux]
        order = torch.argsort(at_unit.abs(), descending=True)[:top]
        rows = []
        for c in order.tolist():
            peak = float(maps[c].abs().max())
            rows.append({**self.channel_row(lay.offset + c), "value": float(at_unit[c]), "peak": peak,
                         "image": png_data_url(_diverging_map(maps[c].numpy(), peak))})
        return {"layer": lay.name, "unit": [ux, uy], "in_resolution": lay.in_resolution, "channels": lay.channels,
                "mean_abs": float(maps.abs().mean()), "maps": rows}

    def region_channels(self, view: View, box: tuple[int, int, int, int], top: int = 12,
                        probes: int = REGION_PROBES) -> dict:
        """The channels of S whose change is most concentrated inside `box` [x0, y0, x1, y1) of the image.

        For each channel c, the energy of its first-order change per std, |J e_c|^2 std_c^2 (J = dI/dS over
        RGB pixels), is split into the part inside the box and the part outside. Both are estimated at once
        for all channels with `probes` random +-1 images v: E[(v^T J e_c)^2] = |J e_c|^2 on v's support
        (Hutchinson), one batched backward pass. Channels are ranked by inside / total among those whose
        inside energy reaches REGION_FLOOR of the strongest; the rows give the share, the RMS change inside
        the box in 8-bit levels per std, and the layer's fields.
        """
        x0, y0, x1, y1 = box
        probes = check_integer(probes, "probes", 4, 256)
        top = check_integer(top, "top", 1, MAX_TOP)
        inside = torch.zeros(1, 3, self.resolution, self.resolution)
        inside[..., y0:y1, x0:x1] = 1.0
        signs = torch.randint(0, 2, (probes, 1, 3, self.resolution, self.resolution),
                              generator=torch.Generator().manual_seed(0)).float() * 2 - 1
        cotangents = torch.cat([signs * inside, signs * (1 - inside)])  # [2 * probes, 1, 3, H, W]
        with self._lock:
            ident = self._identity(view)
            with torch.enable_grad():
                grads = self._vector_jacobian(ident, view, cotangents)
        energy = grads.square().reshape(2, probes, -1).mean(dim=1) * (self.style_std * 127.5) ** 2
        e_in, e_out = energy[0], energy[1]
        share = e_in / (e_in + e_out).clamp_min(1e-30)
        eligible = e_in >= REGION_FLOOR * e_in.max()
        order = torch.argsort(torch.where(eligible, share, torch.full_like(share, -1.0)), descending=True)
        order = order[:min(top, int(eligible.sum()))]
        pixels = 3 * (x1 - x0) * (y1 - y0)
        rows = [{**self.channel_row(int(k)), "share": float(share[k]), "inside_rms": math.sqrt(float(e_in[k]) / pixels),
                 "effective": self.stored_fields.effective.get(self.layout.locate(int(k))[0].name)} for k in order]
        return {"box": list(box), "probes": probes, "eligible": int(eligible.sum()), "channels": rows}

    def _pixel_value(self, S: torch.Tensor, w: torch.Tensor, view: View, x: int, y: int) -> torch.Tensor:
        """RGB [3] of pixel (x, y) of the view's image: over the window of units that reach it (the same
        numbers, a fraction of the work), or from the whole image with random noise, which a window cannot draw."""
        if view.noise == "random":
            return self._synthesize(S, w, view)[0, :, y, x]
        return synthesize_pixel(self.G, S, w, view.noise, x, y)

    def _vector_jacobian(self, ident: _Identity, view: View, cotangents: torch.Tensor) -> torch.Tensor:
        """v^T dI/dS for each image-shaped v of `cotangents` [K, 1, 3, H, W] -> [K, S dim], in chunks whose
        activations take about BATCH_PIXELS pixels: each chunk one forward pass of a batch of copies (faster on
        a CPU than backward passes of one). With random noise, whose batch would draw other noise, or when one
        copy alone passes the budget (paper256), one forward pass and the chunks' backward passes."""
        chunk = max(1, BATCH_PIXELS // self.resolution**2)
        if view.noise == "random" or chunk < 2:
            S = ident.S.detach().clone().requires_grad_(True)
            image = self._synthesize(S, ident.w, view)
            return torch.cat([torch.autograd.grad(image, S, grad_outputs=part, is_grads_batched=True,
                                                  retain_graph=True)[0][:, 0]
                              for part in cotangents.split(REGION_BACKWARD_CHUNK)])
        grads = []
        for part in cotangents.split(chunk):
            S = ident.S.detach().repeat(part.shape[0], 1).requires_grad_(True)
            image = self._synthesize(S, ident.w.expand(part.shape[0], *ident.w.shape[1:]), view)
            grads.append(torch.autograd.grad(image, S, grad_outputs=part[:, 0])[0])
        return torch.cat(grads)

    def capture(self, view: View, link: str = "") -> dict:
        """The view's image as a PNG file whose text chunks hold the model, the view's settings and the page link."""
        from PIL.PngImagePlugin import PngInfo

        with self._lock, torch.no_grad():
            image = to_uint8(self._identity(view).image)[0]
        settings = {"model": self.model_name, "seed": view.seed, "truncation": view.truncation, "noise": view.noise,
                    "mix": None if view.mix is None else {"seed": view.mix_seed, "styles": view.mix},
                    "channels": [{"name": self.layout.format_index(flat, "stylespace"),
                                  "paper": self.layout.format_index(flat, "paper"), "value": value}
                                 for flat, value in view.channels]}
        info = PngInfo()
        info.add_text("Software", "genfields explore")
        info.add_text("genfields:view", json.dumps(settings))
        if link:
            info.add_text("genfields:link", link)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", pnginfo=info)
        name = f"{self.model_name.replace(':', '-').replace('/', '-')}-seed{view.seed}.png"
        return {"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
                "filename": name, "settings": settings}

    # --- editing ----------------------------------------------------------------------------------
    def _require_editor(self):
        if self.editor is None:
            raise ConfigError("no editor loaded: start explore with --editor NAME to edit")
        return self.editor

    def _perceive_attribute(self, image: torch.Tensor, source: str) -> Attribute:
        with torch.no_grad():
            return Attribute(image, self.nets.attributes(image), self.nets.landmarks(image), source)

    def upload(self, data: bytes, align: bool = True, name: str = "upload") -> dict:
        """An uploaded photo as an attribute face: aligned FFHQ-style with dlib when `align`, else used as a
        square crop. Returns its id and image; bad files and faceless photos are ImageError/NoFaceError
        naming the file by `name`."""
        self._require_editor()
        name = upload_label(name)
        if len(data) > MAX_UPLOAD_BYTES:
            raise RequestError(f"{name}: {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB",
                               "file", 413)
        if not data:
            raise RequestError(f"{name}: the file is empty", "file")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload"  # the user's name is only shown, never a path
            path.write_bytes(data)
            try:
                image = self._read_upload(path, align)
            except GenfieldsError as exc:  # ImageError, NoFaceError: named by the user's file name
                text = str(exc).replace(str(path), name)
                raise type(exc)(text if name in text else f"{name}: {text}") from None
        with self._lock:
            self._upload_count += 1
            key = f"upload:{self._upload_count}"
            self._attributes[key] = self._perceive_attribute(image, name + (" (aligned)" if align else ""))
            self._uploads.append(key)
            if len(self._uploads) > MAX_UPLOADS:
                self._attributes.pop(self._uploads.pop(0), None)
        return {"id": key, "image": png_data_url(image), "source": self._attributes[key].source}

    def _read_upload(self, path: Path, align: bool) -> torch.Tensor:
        if not align:
            return load_image(path, self.resolution)
        if not _dlib_available():
            raise ImageError("aligning a photo needs dlib: pip install 'genfields[real]' (or upload an aligned "
                             "square crop with 'align' unchecked)")
        from genfields.perception.alignment import align_photo

        return from_uint8(align_photo(to_uint8(load_image(path))[0], self.resolution).image)

    def _mask(self, convs: list[str] | None, gf: list[int] | None) -> tuple[torch.Tensor, list[str]]:
        """The inference mask of the chosen conv layers and Eq. 1 field range, and the layers it keeps."""
        editor = self._require_editor()
        if convs is not None and not isinstance(convs, list):
            raise RequestError("convs must be a list of layer names", "convs")
        if gf is not None and (not isinstance(gf, list) or len(gf) != 2):
            raise RequestError("gf must be [lo, hi]", "gf")
        all_convs = convs is None or set(convs) == {lay.name for lay in self.layout}
        lo_hi = None
        if gf is not None:
            lo, hi = check_integer(gf[0], "gf[0]", 0, 2**31), check_integer(gf[1], "gf[1]", 0, 2**31)
            full = lo <= min(lay.gf for lay in self.layout) and hi >= max(lay.gf for lay in self.layout)
            lo_hi = None if full else f"{lo}-{hi}"
        if convs is not None and not convs:
            mask = torch.zeros(self.layout.dim)
        else:
            spec = None if all_convs else ",".join(self._layer(c, "convs").name for c in convs)
            mask = editor.inference_mask(spec, lo_hi).cpu()
        kept = [lay.name for lay in self.layout if bool(mask[lay.offset])]
        return mask, kept

    def edit(self, view: View, attribute: str, convs: list[str] | None = None, gf: list[int] | None = None,
             top: int = 12) -> dict:
        """Edit the view's identity towards an attribute face, with dS masked to `convs` and the Eq. 1 range `gf`.

        Returns I_id, I_attr and I_out with their landmarks and poses, the paper's metrics of the edit
        and of the unedited identity, and the channels of largest |dS| (Eq. 13).
        """
        from genfields.editing.evaluate import pair_metrics
        from genfields.evaluation.sparsity import top_channels

        editor = self._require_editor()
        top = check_integer(top, "top", 1, MAX_TOP)
        with self._lock, torch.no_grad():
            if attribute not in self._attributes:
                raise RequestError(f"unknown attribute face '{attribute}': pick one from the gallery or upload a photo",
                                   "attribute")
            attr = self._attributes[attribute]
            mask, kept = self._mask(convs, gf)
            ident = self._identity(view)
            if ident.embedding is None:
                ident.embedding = self.nets.identity(ident.image)
            found_id = self._landmarks(ident)
            S_out, w_out = editor.edit_styles(ident.S, ident.w, ident.embedding, attr.features, mask)
            image = self._synthesize(S_out, w_out, view)
            found_out = self.nets.landmarks(image)
            embedding_out = self.nets.identity(image)
            res = self.resolution
            metrics = {"method": pair_metrics(ident.embedding, embedding_out, attr.found, found_out, res),
                       "unedited": pair_metrics(ident.embedding, ident.embedding, attr.found, found_id, res)}
            delta = (S_out - ident.S)[0]
        order = top_channels(delta[None].numpy(), top)[0]
        return {"identity": {"image": png_data_url(ident.image), **_face(found_id, 0)},
                "attribute": {"image": png_data_url(attr.image), "source": attr.source, **_face(attr.found, 0)},
                "output": {"image": png_data_url(image), **_face(found_out, 0)},
                "metrics": {side: {k: float(v[0]) for k, v in m.items()} for side, m in metrics.items()},
                "layers": kept, "delta_norm": float(delta.norm()),
                "top": [{**self.channel_row(int(k)), "delta": float(delta[k]),
                         "delta_std": float(delta[k] / self.style_std[k])} for k in order if delta[k] != 0]}


def upload_label(name) -> str:
    """An uploaded file's name as messages show it: its last path part, printable, at most 80 characters."""
    text = "".join(ch for ch in str(name) if ch.isprintable()).replace("\\", "/").rsplit("/", 1)[-1]
    text = text if text not in ("", ".", "..") else "upload"
    return text if len(text) <= 80 else text[:60] + "..." + text[-17:]


def _square(cx: float, cy: float, side: int) -> list[float]:
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def _face(found, i: int) -> dict:
    """Landmarks of face i (in image pixels, as the landmark network gives them), its pose and face size."""
    from genfields.perception.metrics import face_size

    lm = found.landmarks[i]
    return {"landmarks": np.round(lm.numpy(), 2).tolist(), "pose": [round(float(v), 2) for v in found.pose[i]],
            "face_size": float(face_size(lm[None])[0])}


def _heat_map(diff: np.ndarray, peak: float) -> np.ndarray:
    """|difference| as an RGB heat map (square root scale, inferno), uint8 [H, W, 3]."""
    from matplotlib import colormaps

    level = np.sqrt(diff / peak) if peak > 0 else np.zeros_like(diff)
    return (colormaps["inferno"](level)[..., :3] * 255).round().astype(np.uint8)


def _diverging_map(values: np.ndarray, peak: float) -> np.ndarray:
    """A feature map as an RGB image: blue for negative, white at 0, red for positive, scaled by `peak`."""
    from matplotlib import colormaps

    level = 0.5 + 0.5 * values / peak if peak > 0 else np.full_like(values, 0.5)
    return (colormaps["RdBu_r"](level)[..., :3] * 255).round().astype(np.uint8)


def _dlib_available() -> bool:
    """Whether the [real] extra's aligner is installed (found without importing it: dlib loads slowly)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("dlib", "face_recognition_models"))
