"""Issue 35's inputs that are not a command line alone: pins.json of the wrong shape, a download that never
answers, EXIF-rotated photos, clashing align outputs, a nearly full disk, and the Python API's boundary."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from genfields.cli import app
from genfields.downloads import Asset, DownloadError, download, read_pins
from genfields.errors import ConfigError

runner = CliRunner()
GOOD_PIN = {"sha256": "0" * 64, "size": 1, "filename": "x", "origin": "o", "pinned_at": "t"}


# --- pins.json -----------------------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (b"[]", "corrupt pin file (a JSON list, expected an object of name -> pin)"),
    (json.dumps({"stylegan2-ffhq256": "abc"}).encode(), "corrupt pin of 'stylegan2-ffhq256' (a JSON str"),
    (json.dumps({"stylegan2-ffhq256": {**GOOD_PIN, "sha256": 5}}).encode(), "sha256 is not 64 lower-case hex"),
    (json.dumps({"stylegan2-ffhq256": {**GOOD_PIN, "size": "1"}}).encode(), "size is not a byte count"),
    (b"\xff\xfe{}", "unreadable pin file ('utf-8' codec can't decode"),
])
def test_a_pin_file_of_the_wrong_shape_is_corrupt_and_named(tmp_path, monkeypatch, content, message):
    (tmp_path / "pins.json").write_bytes(content)
    with pytest.raises(DownloadError, match="repair or delete it") as caught:
        read_pins(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'pins.json'}: ") and message in str(caught.value)
    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path))
    result = runner.invoke(app, ["download", "--list", "--no-verify"])
    assert result.exit_code == 2 and message in result.stderr  # never "not pinned yet"
    assert read_pins(tmp_path / "none") == {} and read_pins_good(tmp_path) == {"a": GOOD_PIN}


def read_pins_good(tmp_path: Path) -> dict:
    (tmp_path / "pins.json").write_text(json.dumps({"a": GOOD_PIN}))
    return read_pins(tmp_path)


def test_genfields_home_that_is_a_file_is_named(tmp_path):
    (tmp_path / "home").write_text("")
    asset = Asset(name="t", filename="t.bin", url="http://127.0.0.1:9/t.bin")
    with pytest.raises(DownloadError, match=f"GENFIELDS_HOME. {tmp_path / 'home'}: exists and is not a folder"):
        download(asset, root=tmp_path / "home", progress=False)


# --- downloads -----------------------------------------------------------------------------------
@pytest.fixture
def silent_server():
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_a_download_that_never_answers_times_out_and_says_where_it_connects(silent_server, tmp_path, capsys):
    asset = Asset(name="t", filename="t.bin", url=f"{silent_server}/t.bin")
    start = time.monotonic()
    with pytest.raises(DownloadError, match="cannot reach"):
        download(asset, root=tmp_path, timeout=1.0)
    assert time.monotonic() - start < 20
    assert "t: connecting to 127.0.0.1" in capsys.readouterr().err


# --- photos --------------------------------------------------------------------------------------
def test_exif_orientation_is_applied_on_load(tmp_path):
    from genfields.imageio import load_image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of a landscape image
    photo = Image.fromarray(pixels)
    exif = photo.getexif()
    exif[0x0112] = 6  # taken with the phone turned: view it rotated 90 degrees clockwise
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    image = load_image(tmp_path / "phone.jpg")
    assert list(image.shape) == [1, 3, 40, 20]  # upright: portrait
    assert image[0, 0, :10].mean() > 0.9 and image[0, 0, -10:].mean() < -0.9  # the band is now on top


def test_align_gives_clashing_photos_their_own_names(tmp_path):
    from genfields.perception.alignment import aligned_names

    photos = [tmp_path / "face256.png", tmp_path / "face256.webp", tmp_path / "other.jpg"]
    assert aligned_names(photos) == {photos[0]: "face256_png.png", photos[1]: "face256_webp.png",
                                     photos[2]: "other.png"}
    with pytest.raises(Exception, match="several photos would be aligned to a_png.png"):
        aligned_names([tmp_path / "a.png", tmp_path / "A.png", tmp_path / "a_png.jpg"])


# --- disks ---------------------------------------------------------------------------------------
def test_generate_checks_the_free_space_first(tmp_path, monkeypatch):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=100_000))
    result = runner.invoke(app, ["generate", "--model", "random:tiny16", "--seeds", "0-9999",
                                 "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--seeds 0-9999 (10000 images) needs up to" in result.stderr
    assert "MB free" in result.stderr and not (tmp_path / "out").exists()


def test_make_dataset_checks_the_memory_its_records_need(tmp_path, monkeypatch):
    import genfields.errors

    monkeypatch.setattr(genfields.errors, "physical_memory", lambda: 100_000)  # a 100 kB machine
    result = runner.invoke(app, ["make-dataset", "--preset", "tiny16", "--outdir", str(tmp_path / "ds"),
                                 "--identities", "300", "--attributes", "100"])
    assert result.exit_code == 2, result.output
    assert "--identities 300 and --attributes 100 (400 records) would hold 0.9 MB in memory, more than this " \
           "machine's 0.1 MB" in result.stderr
    assert not (tmp_path / "ds").exists()


def test_an_existing_output_folder_is_named_not_its_probe(tmp_path, monkeypatch):
    import tempfile

    from genfields.errors import check_output_folder

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # a read-only folder, also when the tests run as root
    with pytest.raises(ConfigError) as caught:
        check_output_folder(tmp_path)
    assert str(caught.value) == f"--outdir {tmp_path}: cannot be written (Permission denied)"


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None or importlib.util.find_spec("skimage") is None,
                    reason="dlib or scikit-image is not installed (the [real] extra)")
def test_align_a_folder_with_clashing_names_writes_both(tmp_path):
    from skimage import data as skimage_data

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage_data.astronaut()).save(photos / "face256.png")
    Image.fromarray(skimage_data.astronaut()[:, ::-1]).save(photos / "face256.webp", lossless=True)
    result = runner.invoke(app, ["align", str(photos), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0 and "aligned 2 photo(s)" in result.stdout, result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["face256_png.png", "face256_webp.png"]
    assert (out / "face256_png.png").read_bytes() != (out / "face256_webp.png").read_bytes()


# --- the Python API ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def G():
    from genfields.stylegan2 import Generator

    return Generator.from_arch("tiny16")


def test_mapping_refuses_a_non_finite_truncation(G):
    z = torch.randn(2, G.z_dim)
    for psi in (math.nan, math.inf):
        with pytest.raises(ConfigError, match="truncation_psi must be a finite number"):
            G.mapping(z, truncation_psi=psi)
    with pytest.raises(ConfigError, match=r"z must have shape \[B, 32\] with B >= 1, got \[0, 32\]"):
        G.mapping(torch.zeros(0, G.z_dim))
    with pytest.raises(ConfigError, match="truncation_cutoff must be in"):
        G.mapping(z, truncation_psi=0.5, truncation_cutoff=99)


def test_synthesize_names_mismatched_batches_and_shapes(G):
    w = G.mapping(torch.randn(2, G.z_dim))
    S = G.styles(w)
    with pytest.raises(ConfigError, match="S and w must hold the same batch: S has 2, w has \\[3\\]"):
        G.synthesize(S, w[:1].repeat(3, 1, 1))
    with pytest.raises(ConfigError, match=f"S must be \\[B, {G.layout.dim}\\] with B >= 1, got \\[0, "):
        G.synthesize(S[:0], w[:0])
    with pytest.raises(ConfigError, match=f"S must be \\[B, {G.layout.dim}\\]"):
        G.synthesize(S[:, :-1], w)
    with pytest.raises(ConfigError, match="w must be .* with B >= 1, got \\[0, "):
        G.styles(w[:0])


def test_editor_edit_checks_its_inputs():
    from genfields.editing.editor import load_editor

    editor = load_editor("synth64")
    z = torch.randn(1, editor.G.z_dim)
    image = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ConfigError, match="z contains NaN"):
        editor.edit(torch.full_like(z, math.nan), image)
    with pytest.raises(ConfigError, match="z must be \\[B, 512\\] with B >= 1, got \\[0, 512\\]"):
        editor.edit(z[:0], image)
    with pytest.raises(ConfigError, match="attribute_images must be \\[B, 3, H, W\\]"):
        editor.edit(z, image[0])
    with pytest.raises(ConfigError, match="attribute_images contain NaN"):
        editor.edit(z, torch.full_like(image, math.nan))
