"""Editing pipeline: losses against hand-computed values, the regulariser's gradient, networks, masks,
stage alternation, the generated set, a tiny training run with exact resume, save/load and evaluation."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from genfields.editing import (GeneratedSet, StyleStatistics, get_preset, identity_loss, landmark_loss, load_editor,
                               make_dataset, pose_loss, reconstruction_loss, style_nll, train_editor)
from genfields.editing.config import LossConfig, ModelConfig
from genfields.editing.dataset import DatasetConfig, MomentAccumulator, generate
from genfields.editing.editor import new_editor
from genfields.editing.evaluate import SharedPairs, evaluate_editor
from genfields.editing.losses import EditingLoss, EditOutputs, EditTargets, msssim_window
from genfields.editing.mref import MRef, WMapper
from genfields.editing.trainer import RECONSTRUCTION, learning_rate, stage
from genfields.errors import ConfigError
from genfields.perception import load_perception
from genfields.stylegan2 import load_generator

TINY = get_preset("tiny16")


@pytest.fixture(scope="module")
def nets():
    return load_perception("synth")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, nets):
    folder = tmp_path_factory.mktemp("editing") / "ds"
    cfg = DatasetConfig(preset="tiny16", generator=TINY.generator, identities=12, attributes=6, chunk=8)
    make_dataset(cfg, load_generator(TINY.generator), nets, folder, progress=False)
    return folder


def tiny_config(dataset, name: str = "paper", **changes):
    return dataclasses.replace(TINY.train_config(name, dataset=str(dataset), sample_every=0, log_every=2), **changes)


# --- losses ---------------------------------------------------------------------------------------
def test_identity_loss_is_the_batch_mean_of_l1_distances():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    assert identity_loss(a, b).item() == pytest.approx((1.0 + 0.5) / 2)


def test_landmark_loss_uses_only_the_51_inner_points():
    a, b = torch.zeros(2, 68, 2), torch.zeros(2, 68, 2)
    b[:, :17] = 100.0  # the jaw (iBUG 1-17) does not count
    b[0, 17] = torch.tensor([3.0, 4.0])  # iBUG 18 counts: distance 5 for sample 0, 0 for sample 1
    assert landmark_loss(a, b).item() == pytest.approx(2.5, abs=1e-4)


def test_pose_loss_is_the_euclidean_distance_of_the_angles():
    a = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 12.0]])
    assert pose_loss(a, torch.zeros(2, 3)).item() == pytest.approx((5 + 12) / 2, abs=1e-4)


def test_norm_losses_have_finite_gradients_at_an_exact_match():
    x = torch.zeros(1, 68, 2, requires_grad=True)
    landmark_loss(torch.zeros(1, 68, 2), x).backward()
    assert torch.isfinite(x.grad).all()


def test_reconstruction_loss_hand_computed_on_constant_images():
    # 0 vs 1 in [0, 1]: every contrast-structure term is C2/C2 = 1, the last SSIM is the luminance
    # term C1/(1+C1), so MS-SSIM = (C1/(1+C1))^w5 and L1 = 1.
    black, white = -torch.ones(2, 3, 64, 64), torch.ones(2, 3, 64, 64)
    c1 = 0.01 ** 2
    expected = 0.84 * (1 - (c1 / (1 + c1)) ** 0.1333) + 0.16 * 1.0
    assert reconstruction_loss(black, white).item() == pytest.approx(expected, rel=1e-4)
    assert reconstruction_loss(white, white).item() == pytest.approx(0.0, abs=1e-6)


def test_msssim_window_fits_the_resolution():
    assert [msssim_window(r) for r in (256, 128, 64, 16)] == [11, 7, 3, 1]
    with pytest.raises(ConfigError, match="does not fit 64 px"):
        msssim_window(64, 11)
    noisy = (torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert 0 < reconstruction_loss(noisy, (noisy + 0.1 * torch.randn_like(noisy)).clamp(-1, 1)).item() < 0.3


def test_style_regulariser_value_and_gradient():
    stats = StyleStatistics(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]), torch.zeros(1), torch.ones(1))
    S = torch.tensor([[1.0, 3.0]], requires_grad=True)
    value = style_nll(S, stats)
    assert value.item() == pytest.approx((1 / 1 + 4 / 4) / 2)  # sum (s - mu)^2 / (2 sigma^2)
    value.sum().backward()
    assert torch.allclose(S.grad, torch.tensor([[1.0, 2.0 / 4]]))  # (s - mu) / sigma^2


def test_total_loss_weights_and_switches():
    stats = StyleStatistics(torch.zeros(3), torch.ones(3), torch.zeros(1), torch.ones(1))
    out = EditOutputs(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 68, 2), torch.tensor([[3.0, 4.0, 0.0]]),
                      torch.zeros(1, 3, 64, 64), torch.tensor([[2.0, 0.0, 0.0]]))
    lnd = torch.zeros(1, 68, 2)
    lnd[0, 30] = torch.tensor([6.0, 8.0])
    cross = EditTargets(torch.tensor([[0.0, 0.0]]), lnd, torch.zeros(1, 3))
    loss = EditingLoss(LossConfig(identity=1.0, attribute=0.5, reconstruction=0.02, style_reg=0.1), stats)
    total, terms = loss(out, cross)
    assert set(terms) == {"id", "lnd", "pose", "style_reg"}  # no L_rec in a cross step
    assert total.item() == pytest.approx(1.0 * 1 + 0.5 * (10 + 5) + 0.1 * 2, abs=1e-3)
    no_pose = EditingLoss(LossConfig(pose=False, identity=0.0), None)
    total, terms = no_pose(out, dataclasses.replace(cross, image=torch.zeros(1, 3, 64, 64)))
    assert set(terms) == {"lnd", "rec"} and terms["rec"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="S statistics"):
        EditingLoss(LossConfig(style_reg=1.0), None)


# --- networks and masks --------------------------------------------------------------------------
def test_networks_start_from_the_unedited_image_and_the_mean_w():
    cfg = ModelConfig(hidden=(8,), s_dim=5, w_dim=4, f_id_dim=3, f_attr_dim=2)
    assert torch.equal(MRef(cfg)(torch.randn(2, 2), torch.randn(2, 3)), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="concatenates"):
        MRef(cfg)(torch.randn(2, 2))
    mapper = WMapper(dataclasses.replace(cfg, kind="wspace"))
    mapper.offset.fill_(0.5)
    assert torch.equal(mapper(torch.randn(2, 2), torch.randn(2, 3)), torch.full((2, 4), 0.5))
    with pytest.raises(ConfigError, match="W-space"):
        ModelConfig(kind="wspace", layers="conv0")


def test_masks_restrict_the_edit_to_the_chosen_layers(tiny_set, nets):
    data = GeneratedSet(tiny_set)
    G = load_generator(TINY.generator)
    editor = new_editor(G, nets, ModelConfig(hidden=(8,), concat=False, layers="conv1-conv2"), data.stats)
    torch.nn.init.normal_(editor.network.net[-1].weight)
    mask = editor.training_mask()
    inside = torch.zeros(G.layout.dim, dtype=torch.bool)
    for name in ("conv1", "conv2"):
        inside[G.layout.layer(name).slice] = True
    assert torch.equal(mask.bool(), inside)
    w, S = editor.identity_styles(data.tensors["z_id"][:2])
    S_out, _ = editor.edit_styles(S, w, None, data.tensors["attr_f_attr"][:2], mask)
    assert torch.equal(S_out[:, ~inside], S[:, ~inside]) and not torch.equal(S_out[:, inside], S[:, inside])
    assert torch.equal(editor.inference_mask(layers="conv2").bool(), inside & G.layout.mask("conv2").bool())
    editor.config = dataclasses.replace(editor.config, mask_mode="inference")
    assert torch.equal(editor.training_mask(), torch.ones(G.layout.dim))


def test_stages_alternate_three_cross_steps_and_one_reconstruction(tiny_set):
    stages = [stage(i, 3) for i in range(8)]
    assert stages == ["cross"] * 3 + [RECONSTRUCTION] + ["cross"] * 3 + [RECONSTRUCTION]
    data = GeneratedSet(tiny_set)
    gen = torch.Generator().manual_seed(0)
    rec = data.sample(4, gen, reconstruction=True)
    index = [int((data.tensors["z_id"] == z).all(1).nonzero()) for z in rec.z]
    assert torch.equal(rec.landmarks, data.tensors["id_landmarks"][index])  # I_attr = I_id
    assert learning_rate(0, 10, 1e-4, 1e-6) == pytest.approx(1e-4)
    assert learning_rate(9, 10, 1e-4, 1e-6) == pytest.approx(1e-6)
    assert learning_rate(5, 11, 1e-4, 1e-6) == pytest.approx(1e-5)


# --- the generated set -------------------------------------------------------------------------------
def test_generated_set_records_z_targets_and_style_statistics(tiny_set, nets):
    data = GeneratedSet(tiny_set)
    G = load_generator(TINY.generator)
    assert data.num_identities == 12 and data.num_attributes == 6
    z = torch.cat([data.tensors["z_id"], data.tensors["z_attr"]])
    w, S, images = generate(G, z)
    assert torch.allclose(data.stats.style_mean, S.mean(0), atol=1e-5)
    assert torch.allclose(data.stats.style_std, S.std(0), atol=1e-5)
    assert torch.allclose(data.tensors["attr_pose"], nets.landmarks(images[12:]).pose, atol=1e-4)
    assert torch.allclose(data.tensors["id_embedding"], nets.identity(images[:12]), atol=1e-5)
    acc = MomentAccumulator()
    for chunk in S.split(5):
        acc.add(chunk)
    assert torch.allclose(acc.mean_std()[1], S.std(0), atol=1e-5)
    assert (tiny_set / "preview.png").is_file()
    with pytest.raises(ConfigError, match="S dim"):
        data.check_generator(load_generator("random:synth64"))


# --- training -------------------------------------------------------------------------------------
def test_tiny_run_trains_resumes_exactly_and_writes_an_editor(tmp_path, tiny_set):
    cfg = tiny_config(tiny_set, "paper", steps=8, lr_end=TINY.lr_start)  # constant lr: steps may change on resume
    straight = train_editor(cfg, tmp_path / "a", progress=False)
    train_editor(dataclasses.replace(cfg, steps=5), tmp_path / "b", progress=False)
    resumed = train_editor(None, tmp_path / "b", resume=True, steps=8, progress=False)
    a, b = straight.state()[0], resumed.state()[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6, 8]
    assert [x["stage"] for x in lines] == ["cross", RECONSTRUCTION, "cross", RECONSTRUCTION]
    assert "rec" in lines[1] and "rec" not in lines[0] and all(math.isfinite(x["loss"]) for x in lines)
    assert not torch.equal(a["network.net.2.weight"], torch.zeros_like(a["network.net.2.weight"]))
    assert {p.name for p in (tmp_path / "a" / "samples").iterdir()} == {"init.png", "step000008.png"}
    editor = load_editor(tmp_path / "a" / "final")
    assert editor.config.concat is False and editor.meta["config_name"] == "paper"
    z = torch.randn(2, editor.G.z_dim)
    attrs = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(editor.edit(z, attrs).image,
                       straight.editor.edit(z, attrs).image)


def test_wspace_baseline_trains_with_its_discriminator(tmp_path, tiny_set):
    trainer = train_editor(tiny_config(tiny_set, "wspace", steps=2, log_every=1), tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all("adv" in x and "disc" in x for x in lines)
    assert "D.net.0.weight" in trainer.state()[0]
    editor = load_editor(tmp_path / "final")
    with pytest.raises(ConfigError, match="W-space"):
        editor.edit(torch.randn(1, editor.G.z_dim), torch.zeros(1, 3, 16, 16), layers="conv0")


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint"):
        train_editor(None, tmp_path, resume=True, progress=False)


def test_evaluation_reports_method_and_unedited(tmp_path, tiny_set):
    train_editor(tiny_config(tiny_set, "default", steps=1), tmp_path, progress=False)
    results = evaluate_editor(load_editor(tmp_path / "final"), TINY, pairs=6, seed=0, batch=3)
    assert set(results) == {"method", "unedited", "pose_leak", "judged_by"}
    for side in ("method", "unedited"):
        assert set(results[side]) == {"identity", "expression", "pose", "fd", "kid"}
    assert results["unedited"]["identity"] == pytest.approx(1.0, abs=1e-5)
    assert results["pose_leak"]["unedited"]["yaw"]["b_id"] == pytest.approx(1.0, abs=1e-6)
    assert results["judged_by"].startswith("loss networks")
    again = evaluate_editor(load_editor(tmp_path / "final"), TINY, pairs=6, seed=0, batch=6)
    assert again["method"]["pose"] == pytest.approx(results["method"]["pose"], rel=1e-4)


# --- the W baseline made IDDISEN-faithful, and the extensions beyond the paper -----------------------------
def test_wspace_trains_its_own_attribute_encoder_by_default(tmp_path, tiny_set, nets):
    cfg = tiny_config(tiny_set, "wspace", steps=2, log_every=1)
    assert cfg.model.train_attributes
    trainer = train_editor(cfg, tmp_path, progress=False)
    enc = trainer.network.attr_encoder
    assert enc is not None and not enc.training  # batch-norm statistics stay frozen
    start = nets.attributes.state_dict()
    moved = [k for k, v in enc.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])]
    assert moved and all(p.requires_grad for p in enc.parameters())
    editor = load_editor(tmp_path / "final")
    assert editor.config.attr_network == "synth_attributes"
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.allclose(editor.attribute_features(images), trainer.editor.attribute_features(images), atol=1e-6)
    assert not torch.allclose(editor.attribute_features(images), nets.attributes(images), atol=1e-6)


def test_frozen_attributes_and_adversarial_settings_are_options(tmp_path, tiny_set):
    from genfields.editing.cli import override_loss_weights

    cfg = tiny_config(tiny_set, "wspace", steps=1, lr_disc=3e-4)
    cfg.model = dataclasses.replace(cfg.model, train_attributes=False)
    cfg.loss = override_loss_weights(cfg.loss, "wspace", None, None, None, None, adversarial=2.5)
    trainer = train_editor(cfg, tmp_path, progress=False)
    assert trainer.network.attr_encoder is None and trainer.opt_D.param_groups[0]["lr"] == 3e-4
    assert trainer.cfg.loss.adversarial == 2.5
    with pytest.raises(ConfigError, match="--adversarial"):
        override_loss_weights(tiny_config(tiny_set, "paper").loss, "paper", None, None, None, None, adversarial=1.0)


@pytest.mark.parametrize("name,own", [("paper+id", "f_attr"), ("paper+ids", "styles")])
def test_identity_aware_mref_sees_the_identity(tmp_path, tiny_set, name, own):
    cfg = tiny_config(tiny_set, name, steps=4)
    assert cfg.model.identity_input == own and cfg.loss.pose and cfg.loss.style_reg > 0
    trainer = train_editor(cfg, tmp_path, progress=False)
    net = trainer.network
    extra = net.config.f_attr_dim if own == "f_attr" else net.config.s_dim
    assert net.net[0].in_features == net.config.f_attr_dim + extra
    editor = load_editor(tmp_path / "final")
    f_attr = torch.randn(2, editor.config.f_attr_dim)
    # the same attribute gives different dS for different identities' own features
    a = editor.network(f_attr, None, torch.randn(2, extra) * 3)
    b = editor.network(f_attr, None, torch.randn(2, extra) * 3)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="identity"):
        editor.network(f_attr)
    z, attrs = torch.randn(2, editor.G.z_dim), torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(editor.edit(z, attrs).image, trainer.editor.edit(z, attrs).image)


def test_identity_inputs_are_for_mref_only():
    with pytest.raises(ConfigError, match="identity input"):
        ModelConfig(identity_input="landmarks")
    with pytest.raises(ConfigError, match="W baseline"):
        ModelConfig(kind="wspace", identity_input="styles")


def test_per_pair_optimum_improves_on_zero_and_is_scored_by_evaluate(tmp_path, tiny_set):
    from genfields.editing.pair_optimum import PairOptimumConfig, PairOptimumEditor

    train_editor(tiny_config(tiny_set, "paper", steps=1), tmp_path, progress=False)
    editor = load_editor(tmp_path / "final")
    z, attrs = torch.randn(3, editor.G.z_dim), torch.rand(3, 3, 16, 16) * 2 - 1
    few = PairOptimumEditor(editor, PairOptimumConfig(steps=1, lr=0.05))
    more = PairOptimumEditor(editor, PairOptimumConfig(steps=15, lr=0.05), stats=None)

    def objective(opt, result):
        from genfields.editing.losses import EditOutputs, EditTargets

        out = EditOutputs(result.output_identity, result.output.landmarks, result.output.pose, result.image,
                          editor.identity_styles(z)[1] + result.delta)
        return opt.loss(out, EditTargets(result.identity, result.attribute.landmarks, result.attribute.pose))[0]

    assert objective(more, more.edit(z, attrs)) < objective(few, few.edit(z, attrs))
    results = evaluate_editor(few, TINY, pairs=4, seed=0, batch=2)
    assert set(results["method"]) == {"identity", "expression", "pose", "fd", "kid"}
    with pytest.raises(ConfigError, match="steps"):
        PairOptimumConfig(steps=0)


def test_stored_per_pair_optima_give_the_same_scores_and_resume_an_interrupted_run(tmp_path, tiny_set, monkeypatch):
    from safetensors.torch import load_file, save_file

    from genfields.editing.pair_optimum import PairOptimumConfig, PairOptimumEditor, SolvedPairs, pair_keys

    train_editor(tiny_config(tiny_set, "paper", steps=1), tmp_path / "run", progress=False)
    editor = load_editor(tmp_path / "run" / "final")
    optimum = PairOptimumEditor(editor, PairOptimumConfig(steps=3, lr=0.05))
    key, path = optimum.store_key("tiny16", 0), tmp_path / "optimum.safetensors"
    computed = evaluate_editor(optimum, TINY, pairs=6, seed=0, batch=2)
    optimum.solved = SolvedPairs.empty(key, path)  # the first two of three batches, then "interrupted"
    evaluate_editor(optimum, TINY, pairs=4, seed=0, batch=2)
    assert len(SolvedPairs.load(path, key)) == 4
    optimum.solved = SolvedPairs.load(path, key)  # the rerun optimises only the missing pairs
    calls = []
    solve = optimum.optimise
    monkeypatch.setattr(optimum, "optimise", lambda *a: calls.append(1) or solve(*a))
    resumed = evaluate_editor(optimum, TINY, pairs=6, seed=0, batch=2)
    assert len(calls) == 1 and len(optimum.solved) == 6
    optimum.solved = SolvedPairs.load(path, key)  # all stored: no optimisation, the same scores
    calls.clear()
    stored = evaluate_editor(optimum, TINY, pairs=6, seed=0, batch=3)
    assert not calls
    for side in ("method", "unedited"):
        for name, value in computed[side].items():
            assert resumed[side][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
            assert stored[side][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    # other pairs (another seed's attribute images) are not found: their optima are computed, not misread
    other = optimum.prepare(torch.randn(2, editor.G.z_dim), torch.zeros(2, 3, 16, 16))
    assert optimum.solved.find(pair_keys(other)) is None
    same_identity = optimum.solved.pairs[:1].clone()
    same_identity[:, editor.G.config.w_dim:] += 0.01  # the same w with another attribute image
    assert optimum.solved.find(same_identity) is None and optimum.solved.find(optimum.solved.pairs[:1]) is not None
    with pytest.raises(ConfigError, match="steps differ"):
        SolvedPairs.load(path, {**key, "steps": 4})
    with pytest.raises(ConfigError, match="seed differ"):
        SolvedPairs.load(path, PairOptimumEditor(editor, PairOptimumConfig(steps=3, lr=0.05)).store_key("tiny16", 1))
    save_file({"delta": load_file(str(path))["delta"]}, str(tmp_path / "foreign.safetensors"))
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:100])
    for bad in ("foreign", "cut", "absent"):
        with pytest.raises(ConfigError, match="not a per-pair optimum store"):
            SolvedPairs.load(tmp_path / f"{bad}.safetensors", key)


def test_a_report_reads_a_stored_per_pair_optimum_only_when_it_matches(tmp_path, tiny_set):
    import dataclasses as dc

    from genfields.editing.pair_optimum import PAIR_OPTIMUM_FILE, PairOptimumConfig, PairOptimumEditor, SolvedPairs
    from genfields.evaluation.report_editors import ReportEditor
    from genfields.evaluation.reproduce import TEST, evaluate_pair_optimum

    train_editor(tiny_config(tiny_set, "paper", steps=1), tmp_path / "run", progress=False)
    folder = tmp_path / "run" / "final"
    base = ReportEditor("paper", load_editor(folder), "run", folder)
    sizes = dc.replace(TEST, pairs=6, pair_pairs=4, pair_steps=2)
    computed = evaluate_pair_optimum(base, TINY, sizes, 0, False, None, SharedPairs())
    assert computed["pairs"] == 4 and computed["source"].startswith("computed in this run (no stored")
    optimum = PairOptimumEditor(base.editor, PairOptimumConfig(steps=2))
    optimum.solved = SolvedPairs.empty(optimum.store_key("tiny16", 0), folder / PAIR_OPTIMUM_FILE)
    evaluate_editor(optimum, TINY, pairs=5, seed=0, batch=6)  # too few pairs: not used
    assert "holds 5 pairs, fewer than 6" in evaluate_pair_optimum(base, TINY, sizes, 0, False, None, None)["source"]
    evaluate_editor(optimum, TINY, pairs=6, seed=0, batch=6)
    stored = evaluate_pair_optimum(base, TINY, sizes, 0, False, None, SharedPairs())
    assert stored["pairs"] == 6 and stored["source"] == f"stored: {folder / PAIR_OPTIMUM_FILE}"
    assert "editor_same_pairs" not in stored  # all the pairs: the paper row itself compares
    fresh = PairOptimumEditor(base.editor, PairOptimumConfig(steps=2))
    again = evaluate_editor(fresh, TINY, pairs=6, seed=0, batch=6)["method"]  # float noise: other batch sizes
    assert stored["method"] == pytest.approx(again, rel=1e-5)
    other = evaluate_pair_optimum(base, TINY, dc.replace(sizes, pair_steps=3), 0, False, None, SharedPairs())
    assert other["pairs"] == 4 and "steps differ" in other["source"]  # made with other settings: recomputed


@pytest.mark.parametrize("own", ["f_attr", "styles"])
def test_identity_aware_mref_fine_tunes_from_a_plain_one(own):
    from genfields.editing.mref import transfer_weights

    cfg = ModelConfig(hidden=(8, 8), s_dim=6, w_dim=4, f_id_dim=3, f_attr_dim=5, concat=False)
    torch.manual_seed(0)
    src, dst = MRef(cfg), MRef(dataclasses.replace(cfg, identity_input=own))
    for p in src.parameters():
        torch.nn.init.normal_(p)
    transfer_weights(src, dst, f_id_dim=3)
    f_attr, extra = torch.randn(4, 5), torch.randn(4, dst.config.identity_dim)
    assert torch.allclose(dst(f_attr, None, extra), src(f_attr), atol=1e-5)  # new identity columns start at zero
    with pytest.raises(ConfigError, match="cannot fine-tune"):
        transfer_weights(dst, MRef(dataclasses.replace(cfg, identity_input="styles" if own == "f_attr" else "f_attr",
                                                       s_dim=6, f_attr_dim=5)), f_id_dim=3)
    with pytest.raises(ConfigError, match="no input f_id"):
        transfer_weights(MRef(dataclasses.replace(cfg, concat=True)), MRef(cfg), f_id_dim=3)  # F_id cannot be dropped
