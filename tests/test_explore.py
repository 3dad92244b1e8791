"""`genfields explore`: the computations behind the page on the shipped synth64 generator and editor
(the page itself: tests/test_explore_page.py; the HTTP API's refusals: tests/test_explore_api.py)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from genfields.editing import shipped_editors
from genfields.stylegan2 import shipped_models

pytestmark = pytest.mark.skipif("synth64" not in shipped_models() or "synth64" not in shipped_editors(),
                                reason="needs the shipped synth64 generator and editor")


@pytest.fixture(scope="module")
def explorer():
    from genfields.explore import Explorer

    return Explorer.load("synth64")


def decode(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the library, without a browser ------------------------------------------------------------------
def test_render_follows_seed_channels_and_noise(explorer):
    from genfields.explore import call
    from genfields.stylegan2 import seed_to_z

    a = call(explorer, "render", {"view": {"seed": 3}})
    assert "error" not in a and a["resolution"] == 64 and len(a["landmarks"]) == 68 and a["face_size"] > 0
    with torch.no_grad():  # the page's image is NVIDIA's seed-to-z through the generator, const noise
        direct = explorer.G(seed_to_z(3, explorer.G.z_dim), noise_mode="const")
    expected = (direct * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(decode(a["image"]), expected)
    assert not np.array_equal(decode(call(explorer, "render", {"view": {"seed": 4}})["image"]), decode(a["image"]))
    moved = call(explorer, "render", {"view": {"seed": 3, "channels": [{"name": "conv2:5", "value": 4}]}})
    assert moved["channels"][0]["stylespace"] == "3_5" and moved["channels"][0]["value"] == 4
    assert not np.array_equal(decode(moved["image"]), decode(a["image"]))
    r1 = call(explorer, "render", {"view": {"seed": 3, "noise": "random"}})
    r2 = call(explorer, "render", {"view": {"seed": 3, "noise": "random"}})
    assert r1["image"] == r2["image"] != a["image"]  # random noise is seeded by the seed: a view is reproducible


def test_bad_requests_are_one_line_errors(explorer):
    from genfields.explore import call

    for endpoint, payload, words in [
        ("channel", {"name": "bogus"}, "cannot read style index"),
        ("render", {"view": {"seed": 1, "channels": [{"name": "conv99:1", "value": 1}]}}, "no layer"),
        ("render", {"view": {"seed": -1}}, "seed"),
        ("render", {"view": {"noise": "loud"}}, "noise"),
        ("fields", {"x": 64, "y": 0}, "x must be an integer in 0..63"),
        ("probe", {"x": 1, "y": 1, "layer": "conv42"}, "no layer"),
        ("edit", {"attribute": "gallery:999"}, "unknown attribute"),
        ("nothing", {}, "unknown request"),
    ]:
        out = call(explorer, endpoint, payload)
        assert words in out["error"] and "\n" not in out["error"], (endpoint, out)


def test_probe_changes_exactly_the_exact_field(explorer):
    """The probe perturbs one unit of the real network: the pixels that change are the exact field (clipped)."""
    from genfields.explore import call

    for layer, (x, y) in [("conv1", (5, 60)), ("conv3", (23, 26)), ("conv4", (30, 20)), ("conv6", (5, 60)),
                          ("conv8", (63, 0))]:
        out = call(explorer, "probe", {"view": {"seed": 2}, "x": x, "y": y, "layer": layer, "amount": 1.0})
        clipped = [max(0, out["exact"][0]), max(0, out["exact"][1]), min(64, out["exact"][2]), min(64, out["exact"][3])]
        assert out["changed_box"] == clipped, (layer, out["changed_box"], out["exact"])
        field = call(explorer, "fields", {"x": x, "y": y})["layers"][int(layer[4:])]
        assert field["exact"] == out["exact"] and field["unit"] == out["unit"]
        assert 1 <= out["energy_side"] <= max(out["exact"][2] - out["exact"][0], out["exact"][3] - out["exact"][1])
    off = call(explorer, "probe", {"view": {"seed": 2}, "x": 30, "y": 20, "layer": "conv4", "amount": 0.0})
    assert off["changed_box"] is None and off["peak"] == 0  # scaling by 1 changes nothing


def test_channel_ranking_predicts_the_slider(explorer):
    """The top channel at a pixel, moved by one std, moves that pixel about as much as its first-order effect."""
    from genfields.explore import call

    view = {"seed": 5}
    ranked = call(explorer, "rank", {"view": view, "x": 32, "y": 28, "top": 5})["channels"]
    assert [r["effect"] for r in ranked] == sorted((r["effect"] for r in ranked), reverse=True)
    base = decode(call(explorer, "render", {"view": view})["image"]).astype(float)
    top = ranked[0]
    moved = decode(call(explorer, "render", {"view": {**view, "channels": [{"name": top["paper"], "value": 0.1}]}})
                   ["image"]).astype(float)
    change = np.linalg.norm(moved[28, 32] - base[28, 32]) / 0.1
    assert 0.5 * top["effect"] < change < 2.0 * top["effect"], (change, top)


@pytest.mark.parametrize("x, y", [(32, 28), (0, 0), (63, 5), (63, 63), (10, 62)])
def test_windowed_pixel_equals_the_full_image(explorer, x, y):
    """The ranking's pixel, computed over its window of units, and its gradient equal the full synthesis's."""
    from genfields.explore.window import pixel_window, synthesize_pixel

    G = explorer.G
    window = pixel_window(G, x, y)
    assert window is not None and (window.x1 - window.x0) * 2 <= 32  # synth64's 64x64 block runs on a window
    w = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(x + 100 * y)))
    for noise in ("const", "none"):
        S = G.styles(w).detach().requires_grad_(True)
        full = G.synthesize(S, w, noise_mode=noise)[0, :, y, x]
        (full_grad,) = torch.autograd.grad(full.sum(), S)
        S = S.detach().requires_grad_(True)
        part = synthesize_pixel(G, S, w, noise, x, y)
        (part_grad,) = torch.autograd.grad(part.sum(), S)
        assert torch.allclose(part, full, atol=1e-5), noise
        assert torch.allclose(part_grad, full_grad, atol=1e-5 * float(full_grad.abs().max())), noise


def test_small_generators_rank_without_a_window():
    from genfields.explore import Explorer, call
    from genfields.explore.window import pixel_window

    explorer = Explorer.load("random:tiny16", "none")
    assert pixel_window(explorer.G, 8, 8) is None  # no block where a window would pay
    assert len(call(explorer, "rank", {"x": 8, "y": 8, "top": 3})["channels"]) == 3


def test_edit_masks_apply_at_inference(explorer):
    from genfields.explore import call

    view = {"seed": 7}
    full = call(explorer, "edit", {"view": view, "attribute": "gallery:1"})
    assert full["layers"] == [lay.name for lay in explorer.layout] and full["delta_norm"] > 0
    assert set(full["metrics"]) == {"method", "unedited"} and full["metrics"]["unedited"]["identity"] == pytest.approx(1)
    none = call(explorer, "edit", {"view": view, "attribute": "gallery:1", "convs": []})
    assert none["layers"] == [] and none["output"]["image"] == none["identity"]["image"]
    some = call(explorer, "edit", {"view": view, "attribute": "gallery:1", "convs": ["conv0", "conv1", "conv2"]})
    assert some["layers"] == ["conv0", "conv1", "conv2"] and {r["layer"] for r in some["top"]} <= set(some["layers"])
    assert some["output"]["image"] not in (full["output"]["image"], full["identity"]["image"])
    small = call(explorer, "edit", {"view": view, "attribute": "gallery:1", "gf": [3, 19]})
    assert small["layers"] == [lay.name for lay in explorer.layout if 3 <= lay.gf <= 19]
    assert explorer.table3 and all(r["convs"] for r in explorer.table3)


def test_uploads(explorer):
    from genfields.explore import upload

    assert "not a readable image" in upload(explorer, b"this is not an image", align=False)["error"]
    render = explorer._attributes["gallery:0"].image
    square = png_bytes(((render[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy())
    ok = upload(explorer, square, align=False)
    assert "error" not in ok and ok["id"].startswith("upload:")
    assert "not square" in upload(explorer, png_bytes(np.zeros((40, 60, 3), np.uint8)), align=False)["error"]
    if not __import__("genfields.explore.session", fromlist=["_dlib_available"])._dlib_available():
        pytest.skip("dlib (extra [real]) not installed: the no-face upload is not checked")
    blank = upload(explorer, png_bytes(np.full((200, 200, 3), 128, np.uint8)), align=True)
    assert "no face found" in blank["error"]


def test_style_mixing_takes_a_resolution_group_from_the_second_seed(explorer):
    from genfields.explore import call

    base = decode(call(explorer, "render", {"view": {"seed": 3}})["image"]).astype(float)
    other = decode(call(explorer, "render", {"view": {"seed": 8}})["image"]).astype(float)
    same = call(explorer, "render", {"view": {"seed": 3, "mix": {"seed": 3, "styles": "coarse"}}})
    assert np.array_equal(decode(same["image"]), base)  # mixing with the seed itself changes nothing
    change = {}
    for group in ("coarse", "middle", "fine"):
        mixed = decode(call(explorer, "render", {"view": {"seed": 3, "mix": {"seed": 8, "styles": group}}})["image"])
        change[group] = np.abs(mixed.astype(float) - base).mean()
        assert change[group] > 0, group
    assert change["coarse"] > change["fine"]  # coarse styles set the face's layout; fine ones colour and texture
    everything = {"coarse", "middle", "fine"}
    assert sorted(i for g in everything for i in explorer.mix_indices(g)) == list(range(explorer.G.num_ws))
    assert np.abs(other - base).mean() > change["fine"]


def test_feature_maps_are_the_layer_input_ranked_at_the_unit(explorer):
    from genfields.explore import call

    out = call(explorer, "features", {"view": {"seed": 2}, "x": 40, "y": 24, "layer": "conv4", "top": 6})
    assert out["layer"] == "conv4" and out["unit"] == [40 * 16 // 64, 24 * 16 // 64] and len(out["maps"]) == 6
    values = [abs(m["value"]) for m in out["maps"]]
    assert values == sorted(values, reverse=True) and values[0] <= out["maps"][0]["peak"]
    assert all(m["layer"] == "conv4" and m["conv"].startswith("conv4:") for m in out["maps"])
    assert decode(out["maps"][0]["image"]).shape == (16, 16, 3)
    # the map the page shows is the input the layer's styles scale: moving that style channel leaves it alone
    moved = call(explorer, "features", {"view": {"seed": 2, "channels": [{"name": out["maps"][0]["conv"], "value": 3}]},
                                        "x": 40, "y": 24, "layer": "conv4", "top": 6})
    assert moved["maps"][0]["value"] == pytest.approx(out["maps"][0]["value"])


def test_region_search_finds_channels_that_change_the_box(explorer):
    """The top channel of a box, moved by a slider, changes the image mostly near the box: its share of the
    change's energy inside the box is several times the box's share of the image, and near the estimate."""
    from genfields.explore import call

    view, box = {"seed": 5}, [18, 20, 30, 30]  # the left eye
    out = call(explorer, "region", {"view": view, "box": box, "top": 5})
    assert out["channels"] and out["eligible"] >= len(out["channels"])
    shares = [r["share"] for r in out["channels"]]
    assert shares == sorted(shares, reverse=True) and all(0 <= s <= 1 for s in shares)
    assert all(r["gf"] > 0 and r["inside_rms"] > 0 for r in out["channels"])
    base = decode(call(explorer, "render", {"view": view})["image"]).astype(float)
    top = out["channels"][0]
    moved = decode(call(explorer, "render", {"view": {**view, "channels": [{"name": top["paper"], "value": 1.0}]}})
                   ["image"]).astype(float)
    energy = ((moved - base) ** 2).sum(axis=2)
    found = energy[box[1]:box[3], box[0]:box[2]].sum() / energy.sum()
    area = (box[2] - box[0]) * (box[3] - box[1]) / 64**2
    assert found > 4 * area, (found, area, top)
    assert found == pytest.approx(top["share"], abs=0.2)  # a first-order estimate from 16 random probes


def test_capture_is_a_png_with_the_view_in_its_metadata(explorer):
    from genfields.explore import call

    view = {"seed": 4, "truncation": 0.7, "channels": [{"name": "dS_448", "value": -2.5}],
            "mix": {"seed": 9, "styles": "fine"}}
    out = call(explorer, "capture", {"view": view, "link": "http://127.0.0.1:7860/#seed=4"})
    with Image.open(io.BytesIO(base64.b64decode(out["image"].split(",", 1)[1]))) as png:
        settings = json.loads(png.text["genfields:view"])
        assert png.text["genfields:link"] == "http://127.0.0.1:7860/#seed=4" and png.size == (64, 64)
        pixels = np.asarray(png.convert("RGB"))
    assert settings == {"model": "synth64", "seed": 4, "truncation": 0.7, "noise": "const",
                        "mix": {"seed": 9, "styles": "fine"},
                        "channels": [{"name": explorer.layout.format_index(447, "stylespace"), "paper": "dS_448",
                                      "value": -2.5}]}
    assert out["filename"] == "synth64-seed4.png"
    assert np.array_equal(pixels, decode(call(explorer, "render", {"view": view})["image"]))


def test_catalogue_switches_models(explorer):
    from genfields.explore import call
    from genfields.explore.catalogue import Catalogue

    catalogue = Catalogue(explorer, shipped=["random:tiny16"])
    assert call(catalogue, "info", {})["models"] == ["synth64", "random:tiny16"]
    assert call(catalogue, "render", {"view": {"seed": 1}})["resolution"] == 64
    small = call(catalogue, "render", {"model": "random:tiny16", "view": {"seed": 1}})
    assert small["resolution"] == 16 and "landmarks" not in small
    assert call(catalogue, "info", {"model": "random:tiny16"})["editor"] is None
    assert call(catalogue, "render", {"model": "stylegan-xl"})["field"] == "model"


def test_missing_extra_is_one_line(monkeypatch):
    from genfields.errors import GenfieldsError
    from genfields.explore.server import require_web

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import fails as if not installed
    with pytest.raises(GenfieldsError, match=r"pip install 'genfields\[explore\]'"):
        require_web()


def test_cli_rejects_a_bad_port():
    out = subprocess.run([sys.executable, "-m", "genfields", "explore", "--port", "70000"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: --port") and "Traceback" not in out.stderr
