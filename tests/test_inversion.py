"""Inversion (genfields.editing.inversion, `genfields invert`, `edit --identity`) on tiny16: the generator's
own sample recovered, the file format and its refusal of another generator's inversion, bad inputs."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from genfields.cli import app
from genfields.editing.inversion import (InversionConfig, invert, load_inversion, reconstruct,
                                         reconstruction_measures, save_inversion)
from genfields.errors import CheckpointError, ConfigError
from genfields.imageio import save_image
from genfields.perception import load_perception
from genfields.stylegan2 import load_generator

runner = CliRunner()
HAS_DLIB = importlib.util.find_spec("dlib") is not None
PIXELS_ONLY = dict(perceptual=0.0, identity=0.0, prior=0.0, lr=0.3)  # the image alone: an exact target exists


@pytest.fixture(scope="module")
def G():
    return load_generator("random:tiny16:1")


@pytest.fixture(scope="module")
def nets():
    return load_perception("synth")


def _sample(G, seed: int = 7):
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w = G.mapping(z)
        S = G.styles(w)
        return w, S, G.synthesize(S, w)


def test_inverting_the_generators_own_sample_gives_back_its_image_and_codes(G, nets):
    w, S, image = _sample(G)
    inversion = invert(G, nets, image, InversionConfig(space="s", steps=300, **PIXELS_ONLY))
    rec = reconstruct(G, inversion)
    assert (rec - image).abs().mean() < 0.02  # images in [-1, 1]
    assert (inversion.S - S[0]).abs().mean() / S[0].abs().mean() < 0.1  # S itself, to 10% of its mean size
    measures = reconstruction_measures(image, rec)
    assert measures["l1"] < 0.01 and measures["ms_ssim"] > 0.95


def test_each_stage_improves_on_the_mean_w(G, nets):
    _, _, image = _sample(G, seed=3)
    start = InversionConfig(space="w", steps=1, **PIXELS_ONLY)
    worst = (reconstruct(G, invert(G, nets, image, start)) - image).abs().mean()
    for space in ("w", "wplus", "s"):
        inversion = invert(G, nets, image, InversionConfig(space=space, steps=40, **PIXELS_ONLY))
        assert (reconstruct(G, inversion) - image).abs().mean() < worst / 2, space
    assert InversionConfig(space="s", steps=10).stage_steps() == [4, 3, 3]


def test_an_inversion_file_round_trips_and_refuses_another_generator(G, nets, tmp_path):
    _, _, image = _sample(G)
    inversion = invert(G, nets, image, InversionConfig(space="wplus", steps=4))
    path = save_inversion(inversion, tmp_path / "me.safetensors")
    again = load_inversion(path, G)
    assert torch.equal(again.S, inversion.S) and again.meta["settings"]["space"] == "wplus"
    with pytest.raises(CheckpointError, match="inverted with another generator"):
        load_inversion(path, load_generator("random:tiny16:2"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable inversion file"):
        load_inversion(tmp_path / "junk.safetensors")


def test_inversion_settings_and_targets_are_checked(G, nets):
    with pytest.raises(ConfigError, match="--space"):
        InversionConfig(space="z")
    with pytest.raises(ConfigError, match="--steps"):
        InversionConfig(space="s", steps=2)
    with pytest.raises(ConfigError, match="one image"):
        invert(G, nets, torch.zeros(1, 3, 32, 32), InversionConfig(steps=3))


def test_invert_command_writes_codes_and_reconstruction_and_edit_takes_them(G, tmp_path):
    _, _, image = _sample(G)
    save_image(image, tmp_path / "me.png")
    result = runner.invoke(app, ["invert", str(tmp_path / "me.png"), "--model", "random:tiny16:1", "--no-align",
                                 "--steps", "6", "--outdir", str(tmp_path / "inv"), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["space"] == "s" and 0 <= row["l1"] <= 2 and "identity_judge" in row
    assert (tmp_path / "inv" / "me.png").is_file()
    assert load_inversion(tmp_path / "inv" / "me.safetensors", G).meta["source"].endswith("me.png")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("invert-inputs")
    Image.new("RGB", (16, 12), (150, 120, 100)).save(root / "oblong.png")
    Image.new("RGB", (128, 128), (150, 120, 100)).save(root / "wall.png")  # no face, not the generator's size
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


ROWS = [
    (["invert", "{in}/missing.png"], "missing.png"),
    (["invert", "{in}/broken.png", "--no-align"], "broken.png"),
    (["invert", "{in}/oblong.png", "--no-align"], "oblong.png"),
    (["invert", "{in}/oblong.png", "--space", "z", "--no-align"], "--space must be one of w, wplus, s"),
    (["invert", "{in}/a/x.png", "{in}/b/x.png", "--no-align"], "two inputs would write x.safetensors"),
]
DLIB_ROWS = [(["invert", "{in}/wall.png"], "wall.png: no face found in the image")]


def _refused(inputs, args, message):
    result = runner.invoke(app, [a.replace("{in}", str(inputs)) for a in args]
                           + ["--model", "random:tiny16:1", "--outdir", str(inputs / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (inputs / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("args, message", ROWS, ids=[r[1][:30] for r in ROWS])
def test_bad_inputs_are_one_line_and_exit_2(inputs, args, message):
    _refused(inputs, args, message)


@pytest.mark.skipif(not HAS_DLIB, reason="dlib is not installed (the [real] extra)")
@pytest.mark.parametrize("args, message", DLIB_ROWS)
def test_a_photo_without_a_face_is_refused(inputs, args, message):
    _refused(inputs, args, message)


def test_evaluate_takes_inverted_identities_instead_of_seeds(G, nets, tmp_path):
    from genfields.editing import get_preset
    from genfields.editing.editor import new_editor
    from genfields.editing.config import ModelConfig
    from genfields.editing.evaluate import evaluate_editor
    from genfields.editing.inversion import inverted_identities
    from genfields.editing.regularizer import mapped_statistics

    folder = tmp_path / "inverted"
    for seed in range(3):
        _, _, image = _sample(G, seed)
        save_inversion(invert(G, nets, image, InversionConfig(space="s", steps=3)), folder / f"id{seed}.safetensors")
    w_plus, S, names = inverted_identities(folder, G)
    assert names == ["id0", "id1", "id2"] and w_plus.shape[0] == S.shape[0] == 3
    editor = new_editor(G, nets, ModelConfig(hidden=(8,)), mapped_statistics(G, 64, 0))
    preset = get_preset("tiny16")
    seeded = evaluate_editor(editor, preset, pairs=3, seed=0, batch=2)
    inverted = evaluate_editor(editor, preset, pairs=3, seed=0, batch=2, identities=(w_plus, S))
    assert inverted["method"]["identity"] != seeded["method"]["identity"]  # other faces, the same attribute images
    with pytest.raises(ConfigError, match="4 pairs need as many identities"):
        evaluate_editor(editor, preset, pairs=4, seed=0, batch=2, identities=(w_plus, S))
    with pytest.raises(CheckpointError, match="inverted with another generator"):
        inverted_identities(folder, load_generator("random:tiny16:2"))
