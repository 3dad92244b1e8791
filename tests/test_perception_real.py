"""The real-photo dlib backend: PnP pose on exact synthetic landmarks, and checks on real photos.

The photos are the Obama/Biden test images of the `face_recognition==1.3.0` sdist (the `photos`
fixture of conftest.py); the tests skip with the reason when the optional packages or the
photos are unavailable.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genfields.imageio import from_uint8, load_image

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (extra [real]) not installed")
from genfields.perception.real import NoFaceError, pose_from_landmarks  # noqa: E402


def test_pnp_pose_recovers_synthface_poses():
    from genfields.synthface import FaceRenderer, sample_params

    params = sample_params(5, seed=3)
    pose = torch.tensor([[30.0, 0, 0], [0, 20, 0], [0, 0, 25], [-25, 10, -15], [40, -15, 10]])
    lm, _, _ = FaceRenderer(256).landmarks(params.replace(pose=pose))
    found = np.stack([pose_from_landmarks(lm[i].double().numpy(), 256, 256) for i in range(5)])
    assert np.abs(found - pose.numpy()).max() < 4.0


def test_same_person_is_closer_than_a_different_person(photos):
    from genfields.perception.real import DlibIdentityEncoder

    enc = DlibIdentityEncoder()
    obama, obama2, biden = (enc(load_image(photos / name)) for name in ("obama.jpg", "obama2.jpg", "biden.jpg"))
    same, different = (obama - obama2).norm(), (obama - biden).norm()
    assert same < 0.6 < different


def test_mirrored_photo_flips_yaw_and_rotation_changes_roll(photos):
    from genfields.perception.real import detect_dlib

    rgb = np.array(Image.open(photos / "obama2.jpg").convert("RGB"))  # yaw about -14 degrees
    base = detect_dlib(from_uint8(rgb))
    mirrored = detect_dlib(from_uint8(np.ascontiguousarray(rgb[:, ::-1])))
    assert base.pose[0] < -8 and abs(base.pose[0] + mirrored.pose[0]) < 3.0
    assert abs(base.pose[2] + mirrored.pose[2]) < 3.0
    turned = np.asarray(Image.fromarray(rgb).rotate(15, resample=Image.BICUBIC))  # counter-clockwise
    rotated = detect_dlib(from_uint8(turned))
    assert abs(rotated.pose[2] - base.pose[2] - 15) < 4.0


def test_a_photo_without_a_face_is_refused(photos):
    from genfields.perception.real import detect_dlib

    with pytest.raises(NoFaceError):
        detect_dlib(torch.zeros(1, 3, 128, 128))


def test_detect_command_on_the_astronaut_photo_with_both_backends(tmp_path):
    """The issue's check: `genfields detect` on scikit-image's astronaut, offline, both backends."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (extra [real]) not installed")
    pytest.importorskip("dlib", reason="dlib-bin (extra [real]) not installed")
    import json

    from typer.testing import CliRunner

    from genfields.cli import app

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    found = {}
    for backend in ("dlib", "synth"):
        out = tmp_path / f"{backend}.png"
        result = CliRunner().invoke(app, ["detect", str(photo), "--backend", backend, "--out", str(out), "--json"])
        assert result.exit_code == 0, result.output
        found[backend] = json.loads(result.stdout)
        assert out.stat().st_size > 10_000 and len(found[backend]["landmarks"]) == 68
    lm = np.array(found["dlib"]["landmarks"])
    assert (170 < lm[:, 0]).all() and (lm[:, 0] < 290).all() and (70 < lm[:, 1]).all() and (lm[:, 1] < 200).all()
    assert abs(found["dlib"]["yaw"]) < 15 and abs(found["dlib"]["roll"]) < 10  # a near-frontal, upright face


def test_detect_3ddfa_gives_the_pose_of_a_photo_offline_without_the_bfm(tmp_path, monkeypatch, photos):
    """`genfields detect --backend 3ddfa`: shipped mb05, dlib's box; without the BFM one line says so, no landmarks."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (extra [real]) not installed")
    import json

    from typer.testing import CliRunner

    from genfields.cli import app
    from genfields.perception.detection import detect, shipped_tddfa_judge

    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path / "empty"))  # no downloads: no BFM
    shipped_tddfa_judge.cache_clear()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    result = CliRunner().invoke(app, ["detect", str(photo), "--backend", "3ddfa", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["landmarks"] is None and "genfields download 3ddfa-bfm" in found["note"]
    assert abs(found["yaw"]) < 10 and abs(found["roll"]) < 10 and abs(found["pitch"]) < 15  # near-frontal, upright
    text = CliRunner().invoke(app, ["detect", str(photo), "--backend", "3ddfa"]).output
    assert "3ddfa backend, yaw" in text and "no landmarks" in text and len(text.strip().splitlines()) == 1
    rgb = np.array(Image.open(photos / "obama2.jpg").convert("RGB"))  # turned: nose toward image left
    base = detect(from_uint8(rgb), "3ddfa")
    mirrored = detect(from_uint8(np.ascontiguousarray(rgb[:, ::-1])), "3ddfa")
    assert base.pose[0] < -8 and abs(base.pose[0] + mirrored.pose[0]) < 3.0
    shipped_tddfa_judge.cache_clear()
