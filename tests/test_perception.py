"""Perception: interface contracts, metrics, augmentations, and a tiny training run that resumes exactly."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from genfields.imageio import ImageError
from genfields.perception import frechet_distance, landmark_nme, load_network, roc_auc, equal_error_rate
from genfields.perception.augment import degrade, gaussian_blur, jpeg_like
from genfields.perception.data import ViewSetSpec, load_view_set, view_params
from genfields.perception.networks import NetConfig, build_network, decode_landmarks_pose, encode_landmarks_pose
from genfields.perception.train import PerceptionTrainConfig, pair_indices, train_perception


def random_net(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(NetConfig(kind=kind, width=8, feature_dim=32, embedding_dim=16)).eval()


def images(n: int = 2, res: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, res, res, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("res", [32, 64, 100])
def test_every_network_takes_any_resolution_and_returns_its_contract(res):
    x = images(3, res)
    found = random_net("landmarks")(x)
    assert found.landmarks.shape == (3, 68, 2) and found.pose.shape == (3, 3)
    emb = random_net("identity")(x)
    assert emb.shape == (3, 16) and torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert random_net("attributes")(x).shape == (3, 32)


def test_landmarks_are_in_pixels_of_the_input_resolution():
    net = random_net("landmarks")
    x = images(2, 64)
    big = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # the same picture at 128 px
    small_lm, big_lm = net(x).landmarks, net(big).landmarks
    assert torch.allclose(big_lm, 2 * small_lm, atol=0.3)


def test_landmark_encoding_round_trips():
    lm, pose = torch.rand(4, 68, 2) * 64, torch.randn(4, 3) * 20
    back = decode_landmarks_pose(encode_landmarks_pose(lm, pose, 64), 64)
    assert torch.allclose(back.landmarks, lm, atol=1e-4) and torch.allclose(back.pose, pose, atol=1e-4)


def test_networks_are_differentiable_with_respect_to_the_image():
    x = images(2, 48).requires_grad_(True)
    nets = [random_net(k) for k in ("landmarks", "identity", "attributes")]
    loss = nets[0](x).landmarks.sum() + nets[0](x).pose.sum() + nets[1](x).sum() + nets[2](x).sum()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_images_are_refused_clearly():
    with pytest.raises(ImageError):
        random_net("landmarks")(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ImageError):
        random_net("identity")(torch.full((1, 3, 64, 64), float("nan")))


def test_similarity_is_cosine():
    a, b = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    assert torch.allclose(random_net("identity").similarity(a, b), torch.tensor([0.0, 1.0]))


def test_verification_metrics_on_known_scores():
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert roc_auc(np.array([3.0, 2, 1, -1, -2, -3]), labels) == 1.0
    assert equal_error_rate(np.array([3.0, 2, 1, -1, -2, -3]), labels) == 0.0
    assert roc_auc(np.array([1.0, 2, 3, 4, 5, 6]), labels) == 0.0
    assert abs(equal_error_rate(np.array([3.0, 2, -2, 1, -1, -3]), labels) - 1 / 3) < 1e-9


def test_frechet_distance_of_known_gaussians():
    assert abs(frechet_distance(np.zeros(1), np.ones((1, 1)), np.ones(1), 4 * np.ones((1, 1))) - 2.0) < 1e-9
    x = np.random.default_rng(0).normal(size=(500, 4))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_frechet_distance_matches_the_scipy_sqrtm_formula():
    import scipy.linalg

    rng = np.random.default_rng(1)
    for n, d in ((200, 6), (40, 12), (8, 12)):  # the last: rank-deficient covariances (fewer samples than dims)
        a, b = rng.normal(size=(n, d)), rng.normal(0.3, 1.5, size=(n, d)) @ rng.normal(size=(d, d))
        mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
        root = scipy.linalg.sqrtm(s1 @ s2).real
        reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6, abs=1e-6)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_nme_divides_by_face_size():
    target = torch.zeros(1, 68, 2)
    target[0, 16, 0] = 40.0  # face size 40 px
    assert torch.allclose(landmark_nme(target + torch.tensor([0.0, 2.0]), target), torch.tensor([0.05]))


def test_degradations_are_seeded_bounded_and_keep_shapes():
    x = images(4, 60)
    a = degrade(x, torch.Generator().manual_seed(1), p=1.0)
    b = degrade(x, torch.Generator().manual_seed(1), p=1.0)
    assert torch.equal(a, b) and a.shape == x.shape and a.abs().max() <= 1
    assert (a - x).abs().mean() > 0.02
    assert torch.allclose(gaussian_blur(x, torch.full((4,), 1e-4)), x, atol=1e-5)
    smooth = gaussian_blur(x, torch.full((4,), 2.0))
    assert torch.allclose(jpeg_like(smooth, torch.full((4,), 100.0)), smooth, atol=0.02)
    assert (jpeg_like(x, torch.full((4,), 10.0)) - x).abs().mean() > 0.05


def test_views_share_the_person_and_redraw_the_rest():
    params, person = view_params(ViewSetSpec(ids=3, views=2, seed=5))
    assert person.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(params.identity[0, :24], params.identity[1, :24])
    assert not torch.equal(params.pose[0], params.pose[1]) and not torch.equal(params.identity[0, 24:],
                                                                                 params.identity[1, 24:])


def test_pair_indices_pick_two_distinct_views_of_each_person():
    idx = pair_indices(views=3, people=4, total_people=10, gen=torch.Generator().manual_seed(0))
    a, b = idx[:4], idx[4:]
    assert torch.equal(a // 3, b // 3) and (a != b).all()


TINY = dict(ids=6, views=2, heldout_ids=3, heldout_views=2, batch=4, steps=4, width=8, feature_dim=32,
            embedding_dim=16, warmup=2, log_steps=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    """One render cache for the tiny runs of this module (the renders are the slow part)."""
    return str(tmp_path_factory.mktemp("perception-cache"))


@pytest.mark.parametrize("net", ["lnd", "id", "attr"])
def test_tiny_run_trains_evaluates_exports_and_loads(tmp_path, cache, net):
    cfg = PerceptionTrainConfig(net=net, cache=cache, **TINY)
    trainer = train_perception(cfg, tmp_path / "run", progress=False)
    assert trainer.step == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(math.isfinite(r["loss"]) for r in records)
    results = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(results) >= {"clean", "degraded"}
    model = load_network(tmp_path / "run" / "final")
    assert "| metric | clean | degraded |" in (tmp_path / "run" / "final" / "MODEL_CARD.md").read_text()
    assert next(model.parameters()).dtype == torch.float32 and not next(model.parameters()).requires_grad


def test_resumed_run_equals_uninterrupted_run(tmp_path, cache):
    cfg = PerceptionTrainConfig(net="lnd", cache=cache, **TINY)
    straight = train_perception(cfg, tmp_path / "a", progress=False)
    train_perception(dataclasses.replace(cfg, steps=2), tmp_path / "b", progress=False)
    resumed = train_perception(cfg, tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 4
    for p, q in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(p, q)


def test_view_sets_are_cached_and_identical(tmp_path):
    spec = ViewSetSpec(ids=2, views=2, seed=3)
    first = load_view_set(spec, tmp_path, progress=False)
    assert (tmp_path / spec.filename).is_file()
    again = load_view_set(spec, tmp_path, progress=False)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.landmarks, again.landmarks)


def test_unknown_network_is_a_config_error():
    from genfields.errors import ConfigError

    with pytest.raises(ConfigError):
        PerceptionTrainConfig(net="ears")


def test_train_perception_command_runs_and_reports_json(tmp_path, cache):
    from typer.testing import CliRunner

    from genfields.perception.cli import _standalone

    args = ["train-perception", "--net", "id", "--out", str(tmp_path / "run"), "--steps", "2", "--batch", "4",
            "--ids", "6", "--views", "2", "--heldout-ids", "3", "--width", "8", "--depth", "3", "--cache", cache, "--json"]
    result = CliRunner().invoke(_standalone(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["done"] and 0 <= report["results"]["clean"]["eer"] <= 1
    model = load_network(tmp_path / "run" / "final")
    assert model.config.depth == 3 and len(model.net.trunk) == 4 * 3  # three conv layers per stage
    assert "3 conv layers per stage" in (tmp_path / "run" / "final" / "MODEL_CARD.md").read_text()
    depth0 = CliRunner().invoke(_standalone(), args[:-5] + ["--depth", "0", "--cache", cache])
    assert depth0.exit_code == 2 and "--depth must be in [1, 64], got 0" in depth0.output
    bad = CliRunner().invoke(_standalone(), args[:2] + ["ears"] + args[3:])
    assert bad.exit_code == 2 and "--net must be one of" in bad.output
