"""The shipped synthetic-world networks load, meet a loose bar on fresh renders, and drive `detect`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from genfields.imageio import save_image
from genfields.perception import feature_statistics, frechet_distance, landmark_nme, load_perception, pose_mae
from genfields.perception.cli import _standalone
from genfields.perception.shipped import PERCEPTION_DIR, PRESETS, load_network
from genfields.synthface import FaceRenderer, render_batch, sample_params

pytestmark = pytest.mark.skipif(not all((PERCEPTION_DIR / name / "model.safetensors").is_file()
                                        for name in PRESETS["synth"].values()),
                                reason="shipped perception weights not present")


@pytest.fixture(scope="module")
def nets():
    return load_perception("synth")


@pytest.fixture(scope="module")
def faces():
    return render_batch(24, res=64, seed=777)


def test_landmarks_and_pose_on_fresh_renders(nets, faces):
    with torch.no_grad():
        found = nets.landmarks(faces.images)
    assert landmark_nme(found.landmarks, faces.landmarks).mean() < 0.05
    assert (pose_mae(found.pose, faces.pose) < 4.0).all()


def test_landmarks_follow_the_input_resolution(nets):
    batch = render_batch(4, res=128, seed=778)
    with torch.no_grad():
        found = nets.landmarks(batch.images)
    assert landmark_nme(found.landmarks, batch.landmarks).mean() < 0.06


def test_identity_survives_a_new_pose_and_expression(nets, faces):
    params = faces.params
    other = sample_params(len(params), seed=779)
    turned = FaceRenderer(64).render(params.replace(pose=other.pose, expression=other.expression)).images
    with torch.no_grad():
        a, b = nets.identity(faces.images), nets.identity(turned)
    same = nets.identity.similarity(a, b)
    different = nets.identity.similarity(a, b.roll(1, dims=0))
    assert same.mean() > different.mean() + 0.3
    assert (same > different).float().mean() > 0.9


def test_attribute_features_and_fd(nets, faces):
    with torch.no_grad():
        feats = nets.features(faces.images)
        noise = nets.features(torch.rand_like(faces.images) * 2 - 1)
    assert feats.shape == (24, nets.attributes.feature_dim) and torch.isfinite(feats).all()
    assert torch.allclose(feats, nets.attributes(faces.images) / nets.features.scale)
    half = feature_statistics(feats[:12]), feature_statistics(feats[12:])
    fd_faces = frechet_distance(*half[0], *half[1])
    fd_noise = frechet_distance(*feature_statistics(feats), *feature_statistics(noise))
    assert 0 <= fd_faces < fd_noise


def test_detect_command_prints_json_and_draws(tmp_path, faces):
    path = save_image(faces.images[0], tmp_path / "face.png")
    result = CliRunner().invoke(_standalone(), ["detect", str(path), "--json", "--out", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert np.array(found["landmarks"]).shape == (68, 2) and abs(found["yaw"] - float(faces.pose[0, 0])) < 6
    assert (tmp_path / "a.png").is_file()


def test_detect_refuses_an_unreadable_image(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    result = CliRunner().invoke(_standalone(), ["detect", str(bad)])
    assert result.exit_code == 2 and "not a readable image" in result.output


def test_fd_features_are_standardised_by_the_shipped_scale():
    """FD features have unit std per unit on renders (the raw units' variance is one unit's, ~96%)."""
    from genfields.perception.shipped import load_fd_scale, measure_fd_scale
    from genfields.synthface import render_batch

    scale = load_fd_scale("synth_attributes")
    assert scale is not None and scale.shape == (256,) and (scale > 0).all()
    attributes = load_network("synth_attributes")
    small = measure_fd_scale(attributes, n=40, batch=16, seed=5)
    with torch.no_grad():
        raw = attributes(render_batch(40, res=64, seed=5).images).double()
    std = raw.std(dim=0)
    assert torch.allclose(small.double(), torch.where(std > 1e-6, std, torch.ones_like(std)), rtol=1e-5)
    with torch.no_grad():
        standardised = raw / scale
    assert 0.5 < float(standardised.std(dim=0)[std > 1e-6].median()) < 2.0
