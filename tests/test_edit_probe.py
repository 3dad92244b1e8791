"""The edit-readiness probe on tiny16: every measure computed and finite, rows written, the contact sheet,
the path length's definition on a hand-made case, and the perceptual distance's basic properties."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from genfields.editing import get_preset, make_dataset, train_editor
from genfields.editing.dataset import DatasetConfig
from genfields.errors import ConfigError
from genfields.evaluation.edit_probe import EditProbeConfig, path_length, run_probe
from genfields.perception import load_judges, load_perception
from genfields.perception.distance import stage_distance
from genfields.stylegan2 import load_generator

TINY = get_preset("tiny16")


@pytest.fixture(scope="module")
def tiny_editor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    nets = load_perception("synth")
    cfg = DatasetConfig(preset="tiny16", generator=TINY.generator, identities=12, attributes=6, chunk=8)
    make_dataset(cfg, load_generator(TINY.generator), nets, folder / "ds", progress=False)
    train = dataclasses.replace(TINY.train_config("paper", dataset=str(folder / "ds"), sample_every=0, log_every=2),
                                steps=1)
    train_editor(train, folder / "editor", progress=False)
    return folder / "editor" / "final"


def test_probe_on_tiny16_measures_every_generator_against_one_reference(tmp_path, tiny_editor):
    cfg = EditProbeConfig(samples=8, detector=4, ppl_pairs=6, edit_pairs=4, optimum_steps=2, editor=str(tiny_editor),
                          preset="tiny16", sheet=3)
    rows = run_probe({"a": TINY.generator, "b": "random:tiny16:2"}, cfg, tmp_path, progress=False)
    assert [r["generator"] for r in rows] == ["renders", "a", "b"]
    assert rows[0]["pose_floor_pairs"] >= 0 and rows[0]["pose_floor_labels"] >= 0
    for row in rows[1:]:
        for key in ("fd", "kid", "ppl", "edit_pose_3ddfa", "edit_fd", "unedited_fd", "edit_fd_ratio", "edit_kid",
                    "edit_identity_judge"):
            assert math.isfinite(row[key]), key
    assert rows[1]["fd"] != rows[2]["fd"]  # two generators, not one measured twice
    stored = [json.loads(line) for line in (tmp_path / "edit_probe.jsonl").read_text().splitlines()]
    assert [r["generator"] for r in stored] == ["renders", "a", "b"] and stored[1]["config"]["edit_pairs"] == 4
    assert (tmp_path / "edit_probe" / "a_edits.png").is_file()


def test_probe_refuses_sizes_that_cannot_be_measured():
    with pytest.raises(ConfigError, match="edit_pairs"):
        EditProbeConfig(edit_pairs=1)
    with pytest.raises(ConfigError, match="detector"):
        EditProbeConfig(samples=10, detector=20)


def test_stage_distance_is_zero_for_equal_images_and_grows_with_the_difference():
    judge = load_judges("synth").landmarks
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    noise = torch.randn_like(a)
    d = [stage_distance(judge, a, a + s * noise) for s in (0.0, 0.01, 0.1)]
    assert torch.equal(d[0], torch.zeros(2))
    assert (d[1] > 0).all() and (d[2] > d[1]).all()


class _LinearGenerator:
    """A 'generator' whose image is A w: with the squared L2 distance its path length is known exactly."""

    z_dim = 4

    def __init__(self):
        self.A = torch.randn(3 * 2 * 2, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def mapping(self, z):
        return z.double()[:, None, :].expand(-1, 2, -1)

    def styles(self, ws):
        return ws[:, 0]

    def synthesize(self, S, ws, noise_mode="const"):
        return (S @ self.A.T).reshape(len(S), 3, 2, 2)


def test_path_length_follows_stylegan2s_end_point_definition():
    G = _LinearGenerator()
    sq_l2 = lambda a, b: (a - b).square().flatten(1).sum(1)  # noqa: E731
    got = path_length(G, sq_l2, pairs=200, seed=3, eps=1e-4, batch=64)
    # by hand: the same z draws, d = |A (w1 - w0)|^2 (exact for a linear image), the 1st-99th percentile mean
    gen = torch.Generator().manual_seed(3)
    d = []
    for n in (64, 64, 64, 8):
        z = torch.randn(2 * n, 4, generator=gen).double()
        d.append(((z[n:] - z[:n]) @ G.A.T).square().sum(1))
    d = torch.cat(d).numpy()
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    # (the probe compares the two images in float32: eps-sized differences keep ~4 significant digits)
    assert got == pytest.approx(d[(d >= lo) & (d <= hi)].mean(), rel=1e-3)
    assert got < d.mean()  # the top percentile was dropped


def test_path_length_is_zero_for_a_generator_that_ignores_w():
    class Flat(_LinearGenerator):  # every w draws the same image
        def synthesize(self, S, ws, noise_mode="const"):
            return torch.zeros(len(S), 3, 16, 16)

    judge = load_judges("synth").landmarks
    assert path_length(Flat(), lambda a, b: stage_distance(judge, a, b), pairs=4, seed=0) == 0.0


def test_the_probe_command_on_tiny16_prints_the_table_and_the_goals(tmp_path, tiny_editor):
    from typer.testing import CliRunner

    from genfields.cli import app

    args = ["gan-quality", "--edit-probe", "--model", "random:tiny16:2", "--against", TINY.generator,
            "--probe-editor", str(tiny_editor), "--n", "6", "--edit-pairs", "3", "--optimum-steps", "1",
            "--outdir", str(tmp_path / "probe")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| renders |" in result.output and "goals of random:tiny16:2" in result.output
    assert "edits' FD <= 1.5x the unedited identities'" in result.output
    result = CliRunner().invoke(app, [*args, "--json"])
    out = json.loads(result.output.strip().splitlines()[-1])
    assert [r["generator"] for r in out["rows"]] == ["renders", TINY.generator, "random:tiny16:2"]
    assert len(out["goals"]["random:tiny16:2"]) == 8


def test_probe_goals_read_each_generator_against_the_baseline_of_its_run():
    from genfields.evaluation.edit_probe import probe_goals

    renders = {"generator": "renders", "detector_score": 0.9, "pose_floor_pairs": 4.0}
    base = {"generator": "old", "fd": 30.0, "kid": 0.03, "ppl": 100.0}
    new = {"generator": "new", "fd": 9.0, "kid": 0.02, "ppl": 60.0, "detector_score": 0.95, "edit_fd_ratio": 1.5,
           "edit_detector_ratio": None, "edit_pose_3ddfa": 8.5}
    goals = {text: (value, bound, met) for text, value, bound, met in probe_goals([renders, base, new], "old")["new"]}
    assert goals["FD to renders <= 1/3 of the baseline's"] == (9.0, 10.0, True)
    assert goals["PPL <= 1/2 of the baseline's"] == (60.0, 50.0, False)
    assert goals["KID to renders <= 1/3 of the baseline's"][2] is False
    assert goals["detector score on samples >= on renders"][2] is True
    assert goals["edits' FD <= 1.5x the unedited identities'"][2] is True  # the bound itself passes
    assert goals["edits' detector score >= 0.95x the unedited identities'"][2] is None  # no detector: n/a
    assert goals["per-pair optimum's 3DDFA_V2 pose error <= 2x 3DDFA_V2's floor (pairs of renders)"][2] is False
    with pytest.raises(ConfigError, match="baseline"):
        probe_goals([renders, new], "old")
