"""Photos are checked and aligned before they are used (issue 17): `edit` and `detect` find the face first."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genfields.cli import app

runner = CliRunner()
HAS_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("skimage") is not None


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (the [real] extra) gives the photo")
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.astronaut()).save(root / "astronaut.png")
    return root


def _edit(photo, out, *extra):
    result = runner.invoke(app, ["edit", "--attribute", str(photo), "--identity-seed", "7", "--out", str(out),
                                 "--json", *extra])
    return result


@pytest.mark.skipif(not HAS_DLIB, reason="dlib is not installed (the [real] extra)")
def test_raw_photo_is_aligned_and_edits_like_the_aligned_one(astronaut):
    aligned = astronaut / "aligned.png"
    assert runner.invoke(app, ["align", str(astronaut / "astronaut.png"), "--out", str(aligned)]).exit_code == 0
    raw = _edit(astronaut / "astronaut.png", astronaut / "raw_edit.png")
    pre = _edit(aligned, astronaut / "pre_edit.png")
    assert raw.exit_code == 0 and pre.exit_code == 0, (raw.output, pre.output)
    assert json.loads(raw.stdout)["attribute"].startswith("aligned FFHQ-style from the 512x512 photo")
    assert json.loads(pre.stdout)["attribute"] == "an aligned face crop, used as given"
    assert (astronaut / "raw_edit.png").read_bytes() == (astronaut / "pre_edit.png").read_bytes()
    # --no-align takes the whole photo as the attribute image: another (wrong) edit
    whole = _edit(astronaut / "astronaut.png", astronaut / "whole.png", "--no-align")
    assert whole.exit_code == 0 and (astronaut / "whole.png").read_bytes() != (astronaut / "raw_edit.png").read_bytes()
    # detect (synth networks) also sees the aligned face, not the whole photo
    found = [json.loads(runner.invoke(app, ["detect", str(p), "--json"]).stdout)
             for p in (astronaut / "astronaut.png", aligned)]
    assert [found[0][k] for k in ("yaw", "pitch", "roll")] == [found[1][k] for k in ("yaw", "pitch", "roll")]
    assert found[0]["image"].startswith("aligned FFHQ-style")


@pytest.mark.skipif(not HAS_DLIB, reason="dlib is not installed (the [real] extra)")
def test_a_photo_without_a_face_is_refused(tmp_path):
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    result = _edit(tmp_path / "wall.png", tmp_path / "out.png")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "wall.png: no face found in the image" in result.stderr and "--no-align" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wall.png"]


def test_without_dlib_a_photo_must_already_be_an_aligned_crop(astronaut, tmp_path, monkeypatch):
    import genfields.perception.real as real
    from genfields.synthface import render_batch
    from genfields.imageio import save_image

    monkeypatch.setattr(real, "dlib_available", lambda: False)
    result = _edit(astronaut / "astronaut.png", tmp_path / "out.png")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"run `genfields align {astronaut / 'astronaut.png'} --out aligned.png`" in result.stderr
    save_image(render_batch(1, res=64, seed=3).images, tmp_path / "render.png")  # synth64's own resolution
    result = _edit(tmp_path / "render.png", tmp_path / "out.png")
    assert result.exit_code == 0 and "size is the generator's" in json.loads(result.stdout)["attribute"]


@pytest.mark.skipif(not HAS_DLIB, reason="dlib is not installed (the [real] extra)")
def test_a_phone_photo_stored_sideways_with_its_exif_orientation_is_found_and_posed_as_shown(astronaut):
    """Issue 35: an EXIF-rotated phone photo gave "no face found" at 256 px and a silently wrong pose at 64 px."""
    upright = Image.open(astronaut / "astronaut.png").convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # the pixels as a phone held on its side stores them
    exif = sideways.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": the viewer shows the upright photo
    sideways.save(astronaut / "phone.jpg", exif=exif, quality=98)
    upright.save(astronaut / "upright.jpg", quality=98)
    for size in ("256", "64"):
        out = {name: astronaut / f"{name}_{size}.png" for name in ("phone", "upright")}
        for name, path in out.items():
            result = runner.invoke(app, ["align", str(astronaut / f"{name}.jpg"), "--out", str(path), "--size", size])
            assert result.exit_code == 0, result.output
        found = [json.loads(runner.invoke(app, ["detect", str(p), "--json"]).stdout) for p in out.values()]
        for angle in ("yaw", "pitch", "roll"):
            assert abs(found[0][angle] - found[1][angle]) < 2.0, (size, angle, found)
