"""The independent realism network: its artifacts, a smoke training with its card, and its refusal as a loss
network or an input (genfields/perception/realism_net.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genfields.errors import ConfigError
from genfields.perception import load_network, load_perception, realism
from genfields.perception.judges import JUDGE_TRAIN_SEEDS, RESERVED_STREAMS, refuse_judges
from genfields.perception.realism_net import (ARTIFACTS, HELDOUT_SEED, REALISM_TRAIN_SEED, CORRUPT,
                                              RealismTrainConfig, corrupt, load_realism_network,
                                              train_realism_network)
from genfields.synthface import render_batch


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("realism")
    return train_realism_network(RealismTrainConfig(steps=2, batch=4, heldout=8, width=8, feature_dim=16), out,
                                 progress=False, command="smoke")


def test_every_artifact_changes_the_image_and_none_keeps_it():
    faces = render_batch(2, res=32, seed=REALISM_TRAIN_SEED).images
    for name, artifact in CORRUPT.items():
        changed = artifact(faces[:1], torch.Generator().manual_seed(1))
        assert changed.shape == faces[:1].shape and not torch.equal(changed, faces[:1]), name
    labels = torch.tensor([0, ARTIFACTS.index("ghost")])
    out = corrupt(faces, labels, torch.Generator().manual_seed(0))
    assert torch.equal(out[0], faces[0]) and not torch.equal(out[1], faces[1])


def test_its_streams_are_its_own():
    from genfields.perception.data import VIEW_SEED_OFFSET

    mine = {REALISM_TRAIN_SEED, HELDOUT_SEED}
    mine |= {s + VIEW_SEED_OFFSET for s in mine}
    judges = {s + k for s in JUDGE_TRAIN_SEEDS.values() for k in (0, VIEW_SEED_OFFSET)}
    assert not mine & judges and not any(s in r for s in mine for r in RESERVED_STREAMS)
    with pytest.raises(ConfigError, match="used by other sets"):
        RealismTrainConfig(seed=0)


def test_smoke_training_writes_weights_config_and_card(smoke):
    config = json.loads((smoke / "config.json").read_text())
    assert config["role"] == "realism" and config["artifacts"] == list(ARTIFACTS)
    assert 0 <= config["results"]["accuracy"] <= 1 and config["command"] == "smoke"
    card = (smoke / "MODEL_CARD.md").read_text()
    assert "never a loss or an input" in card and "Another family than E_attr" in card
    net = load_realism_network(smoke)
    feats = net(render_batch(6, res=64, seed=HELDOUT_SEED).images)
    assert feats.shape == (6, 16) and not feats.requires_grad
    assert realism.kid(feats[:3], feats[3:], resamples=5).value == pytest.approx(
        realism.kid_value(feats[:3], feats[3:]))


def test_it_is_refused_as_a_loss_network_or_an_input(smoke, tmp_path):
    from genfields.editing.config import ModelConfig
    from genfields.editing.editor import new_editor
    from genfields.editing.regularizer import StyleStatistics
    from genfields.stylegan2 import load_generator

    with pytest.raises(ConfigError, match="is a realism instrument.*never loss networks or inputs"):
        load_network(smoke)  # every loss-network and input path loads through here
    with pytest.raises(ConfigError, match="not a judge"):
        load_network(smoke, role="judge")
    net = load_realism_network(smoke)
    with pytest.raises(ConfigError, match="judge network was given"):
        refuse_judges([net], "a loss")
    G = load_generator("random:tiny16:1")
    nets = load_perception("synth")
    nets.features = net  # as the FD features of an editor's perception set
    stats = StyleStatistics(torch.zeros(G.layout.dim), torch.ones(G.layout.dim), torch.zeros(G.config.w_dim),
                            torch.ones(G.config.w_dim))
    with pytest.raises(ConfigError, match="judge"):
        new_editor(G, nets, ModelConfig(hidden=(8,)), stats)
    (tmp_path / "config.json").write_text('{"role": "judge"}')
    with pytest.raises(ConfigError, match="not a realism network"):
        load_realism_network(tmp_path)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from genfields.perception import realism_net
    from genfields.training import StopWatch

    cfg = RealismTrainConfig(steps=3, batch=2, heldout=4, width=8, feature_dim=8)
    whole = train_realism_network(cfg, tmp_path / "whole", progress=False)
    calls = []
    monkeypatch.setattr(StopWatch, "should_stop", lambda self: calls.append(1) or len(calls) > 2)  # after 2 steps
    assert train_realism_network(cfg, tmp_path / "cut", progress=False) is None
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="--resume"):
        train_realism_network(cfg, tmp_path / "cut", progress=False)  # a fresh run refuses the folder
    resumed = train_realism_network(cfg, tmp_path / "cut", resume=True, progress=False)
    a, b = realism_net.load_realism_network(whole), realism_net.load_realism_network(resumed)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6), name


def test_evaluate_scores_realism_with_the_instrument_beside_fd(smoke):
    from genfields.editing import get_preset
    from genfields.editing.config import ModelConfig
    from genfields.editing.editor import new_editor
    from genfields.editing.evaluate import evaluate_pairs
    from genfields.editing.regularizer import StyleStatistics
    from genfields.stylegan2 import load_generator

    G = load_generator("random:tiny16:1")
    stats = StyleStatistics(torch.zeros(G.layout.dim), torch.ones(G.layout.dim), torch.zeros(G.config.w_dim),
                            torch.ones(G.config.w_dim))
    editor = new_editor(G, load_perception("synth"), ModelConfig(hidden=(8,)), stats)
    tiny = get_preset("tiny16")
    results, values = evaluate_pairs(editor, tiny, pairs=4, batch=4, realism_net=load_realism_network(smoke))
    assert values.features["method_realism"].shape == (4, 16) and values.features["real_realism"].shape == (4, 16)
    assert results["method"]["fd_realism"] == pytest.approx(
        realism.fd_value(values.features["method_realism"], values.features["real_realism"]))
    assert values.realism_space == "_realism" and "kid_realism" in values.intervals(realism_resamples=5)["unedited"]
    plain, plain_values = evaluate_pairs(editor, tiny, pairs=4, batch=4)
    assert "fd_realism" not in plain["method"] and plain_values.realism_space == ""
    assert plain["method"]["fd"] == pytest.approx(results["method"]["fd"])


def test_the_report_compares_realism_in_the_instruments_features_where_both_rows_have_them():
    from genfields.editing.evaluate import PairValues
    from genfields.evaluation.report_rules import Comparisons

    rng = np.random.default_rng(0)
    real, real_r = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))

    def row(shift: float, instrument: bool) -> PairValues:
        feats = {"method": rng.normal(size=(30, 4)) + shift, "unedited": rng.normal(size=(30, 4)), "real": real}
        if instrument:
            feats |= {"method_realism": rng.normal(size=(30, 3)) - shift, "real_realism": real_r}
        return PairValues(metrics={"method": {}, "unedited": {}}, features=feats, angles={})

    a, b, c = row(1.0, True), row(0.0, True), row(0.0, False)
    both = Comparisons({"a": a, "b": b, "c": c}, fd_resamples=20)
    assert both.fd("a", "b").value == pytest.approx(realism.fd_value(a.features["method_realism"], real_r)
                                                    - realism.fd_value(b.features["method_realism"], real_r))
    assert both.fd("a", "c").value == pytest.approx(realism.fd_value(a.features["method"], real)
                                                    - realism.fd_value(c.features["method"], real))
