"""Checkpoint formats: the official fixture, malicious and broken files, our format, rosinality."""

from __future__ import annotations

import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from conftest import require_nvidia_fixture
from genfields.errors import CheckpointError, UnsafePickleError
from genfields.stylegan2 import Generator, load_generator, save_generator
from genfields.stylegan2.checkpoints import load_nvidia_pickle


# --- the official fixture ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def official():
    folder = require_nvidia_fixture()
    G = load_generator(folder / "nvidia_tiny64.pkl")
    expected = dict(np.load(folder / "nvidia_tiny64_expected.npz"))
    return G, expected


def test_fixture_config_is_read_from_the_pickle(official):
    G, _ = official
    c = G.config
    assert (c.img_resolution, c.z_dim, c.w_dim, c.mapping_layers) == (64, 512, 512, 2)
    assert (c.channel_base, c.channel_max, c.conv_clamp, c.num_fp16_res) == (2048, 128, 256, 2)
    assert G.layout.dim == 928 and G.num_ws == 10
    assert not G.training and next(G.parameters()).dtype == torch.float32


@pytest.mark.parametrize("psi,w_key,img_key", [(1.0, "w", "img"), (0.7, "w_psi07", "img_psi07")])
def test_fixture_images_and_w_reproduced(official, psi, w_key, img_key):
    G, e = official
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(e["z"]), truncation_psi=psi)
        img = G.synthesize(G.styles(w), w=w, noise_mode="const")
        img_plain = G(torch.from_numpy(e["z"]), truncation_psi=psi, noise_mode="const")
    assert np.abs(w.numpy() - e[w_key]).max() < 1e-5
    assert np.abs(img.numpy() - e[img_key]).max() < 1e-3
    assert torch.equal(img, img_plain)


def test_fixture_every_style_vector_reproduced(official):
    G, e = official
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(e["z"]))
        S = G.styles(w)
        conv_styles = dict(zip([layer.official_name for layer in G.layout], G.layout.split(S)))
        rgb = dict(zip([f"b{r}.torgb" for r in G.config.block_resolutions], G.rgb_styles(w)))
    names = [str(n) for n in e["affine_names"]]
    assert len(names) == 14
    for name in names:
        module = name.removesuffix(".affine")
        ours = conv_styles.get(module, rgb.get(module))
        assert np.abs(ours.numpy() - e[f"style:{name}"]).max() < 1e-4, name
    # S is exactly the 9 non-toRGB affines, in forward order
    expected_S = np.concatenate([e[f"style:{n}"] for n in names if "torgb" not in n], axis=1)
    assert np.abs(S.numpy() - expected_S).max() < 1e-4


# --- malicious and broken files ----------------------------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Payload(marker)}))
    with pytest.raises(UnsafePickleError, match="system"):
        load_generator(path)
    assert not marker.exists()


def test_malicious_payload_inside_a_persistent_object_is_refused(tmp_path, monkeypatch):
    # Pickle through a stand-in for torch_utils.persistence, as an official snapshot would.
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    marker = tmp_path / "pwned"

    class Obj:
        def __reduce__(self):
            return (_reconstruct_persistent_obj, ({"type": "class", "class_name": "Generator",
                                                   "module_src": "import os", "state": {"x": _Payload(marker)}},))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Obj()}))
    with pytest.raises(UnsafePickleError, match="system"):
        load_generator(path)
    assert not marker.exists()


def test_truncated_pickle(tmp_path):
    data = (require_nvidia_fixture() / "nvidia_tiny64.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_generator(path)


def test_foreign_pickle_without_a_generator(tmp_path):
    path = tmp_path / "foreign.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="no G_ema"):
        load_nvidia_pickle(path)


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"GIF89a....", "unknown checkpoint format")])
def test_unknown_and_empty_files(tmp_path, content, match):
    path = tmp_path / "thing.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_generator(path)


def test_missing_file_and_unknown_name():
    with pytest.raises(CheckpointError, match="no such model or file"):
        load_generator("/definitely/not/here.pkl")
    with pytest.raises(CheckpointError, match="no such model"):
        load_generator("no-such-model")


# --- our own format ----------------------------------------------------------------------------
def test_own_format_round_trip_is_exact(tmp_path, tiny_generator):
    folder = save_generator(tiny_generator, tmp_path / "ckpt")
    for source in (folder, folder / "model.safetensors"):
        G2 = load_generator(source)
        assert G2.config == tiny_generator.config
        for (k, a), (_, b) in zip(tiny_generator.state_dict().items(), G2.state_dict().items()):
            assert torch.equal(a, b), k
    z = torch.randn(2, tiny_generator.z_dim)
    with torch.no_grad():
        assert torch.equal(tiny_generator(z), G2(z))


def test_own_format_corrupt_and_misshaped(tmp_path, tiny_generator):
    folder = save_generator(tiny_generator, tmp_path / "ckpt")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_generator(folder)
    # a checkpoint whose config says more channels than its tensors have
    folder = save_generator(tiny_generator, tmp_path / "ckpt2")
    from safetensors.torch import load_file, save_file

    original = load_file(str(folder / "model.safetensors"))
    tensors = dict(original, **{"synthesis.b4.conv1.weight": original["synthesis.b4.conv1.weight"][:, :5].contiguous()})
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="synthesis.b4.conv1.weight has shape"):
        load_generator(folder)
    del tensors["mapping.fc0.bias"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing tensors mapping.fc0.bias"):
        load_generator(folder)


# --- rosinality --------------------------------------------------------------------------------
def to_rosinality_state(G: Generator) -> dict:
    """Write G in rosinality stylegan2-pytorch's layout (the inverse of our conversion)."""
    sd = G.state_dict()
    out = {"input.input": sd["synthesis.b4.const"][None]}
    for i in range(G.config.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]

    def styled(src, dst):
        w = sd[f"{src}.weight"]
        out[f"{dst}.conv.weight"] = (w * math.sqrt(w[0].numel()))[None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]

    def rgb(src, dst):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)

    styled("synthesis.b4.conv1", "conv1")
    rgb("synthesis.b4.torgb", "to_rgb1")
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"][None, None]
    for j, res in enumerate(G.config.block_resolutions[1:]):
        for k, name in enumerate(("conv0", "conv1")):
            styled(f"synthesis.b{res}.{name}", f"convs.{2 * j + k}")
            out[f"noises.noise_{2 * j + k + 1}"] = sd[f"synthesis.b{res}.{name}.noise_const"][None, None]
        rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
    return out


def test_rosinality_checkpoint_loads_to_the_same_generator(tmp_path):
    torch.manual_seed(0)
    G = Generator.from_arch("synth64", seed=5)  # channel_base 4096 = 16384 * cm with cm = 1/4: pass it explicitly
    G = Generator(G.config.__class__(img_resolution=64, channel_base=16384, channel_max=512, mapping_layers=4,
                                     z_dim=64, w_dim=64))
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "ros.pt"
    torch.save({"g_ema": to_rosinality_state(G), "latent_avg": torch.randn(64)}, path)
    G2 = load_generator(path, channel_multiplier=1)
    z = torch.randn(2, 64)
    with torch.no_grad():
        expected = G.synthesize(G.styles(G.mapping(z)), G.mapping(z))
        # rosinality stores the weight gains unfolded, so float32 rounding differs by ~1e-6 of the image's range
        assert (expected - G2(z)).abs().max() < 1e-5 * expected.abs().max()
    assert G2.config.channel_base == 16384 and G2.config.mapping_layers == 4


def test_rosinality_file_without_g_ema(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="g_ema"):
        load_generator(path)
