"""Tests of the synthetic face world: determinism, landmark semantics, conventions, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genfields.synthface import (FaceParams, FaceRenderer, ParameterRangeError, iterate_batches, neutral_params,
                                 render_batch, sample_params)
from genfields.synthface.geometry import REGIONS

RES = 64


@pytest.fixture(scope="module")
def renderer() -> FaceRenderer:
    return FaceRenderer(RES)


@pytest.fixture(scope="module")
def batch():
    return render_batch(12, res=RES, seed=7)


def _short_hair(p: FaceParams) -> FaceParams:
    idn = p.identity.clone()
    idn[:, 10] = -1.0  # hair_length: short, keeps the face outline free
    idn[:, 12] = 1.0  # hairline: high, keeps the brows free
    return p.replace(identity=idn)


def _with_pose(p: FaceParams, yaw=0.0, pitch=0.0, roll=0.0) -> FaceParams:
    return p.replace(pose=torch.tensor([[yaw, pitch, roll]]).repeat(len(p), 1))


# ---------------------------------------------------------------- determinism and shapes
def test_shapes_and_ranges(batch):
    n = len(batch)
    assert batch.images.shape == (n, 3, RES, RES) and batch.images.dtype == torch.float32
    assert batch.images.min() >= -1 and batch.images.max() <= 1
    assert batch.landmarks.shape == (n, 68, 2) and batch.landmarks3d.shape == (n, 68, 3)
    assert batch.visible.shape == (n, 68) and batch.visible.dtype == torch.bool
    assert batch.pose.shape == (n, 3) and batch.box.shape == (n, 4)
    assert batch.identity.shape[1] >= 12 and batch.expression.shape[1] >= 4
    assert torch.equal(batch.index, torch.arange(n))
    assert torch.allclose(batch.landmarks3d[..., :2], batch.landmarks)
    # an image is not flat: faces have contrast
    assert (batch.images.flatten(1).std(1) > 0.1).all()


def test_same_seed_same_output_whatever_the_batch_size(batch):
    again = render_batch(12, res=RES, seed=7)
    assert torch.equal(batch.images, again.images) and torch.equal(batch.landmarks, again.landmarks)
    parts = [render_batch(5, res=RES, seed=7), render_batch(1, res=RES, seed=7, start_index=5),
             render_batch(6, res=RES, seed=7, start_index=6)]
    for name in ("images", "landmarks", "landmarks3d", "pose", "identity", "expression", "light", "box"):
        joined = torch.cat([getattr(p, name) for p in parts])
        torch.testing.assert_close(joined, getattr(batch, name), atol=2e-5, rtol=0, msg=name)
    assert torch.equal(torch.cat([p.visible for p in parts]), batch.visible)
    assert torch.equal(torch.cat([p.index for p in parts]), batch.index)
    u8 = lambda t: ((t + 1) * 127.5).round()
    assert (u8(torch.cat([p.images for p in parts])) - u8(batch.images)).abs().max() <= 1


def test_other_seed_differs(batch):
    other = render_batch(12, res=RES, seed=8)
    assert not torch.allclose(other.identity, batch.identity)
    assert (other.images - batch.images).abs().mean() > 0.05


def test_iterate_batches_resumes_by_index(batch):
    it = iterate_batches(4, res=RES, seed=7, start_index=4)
    first = next(it)
    torch.testing.assert_close(first.images, batch.images[4:8], atol=2e-5, rtol=0)
    assert torch.equal(first.index, torch.arange(4, 8))
    assert torch.equal(next(it).index, torch.arange(8, 12))


def test_pose_distribution_leaves_identity_alone():
    a, b = sample_params(50, seed=3), sample_params(50, seed=3, pose_dist="uniform")
    assert torch.equal(a.identity, b.identity) and torch.equal(a.expression, b.expression)
    assert b.pose[:, 0].abs().max() <= 45 and a.pose[:, 0].abs().max() <= 50
    assert a.pose[:, 0].std() < b.pose[:, 0].std()


# ---------------------------------------------------------------- landmark semantics
def test_landmarks_on_their_features(renderer):
    p = _short_hair(neutral_params(1))
    b = renderer.render(p)
    img = (b.images[0] + 1) / 2  # [3, H, W] in [0, 1]
    lm = b.landmarks[0]
    assert b.visible.all()
    pix = lambda i: img[:, int(lm[i, 1]), int(lm[i, 0])]
    bg = img[:, 1, 1]
    skin = pix(30)  # nose tip is skin
    assert (skin - bg).abs().sum() > 0.05
    # pupils (centre of the eye landmarks) are dark, much darker than skin
    for eye in (range(36, 42), range(42, 48)):
        c = lm[list(eye)].mean(0)
        assert img[:, int(c[1]), int(c[0])].mean() < 0.6 * skin.mean()
    # brows are darker than the forehead above them
    for i in (19, 24):
        x, y = int(lm[i, 0]), int(lm[i, 1])
        assert img[:, y, x].mean() < img[:, y - 3, x].mean() - 0.05
    # the lips are redder than they are blue; the lip line is darker than the skin
    lip = pix(51)
    assert lip[0] > lip[2]
    # the nose tip lies inside the face box; the box contains all landmarks
    x0, y0, x1, y1 = b.box[0]
    assert x0 < lm[30, 0] < x1 and y0 < lm[30, 1] < y1


def test_jaw_end_points_on_face_outline(renderer):
    p = _short_hair(neutral_params(1))
    p.identity[:, 24:26] = torch.tensor([0.6, 1.0])  # a light background, unlike the skin
    b = renderer.render(p)
    img = (b.images[0] + 1) / 2
    bg = img[:, 2, 2]
    for i, outward in ((0, -1), (16, 1)):
        x, y = b.landmarks[0, i]
        inside = img[:, int(y), int(x - outward * 2)]
        outside = img[:, int(y), int(x + outward * 4)]
        assert (inside - bg).abs().sum() > 0.15, "point must be on the face"
        assert (outside - inside).abs().sum() > 0.1, "a few pixels outward the face ends (ear, hair or background)"


def test_face_size_is_ffhq_like(renderer):
    lm, _, _ = renderer.landmarks(sample_params(400, seed=0))
    size = (lm[:, 0] - lm[:, 16]).norm(dim=1) / RES
    assert 0.52 < size.mean() < 0.58


def test_invisible_points_flagged_when_head_turns(renderer):
    p = _short_hair(neutral_params(1))
    left = renderer.render(_with_pose(p, yaw=55))
    right = renderer.render(_with_pose(p, yaw=-55))
    # yaw > 0 turns the nose to image right: the image-left jaw stays, the image-right jaw hides
    assert left.visible[0, 0] and not left.visible[0, 16]
    assert right.visible[0, 16] and not right.visible[0, 0]
    front = renderer.render(p)
    assert front.visible.all()


# ---------------------------------------------------------------- sign conventions
def test_positive_yaw_moves_nose_right_positive_pitch_moves_it_up(renderer):
    p = neutral_params(1)
    lm0 = renderer.render(p).landmarks[0]
    rel = lambda lm: lm[30] - lm[27:36].mean(0) * 0 - (lm[0] + lm[16]) / 2
    yaw = renderer.render(_with_pose(p, yaw=30)).landmarks[0]
    assert rel(yaw)[0] > rel(lm0)[0] + 2
    pitch = renderer.render(_with_pose(p, pitch=20)).landmarks[0]
    assert rel(pitch)[1] < rel(lm0)[1] - 1  # image y points down


@pytest.mark.parametrize("roll", [-25.0, 12.0, 30.0])
def test_roll_rotates_landmarks_counter_clockwise(renderer, roll):
    p = neutral_params(1)
    a = renderer.render(p).landmarks[0].double()
    b = renderer.render(_with_pose(p, roll=roll)).landmarks[0].double()
    a, b = a - a.mean(0), b - b.mean(0)
    # angle of the best rotation b ~ R a, measured in a y-up frame (flip image y)
    a[:, 1], b[:, 1] = -a[:, 1], -b[:, 1]
    angle = math.degrees(math.atan2(float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()), float((a * b).sum())))
    assert abs(angle - roll) < 1.0
    # and it is a rotation: shape unchanged
    assert abs(float(b.norm()) - float(a.norm())) / float(a.norm()) < 0.01


# ---------------------------------------------------------------- identity vs expression
def test_identity_change_keeps_pose_and_expression_labels(renderer):
    p = sample_params(4, seed=11)
    q = p.replace(identity=sample_params(4, seed=12).identity)
    a, b = renderer.render(p), renderer.render(q)
    assert torch.equal(a.pose, b.pose) and torch.equal(a.expression, b.expression)
    assert not torch.allclose(a.landmarks, b.landmarks)


def test_expression_moves_only_brow_eye_mouth_landmarks(renderer):
    p = _with_pose(sample_params(3, seed=5), yaw=10, pitch=-5, roll=4)
    q = p.replace(expression=torch.tensor([[1.0, 1.0, 1.0, 0.0]]).repeat(3, 1))
    a, b = renderer.landmarks(p)[0], renderer.landmarks(q)[0]
    moved = (a - b).norm(dim=-1)
    for region in ("jaw", "nose"):
        assert moved[:, list(REGIONS[region])].max() < 1e-3, region
    for region in ("brows", "eyes", "mouth"):
        assert moved[:, list(REGIONS[region])].max() > 0.5, region
    # mouth opening: inner lower lip goes down (image y grows); blink: lids meet
    o = renderer.landmarks(p.replace(expression=torch.tensor([[1.0, 0.0, 0.0, 1.0]]).repeat(3, 1)))[0]
    c = renderer.landmarks(p.replace(expression=torch.tensor([[0.0, 0.0, 0.0, 1.0]]).repeat(3, 1)))[0]
    assert ((o[:, 66, 1] - o[:, 62, 1]) > (c[:, 66, 1] - c[:, 62, 1]) + 2).all()
    closed = renderer.landmarks(p.replace(expression=torch.tensor([[0.0, 0.0, 0.0, 0.0]]).repeat(3, 1)))[0]
    assert (closed[:, 37] - closed[:, 41]).norm(dim=-1).max() < 0.3


def test_expression_visible_in_pixels(renderer):
    p = _short_hair(neutral_params(1))
    smile = p.replace(expression=torch.tensor([[0.8, 1.0, 0.8, 1.0]]))
    a, b = renderer.render(p).images, renderer.render(smile).images
    assert (a - b).abs().amax(1).gt(0.2).sum() > 30  # dozens of pixels change clearly at 64x64


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("group,col,value", [("pose", 0, 75.0), ("pose", 2, -50.0), ("identity", 3, 1.5),
                                             ("expression", 0, -0.2), ("light", 2, float("nan"))])
def test_out_of_range_parameters_rejected(renderer, group, col, value):
    p = neutral_params(2)
    t = getattr(p, group).clone()
    t[1, col] = value
    with pytest.raises(ParameterRangeError, match=group):
        renderer.render(p.replace(**{group: t}))


def test_bad_shapes_and_settings_rejected(renderer):
    p = neutral_params(2)
    with pytest.raises(ParameterRangeError, match="pose"):
        renderer.render(p.replace(pose=torch.zeros(2, 2)))
    with pytest.raises(ValueError, match="res"):
        FaceRenderer(res=4)
    with pytest.raises(ValueError, match="pose_dist"):
        sample_params(2, pose_dist="frontalish")
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(0))


def test_explicit_params_render_same_identity_other_pose(renderer, batch):
    p = batch.params[:2]
    turned = renderer.render(_with_pose(p, yaw=40))
    assert torch.equal(turned.identity, p.identity)
    again = renderer.render(p)
    torch.testing.assert_close(again.images, batch.images[:2], atol=2e-5, rtol=0)
    assert np.isfinite(turned.images.numpy()).all()
