"""Judges: disjoint training data, refused by every training path, scoring in `evaluate` beside the loss
networks; the pose-leak regression on hand-made numbers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from genfields.editing.evaluate import judge_metrics, landmark_disagreement, pose_leak
from genfields.editing.presets import PRESETS as EDITING_PRESETS
from genfields.errors import ConfigError
from genfields.perception import judges, load_network, load_perception
from genfields.perception.data import ViewSetSpec
from genfields.perception.judges import (JUDGE_ARCH, JUDGE_TRAIN_SEEDS, JUDGES, RESERVED_STREAMS, Judges,
                                         check_disjoint, view_streams)
from genfields.perception.shipped import FD_SCALE_SEED, PERCEPTION_DIR, network_folder
from genfields.perception.train import PerceptionTrainConfig
from genfields.synthface import sample_params

LOSS_NETS = ("synth_identity", "synth_landmarks", "synth_attributes")
SHIPPED = all((PERCEPTION_DIR / name / "model.safetensors").is_file() for name in JUDGES.values())
needs_judges = pytest.mark.skipif(not SHIPPED, reason="the judges are not shipped in genfields/models/perception")


def _reserved(stream: int) -> bool:
    return any(stream in r for r in RESERVED_STREAMS)


# --- disjoint data ----------------------------------------------------------------------------------------
def test_reserved_streams_cover_every_other_render_set():
    for name in LOSS_NETS:
        train = json.loads((network_folder(name) / "config.json").read_text())["train"]
        for seed in (train["seed"], train["heldout_seed"]):
            assert all(_reserved(s) for s in view_streams(ViewSetSpec(1, 1, seed)))
    defaults = PerceptionTrainConfig()
    assert all(_reserved(s) for s in view_streams(defaults.heldout_spec()) | view_streams(defaults.train_spec()))
    assert _reserved(FD_SCALE_SEED) and _reserved(0)  # the GAN's synth-data seed
    assert _reserved(1) and _reserved(2)  # gan-quality's reference renders (render_reference's default seed 1, 2)
    for preset in EDITING_PRESETS.values():
        assert _reserved(preset.eval_render_seed) and _reserved(preset.fd_render_seed)
        assert _reserved(preset.eval_render_seed + 17) and _reserved(preset.fd_render_seed + 17)  # evaluate --seed 17


def test_judge_training_seeds_are_disjoint_from_everything_else_and_each_other():
    streams = [view_streams(ViewSetSpec(5000, 5, seed)) for seed in JUDGE_TRAIN_SEEDS.values()]
    assert not streams[0] & streams[1]
    for seed in JUDGE_TRAIN_SEEDS.values():
        check_disjoint(ViewSetSpec(5000, 5, seed))
    people = sample_params(50, seed=JUDGE_TRAIN_SEEDS["judge_identity"]).identity
    loss_net_people = sample_params(50, seed=0).identity
    assert not (people[:, None] == loss_net_people[None]).all(-1).any()


@pytest.mark.parametrize("seed", [0, 10_000, 20_000, 30_017, 9090, 10_000 - 7919])
def test_a_judge_seed_that_meets_another_set_is_refused(seed):
    with pytest.raises(ConfigError, match="used by other sets"):
        check_disjoint(ViewSetSpec(5000, 5, seed))


# --- refused by training paths ---------------------------------------------------------------------------
@pytest.fixture
def fake_judge(tmp_path):
    """A copy of the shipped identity network marked as a judge."""
    folder = tmp_path / "fake_judge"
    shutil.copytree(network_folder("synth_identity"), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "role": "judge"}))
    return folder


def test_load_network_refuses_a_judge_unless_asked_for_one(fake_judge):
    with pytest.raises(ConfigError, match="is a judge.*never loss networks or inputs"):
        load_network(fake_judge)
    judge = load_network(fake_judge, role="judge")
    assert judges.is_judge(judge)
    with pytest.raises(ConfigError, match="not a judge"):
        load_network("synth_identity", role="judge")
    assert not judges.is_judge(load_network("synth_identity"))


def test_editor_training_and_make_dataset_refuse_judges(tmp_path, fake_judge):
    from genfields.editing.dataset import DatasetConfig, make_dataset
    from genfields.editing.editor import new_editor
    from genfields.editing.config import ModelConfig
    from genfields.editing.regularizer import StyleStatistics
    from genfields.stylegan2 import load_generator

    G = load_generator("random:tiny16:1")
    nets = load_perception("synth")
    nets.identity = load_network(fake_judge, role="judge")
    stats = StyleStatistics(torch.zeros(G.layout.dim), torch.ones(G.layout.dim), torch.zeros(G.config.w_dim),
                            torch.ones(G.config.w_dim))
    with pytest.raises(ConfigError, match="judge"):
        new_editor(G, nets, ModelConfig(hidden=(8,)), stats)
    with pytest.raises(ConfigError, match="judge"):
        make_dataset(DatasetConfig(preset="tiny16", identities=2, attributes=2), G, nets, tmp_path / "ds",
                     progress=False)


@needs_judges
def test_shipped_judges_are_refused_as_loss_networks(monkeypatch):
    from genfields.perception import shipped

    for name in JUDGES.values():
        with pytest.raises(ConfigError, match="is a judge"):
            load_network(name)
    monkeypatch.setitem(shipped.PRESETS, "synth", {**shipped.PRESETS["synth"], "identity": JUDGES["identity"]})
    with pytest.raises(ConfigError, match="is a judge"):
        load_perception("synth")  # the editor trainer, make-dataset and load_editor all load through here
    with pytest.raises(ConfigError, match="is a judge"):
        shipped.write_fd_scale(JUDGES["landmarks"], n=2)


@needs_judges
def test_shipped_judges_differ_from_the_loss_networks_and_meet_the_accuracy_bar():
    for kind, name in JUDGES.items():
        config = json.loads((network_folder(name) / "config.json").read_text())
        loss_net = json.loads((network_folder(f"synth_{kind}") / "config.json").read_text())
        assert config["role"] == "judge"
        assert config["train"]["seed"] == JUDGE_TRAIN_SEEDS[name] != loss_net["train"]["seed"]
        assert {k: config["network"][k] for k in JUDGE_ARCH} == JUDGE_ARCH
        assert (config["network"]["width"], config["network"].get("depth", 2)) != (loss_net["network"]["width"],
                                                                                   loss_net["network"].get("depth", 2))
        clean = config["results"]["clean"]
        if kind == "identity":
            assert clean["eer"] < 0.05 and clean["roc_auc"] > 0.99
        else:
            assert clean["nme"] < 0.03 and max(clean[f"{a}_mae"] for a in ("yaw", "pitch", "roll")) < 2.5
        assert "**Judge**" in (network_folder(name) / "MODEL_CARD.md").read_text()


# --- scoring --------------------------------------------------------------------------------------------
def test_judge_metrics_score_outputs_against_identity_and_attribute_images():
    from genfields.editing.editor import EditResult
    from genfields.synthface import render_batch

    nets = load_perception("synth")
    referees = Judges(identity=nets.identity, landmarks=nets.landmarks, names={"identity": "x", "landmarks": "y"})
    a, b = render_batch(4, res=64, seed=20_000).images, render_batch(4, res=64, seed=20_001).images
    found = nets.landmarks(a)
    result = EditResult(identity_image=a, attribute_image=b, image=a, delta=torch.zeros(4, 1), identity=nets.identity(a),
                        output_identity=nets.identity(a), attribute=found, identity_pose=found, output=found)
    metrics, angles = judge_metrics(referees, result)
    assert torch.allclose(metrics["method"]["identity"], torch.ones(4), atol=1e-5)  # the output is the identity
    assert torch.equal(metrics["method"]["pose"], metrics["unedited"]["pose"])
    assert torch.equal(angles["output"], angles["identity"])


def test_landmark_disagreement_by_hand():
    judge = torch.zeros(2, 68, 2)
    loss_net = judge.clone()
    loss_net[0] += torch.tensor([3.0, 4.0])  # every point 5 px away
    loss_net[1, :34, 1] = 2.0  # half the points 2 px away: mean 1 px
    assert landmark_disagreement(judge, loss_net, 16).tolist() == pytest.approx([5 / 16, 1 / 16])
    assert landmark_disagreement(loss_net, judge, 16).tolist() == pytest.approx([5 / 16, 1 / 16])  # symmetric


def test_tearing_is_the_loss_net_fooled_where_the_judge_is_not():
    """An output whose loss-net landmarks are the attribute image's while the judge still sees the identity
    face (a torn face that fools the loss network) disagrees; the unedited image does not."""
    from genfields.editing.editor import EditResult
    from genfields.synthface import render_batch

    nets = load_perception("synth")
    referees = Judges(identity=nets.identity, landmarks=nets.landmarks, names={"identity": "x", "landmarks": "y"})
    a, b = render_batch(4, res=64, seed=20_000).images, render_batch(4, res=64, seed=20_001).images
    seen_a, seen_b = nets.landmarks(a), nets.landmarks(b)
    result = EditResult(identity_image=a, attribute_image=b, image=a, delta=torch.zeros(4, 1),
                        identity=nets.identity(a), output_identity=nets.identity(a), attribute=seen_b,
                        identity_pose=seen_a, output=seen_b)
    metrics, seen = judge_metrics(referees, result)
    expected = (seen_a.landmarks - seen_b.landmarks).norm(dim=-1).mean(dim=1) / 64
    assert torch.allclose(metrics["method"]["landmark_disagreement"], expected)
    assert expected.min() > 0.01  # different faces: a visible gap
    assert torch.allclose(metrics["unedited"]["landmark_disagreement"], torch.zeros(4), atol=1e-6)
    assert torch.allclose(seen["attribute_disagreement"], torch.zeros(4), atol=1e-6)


def test_pose_leak_recovers_hand_made_coefficients():
    rng = np.random.default_rng(0)
    attr, ident = rng.normal(0, 15, (200, 3)), rng.normal(0, 15, (200, 3))
    b_attr, b_id, c = np.array([0.6, 0.5, 1.0]), np.array([0.4, 0.45, 0.0]), np.array([1.0, -2.0, 0.5])
    out = c + attr * b_attr + ident * b_id
    fit = pose_leak(attr, ident, out)
    for k, angle in enumerate(("yaw", "pitch", "roll")):
        assert fit[angle]["b_attr"] == pytest.approx(b_attr[k], abs=1e-9)
        assert fit[angle]["b_id"] == pytest.approx(b_id[k], abs=1e-9)
        assert fit[angle]["intercept"] == pytest.approx(c[k], abs=1e-9)
        assert fit[angle]["r2"] == pytest.approx(1.0)
    noisy = pose_leak(attr, ident, attr + rng.normal(0, 1, attr.shape))  # a perfect transfer plus noise
    assert all(abs(noisy[a]["b_id"]) < 0.05 and abs(noisy[a]["b_attr"] - 1) < 0.05 for a in noisy)


def test_pose_leak_by_hand_on_four_pairs():
    # out = attr exactly for yaw; out = id for pitch; out = (attr + id) / 2 + 3 for roll
    attr = np.array([[0.0, 1, 2], [10, -3, 4], [-5, 2, 0], [7, 7, -7]])
    ident = np.array([[3.0, 0, 1], [-2, 5, 2], [4, -1, 6], [1, 2, 3]])
    out = np.stack([attr[:, 0], ident[:, 1], (attr[:, 2] + ident[:, 2]) / 2 + 3], axis=1)
    fit = pose_leak(attr, ident, out)
    assert (fit["yaw"]["b_attr"], fit["yaw"]["b_id"]) == pytest.approx((1.0, 0.0), abs=1e-9)
    assert (fit["pitch"]["b_attr"], fit["pitch"]["b_id"]) == pytest.approx((0.0, 1.0), abs=1e-9)
    assert (fit["roll"]["b_attr"], fit["roll"]["b_id"], fit["roll"]["intercept"]) == pytest.approx((0.5, 0.5, 3.0))
    with pytest.raises(ValueError, match="4 pairs"):
        pose_leak(attr[:3], ident[:3], out[:3])


@needs_judges
def test_evaluate_reports_judges_loss_nets_and_the_pose_leak(tmp_path):
    from genfields.editing import get_preset, load_editor, make_dataset, train_editor
    from genfields.editing.dataset import DatasetConfig
    from genfields.editing.evaluate import evaluate_editor
    from genfields.perception.judges import load_judges
    from genfields.stylegan2 import load_generator

    tiny = get_preset("tiny16")
    make_dataset(DatasetConfig(preset="tiny16", generator=tiny.generator, identities=8, attributes=4, chunk=8),
                 load_generator(tiny.generator), load_perception("synth"), tmp_path / "ds", progress=False)
    train_editor(tiny.train_config("paper", dataset=str(tmp_path / "ds"), steps=1, sample_every=0), tmp_path / "run",
                 progress=False)
    results = evaluate_editor(load_editor(tmp_path / "run" / "final"), tiny, pairs=6, seed=0, batch=3,
                              judges=load_judges("synth"))
    keys = {"identity", "expression", "pose", "identity_loss_net", "expression_loss_net", "pose_loss_net", "fd",
            "kid", "landmark_disagreement"}
    assert set(results["method"]) == keys | {"tearing"} and set(results["unedited"]) == keys
    assert results["method"]["tearing"] == pytest.approx(results["method"]["landmark_disagreement"]
                                                         - results["unedited"]["landmark_disagreement"])
    assert results["unedited"]["landmark_disagreement"] > 0  # two networks trained apart never agree exactly
    assert 0 < results["landmark_disagreement_attribute"] < 0.2
    assert results["judged_by"] == JUDGES
    assert results["unedited"]["identity"] == pytest.approx(1.0, abs=1e-5)
    assert results["method"]["identity"] != results["method"]["identity_loss_net"]
    for side in ("method", "unedited"):
        assert set(results["pose_leak"][side]) == {"yaw", "pitch", "roll"}
    assert results["pose_leak"]["unedited"]["roll"]["b_id"] == pytest.approx(1.0, abs=1e-6)


@needs_judges
def test_an_extra_pose_judge_adds_its_own_pose_column(monkeypatch):
    from genfields.editing.editor import EditResult
    from genfields.synthface import render_batch

    monkeypatch.setitem(judges.POSE_JUDGES, "other", lambda device: load_network("synth_landmarks"))
    referees = judges.load_judges("synth", pose="other")
    assert referees.names["pose_other"] == "other" and judges.is_judge(referees.extra_pose["other"])
    a, b = render_batch(3, res=64, seed=20_000).images, render_batch(3, res=64, seed=20_001).images
    nets = load_perception("synth")
    found = nets.landmarks(a)
    result = EditResult(identity_image=a, attribute_image=b, image=b, delta=torch.zeros(3, 1), identity=nets.identity(a),
                        output_identity=nets.identity(b), attribute=found, identity_pose=found, output=found)
    metrics, _ = judge_metrics(referees, result)
    assert torch.allclose(metrics["method"]["pose_other"], torch.zeros(3), atol=1e-6)  # output = attribute image
    assert metrics["unedited"]["pose_other"].mean() > 1.0
    with pytest.raises(ConfigError, match="unknown pose judge"):
        judges.load_judges("synth", pose="nonesuch")


@needs_judges
def test_the_real_3ddfa_pose_judge_agrees_with_the_render_labels_in_sign():
    from genfields.synthface import render_batch

    referees = judges.load_judges("synth", pose="3ddfa")
    batch = render_batch(16, res=64, seed=20_002, pose_dist="uniform")
    pose = referees.extra_pose["3ddfa"].pose(batch.images)
    big = batch.pose[:, :2].abs() >= 15  # yaw and pitch clearly away from frontal
    assert big.any()
    assert (torch.sign(pose[:, :2][big]) == torch.sign(batch.pose[:, :2][big])).float().mean() >= 0.9


@needs_judges
def test_shared_pairs_give_every_editor_the_same_numbers_as_evaluating_it_alone(tmp_path):
    """Evaluations that share the editor-independent half (`SharedPairs`) equal evaluations made alone,
    for editors of two kinds (M_ref and the W baseline with its own E_attr) and a per-pair optimum; a
    different pair set clears what is stored."""
    from genfields.editing import get_preset, load_editor, make_dataset, train_editor
    from genfields.editing.dataset import DatasetConfig
    from genfields.editing.evaluate import SharedPairs, evaluate_editor
    from genfields.editing.pair_optimum import PairOptimumConfig, PairOptimumEditor
    from genfields.perception.judges import load_judges
    from genfields.stylegan2 import load_generator

    tiny = get_preset("tiny16")
    make_dataset(DatasetConfig(preset="tiny16", generator=tiny.generator, identities=8, attributes=4, chunk=8),
                 load_generator(tiny.generator), load_perception("synth"), tmp_path / "ds", progress=False)
    editors = []
    for config in ("paper", "wspace"):
        train_editor(tiny.train_config(config, dataset=str(tmp_path / "ds"), steps=1, sample_every=0),
                     tmp_path / config, progress=False)
        editors.append(load_editor(tmp_path / config / "final"))
    editors.append(PairOptimumEditor(editors[0], PairOptimumConfig(steps=2)))
    referees, shared = load_judges("synth"), SharedPairs()
    for editor in editors:
        alone = evaluate_editor(editor, tiny, pairs=6, seed=0, batch=3, judges=referees)
        together = evaluate_editor(editor, tiny, pairs=6, seed=0, batch=3, judges=referees, shared=shared)
        assert together == alone
    assert sorted(shared.batches) == [0, 3] and shared.real_stats is not None
    key = shared.key
    evaluate_editor(editors[0], tiny, pairs=4, seed=0, batch=2, judges=referees, shared=shared)
    assert shared.key != key and sorted(shared.batches) == [0, 2]


def test_pose_floor_by_hand():
    labels = torch.tensor([[10.0, 0.0, 5.0], [-20.0, 4.0, 0.0], [0.0, -3.0, 1.0], [5.0, 5.0, 5.0]])
    floor = judges.pose_floor(labels + torch.tensor([1.0, -2.0, 0.0]), labels)
    assert floor["bias"] == pytest.approx({"yaw": 1.0, "pitch": -2.0, "roll": 0.0})
    assert floor["mae"] == pytest.approx({"yaw": 1.0, "pitch": 2.0, "roll": 0.0})
    assert floor["mse"]["value"] == pytest.approx(5 / 3) and floor["mse_centred"] == pytest.approx(0.0)
    noisy = judges.pose_floor(labels + torch.tensor([[1.0, 0, 0], [-1, 0, 0], [1, 0, 0], [-1, 0, 0]]), labels)
    assert noisy["bias"]["yaw"] == 0.0 and noisy["mse_centred"] == pytest.approx(1 / 3)


@needs_judges
def test_pose_floor_of_a_judge_on_renders():
    floor = judges.render_pose_floor(load_network(JUDGES["landmarks"], role=judges.ROLE), 16, 64, 20_000, batch=8)
    assert floor["images"] == 16 and "seed 20000" in floor["renders"]
    assert 0 < floor["mse"]["value"] < 25 and all(v < 5 for v in floor["mae"].values())  # ~1 degree MAE
    assert floor["mse"]["lo"] <= floor["mse"]["value"] <= floor["mse"]["hi"]
