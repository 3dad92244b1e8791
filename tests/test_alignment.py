"""FFHQ-style alignment: the crop square by hand, rotation invariance, and real photos re-detected after alignment."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from genfields.imageio import ImageError
from genfields.perception.alignment import align_face, align_photo, ffhq_quad, quad_to_crop


def schematic_face(eye: float = 30.0, mouth: float = 70.0) -> np.ndarray:
    """68 landmarks whose eyes are level at (+-eye, 0) and mouth corners at (+-20, mouth)."""
    lm = np.zeros((68, 2))
    lm[36:42] = [-eye, 0.0]
    lm[42:48] = [eye, 0.0]
    lm[48], lm[54] = [-20.0, mouth], [20.0, mouth]
    return lm


def test_quad_by_hand():
    # eyes at (+-30, 0), mouth centre (0, 70): x axis (2*30 + 70, 0) normalised, half-side max(4*30, 1.8*70) = 126
    quad = ffhq_quad(schematic_face())
    s, cy = 126.0, 7.0  # centre: eye midpoint + 0.1 * eye-to-mouth
    np.testing.assert_allclose(quad, [[-s, cy - s], [-s, cy + s], [s, cy + s], [s, cy - s]], atol=1e-9)


def test_alignment_undoes_rotation_scale_and_shift():
    lm = schematic_face() + np.random.default_rng(0).normal(0, 2, (68, 2))
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 1.7 * lm @ rot.T + [300.0, 200.0]
    crop = lambda points: (lambda M: points @ M[:, :2].T + M[:, 2])(quad_to_crop(ffhq_quad(points), 256))
    np.testing.assert_allclose(crop(moved), crop(lm), atol=1e-9)


def test_bad_input_is_refused():
    with pytest.raises(ImageError, match="68 landmarks"):
        ffhq_quad(np.zeros((5, 2)))
    with pytest.raises(ImageError, match="RGB uint8"):
        align_face(np.zeros((10, 10), np.uint8), schematic_face())


def test_warp_agrees_with_the_mapped_landmarks():
    """A drawn dot at a landmark lands where the mapped landmark says, also where padding is needed."""
    rgb = np.zeros((300, 260, 3), np.uint8)
    lm = schematic_face(20, 45) * [1, 1] + [130, 40]  # high in the photo: the square leaves it at the top
    x, y = np.round(lm[30] + [0, 20]).astype(int)
    lm[30] = [x + 0.5, y + 0.5]
    rgb[y - 2:y + 3, x - 2:x + 3] = 255
    out = align_face(rgb, lm, output_size=128)
    assert out.image.shape == (128, 128, 3)
    spot = np.argwhere(out.image[..., 0] > 128).mean(0)[::-1] + 0.5
    np.testing.assert_allclose(spot, out.landmarks[30], atol=1.0)


@pytest.fixture(scope="module")
def dlib_or_skip():
    pytest.importorskip("dlib", reason="dlib-bin (extra [real]) not installed")
    if importlib.util.find_spec("face_recognition_models") is None:  # its import needs pkg_resources: only locate it
        pytest.skip("face-recognition-models (extra [real]) not installed")


def _check_aligned(rgb: np.ndarray) -> None:
    """Align, then re-detect on the aligned crop: landmarks where mapped, eyes level and centred."""
    from genfields.perception.real import dlib_face

    out = align_photo(rgb, output_size=256)
    found, _ = dlib_face(out.image)
    assert np.abs(found - out.landmarks).mean() < 0.02 * 256
    eyes = found[36:42].mean(0), found[42:48].mean(0)
    dx, dy = eyes[1] - eyes[0]
    assert abs(np.degrees(np.arctan2(dy, dx))) < 4.0
    assert abs((eyes[0][0] + eyes[1][0]) / 2 - 128) < 0.04 * 256


def test_aligns_the_obama_and_biden_photos(dlib_or_skip, photos):
    for name in ("obama.jpg", "biden.jpg"):
        _check_aligned(np.asarray(Image.open(photos / name).convert("RGB")))


def test_aligns_the_astronaut_rotated(dlib_or_skip):
    data = pytest.importorskip("skimage.data", reason="scikit-image not installed")
    try:
        rgb = data.astronaut()
    except Exception as exc:  # a data file that is not bundled or cannot be fetched
        pytest.skip(f"skimage.data.astronaut() unavailable: {exc}")
    turned = np.asarray(Image.fromarray(rgb).rotate(-20, resample=Image.BICUBIC))
    _check_aligned(turned)


def test_align_command_on_a_folder_and_a_photo(dlib_or_skip, photos, tmp_path):
    from typer.testing import CliRunner

    from genfields.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        (folder / name).write_bytes((photos / name).read_bytes())
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(folder / "blank.png")  # no face
    (folder / "broken.jpg").write_bytes(b"not an image")
    result = CliRunner().invoke(app, ["align", str(folder), "--out", str(tmp_path / "out"), "--size", "128"])
    assert result.exit_code == 2  # the faces are written, the failures named
    assert "aligned 2 photo(s) to 128x128" in result.output
    assert "blank.png: no face found" in result.output and "broken.jpg: " in result.output
    for name in ("obama", "biden"):
        assert Image.open(tmp_path / "out" / f"{name}.png").size == (128, 128)
    single = CliRunner().invoke(app, ["align", str(photos / "obama.jpg"), "--out", str(tmp_path / "one.png")])
    assert single.exit_code == 0 and Image.open(tmp_path / "one.png").size == (256, 256)
    bad = CliRunner().invoke(app, ["align", str(folder / "blank.png"), "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "error: no face found" in bad.output
    missing = CliRunner().invoke(app, ["align", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "no such photo or folder" in missing.output
