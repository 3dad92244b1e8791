"""3DDFA_V2 E_lnd/E_pose: official file layout, the allow-listed .pkl reader, and the 62-parameter decoding by hand."""

from __future__ import annotations

import copy
import hashlib
import math
import pickle

import numpy as np
import pytest
import torch

from genfields.downloads import DownloadError, asset_path, get_asset
from genfields.errors import CheckpointError, UnsafePickleError
from genfields.perception.tddfa import (SHIPPED_DIR, SHIPPED_STATS, SHIPPED_WEIGHTS, TDDFAMobileNet, load_bfm_keypoints,
                                        load_param_stats, load_shipped_tddfa, load_tddfa, pose_from_matrix,
                                        read_pickle_arrays, roi_box_from_bbox, roi_box_from_landmarks,
                                        genfields_pose_from_matrix)
from genfields.perception.weights import state_shapes
from conftest import SHARED
from official_files import path_of, random_bfm, random_state, write_bfm, write_tddfa_stats, write_tddfa_weights

# MobileNet-V1 at width 1 by hand: conv1 3x3x3x32 + BN, then per depth-wise block a 3x3
# depth-wise conv, a 1x1 conv and two BNs, and the 1024 -> 62 fc.
_BLOCKS = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 5 + \
          [(512, 1024), (1024, 1024)]
MB1_PARAMETERS = 27 * 32 + 2 * 32 + sum(9 * i + 2 * i + i * o + 2 * o for i, o in _BLOCKS) + 1024 * 62 + 62


def test_official_layout():
    shapes = state_shapes(TDDFAMobileNet())
    assert len(shapes) == 1 + 4 + 13 * (2 + 2 * 4) + 2  # conv1 + bn1, 13 blocks (2 convs, 2 BNs), fc
    assert shapes["conv1.weight"] == (32, 3, 3, 3)
    assert shapes["dw2_1.conv_dw.weight"] == (32, 1, 3, 3)
    assert shapes["dw5_6.conv_sep.weight"] == (1024, 512, 1, 1)
    assert shapes["dw6.bn_sep.running_var"] == (1024,)
    assert shapes["fc.weight"] == (62, 1024)
    assert sum(p.numel() for p in TDDFAMobileNet().parameters()) == MB1_PARAMETERS


def _hand_files(folder, std: float = 2.0, mean: float = 0.5):
    """Files whose network ignores the image (fc weight 0) and outputs known parameters:
    P = [2 I | (3, 4, 0)], shape coefficient 0 = 2, expression coefficient 3 = -1; landmark j's
    mean vertex is (10 + j, 20, 5), shape basis 0 moves x by 1, expression basis 3 moves y by 1."""
    params = np.zeros(62, np.float32)
    params[:12] = [2, 0, 0, 3, 0, 2, 0, 4, 0, 0, 2, 0]
    params[12], params[52 + 3] = 2.0, -1.0
    state = random_state(state_shapes(TDDFAMobileNet()), seed=1)
    state["fc.weight"] = torch.zeros(62, 1024)
    state["fc.bias"] = torch.from_numpy((params - mean) / std)
    write_tddfa_weights(folder, state=state)
    write_tddfa_stats(folder, np.full(62, mean), np.full(62, std))
    n = 80
    vertices = np.arange(5, 73)  # landmark j is vertex 5 + j
    u = np.zeros((n, 3))
    u[vertices] = np.stack([10 + np.arange(68), np.full(68, 20.0), np.full(68, 5.0)], 1)
    w_shp, w_exp = np.random.default_rng(0).normal(size=(3 * n, 45)), np.random.default_rng(1).normal(size=(3 * n, 12))
    w_shp[3 * vertices, 0], w_shp[3 * vertices + 1, 0], w_shp[3 * vertices + 2, 0] = 1, 0, 0
    w_exp[3 * vertices, 3], w_exp[3 * vertices + 1, 3], w_exp[3 * vertices + 2, 3] = 0, 1, 0
    write_bfm(folder, u.reshape(-1), w_shp, w_exp, vertices)
    return state


def test_official_files_load_and_decode_by_hand(tmp_path):
    state = _hand_files(tmp_path)
    est = load_tddfa(path_of(tmp_path, "3ddfa-mobilenet"), path_of(tmp_path, "3ddfa-param-mean-std"),
                     path_of(tmp_path, "3ddfa-bfm"), passes=1)
    loaded = est.network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    images = torch.zeros(2, 3, 100, 100)
    found = est(images, box=torch.tensor([[10.0, 20.0, 70.0, 80.0]] * 2))
    # vertex j = (12 + j, 19, 5) -> P: (27 + 2j, 42, 10); 3DDFA crop coordinates (26 + 2j, 120 - 42);
    # box scale 60 / 120 = 0.5: official x = (26 + 2j) * 0.5 + 10, y = 78 * 0.5 + 20; ours 0.5 px further.
    j = torch.arange(68, dtype=torch.float32)
    expected = torch.stack([23.5 + j, torch.full((68,), 59.5)], -1)
    torch.testing.assert_close(found.landmarks, expected.expand(2, -1, -1))
    torch.testing.assert_close(found.pose, torch.zeros(2, 3))


def test_pose_angles_by_hand():
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    rotations = {  # R[2, 0] = sin(yaw); R[2, 1] / R[2, 2] = tan(pitch); R[1, 0] / R[0, 0] = tan(roll)
        (30.0, 0.0, 0.0): [[c, 0, -s], [0, 1, 0], [s, 0, c]],
        (0.0, 30.0, 0.0): [[1, 0, 0], [0, c, -s], [0, s, c]],
        (0.0, 0.0, 30.0): [[c, -s, 0], [s, c, 0], [0, 0, 1]],
        (90.0, 45.0, 0.0): [[0, -0.5 ** 0.5, -0.5 ** 0.5], [0, 0.5 ** 0.5, -0.5 ** 0.5], [1, 0, 0]],  # gimbal lock
    }
    for angles, R in rotations.items():
        P = torch.cat([3.0 * torch.tensor(R), torch.tensor([[5.0], [6.0], [7.0]])], 1)  # the scale cancels
        torch.testing.assert_close(pose_from_matrix(P[None])[0], torch.tensor(angles), atol=1e-4, rtol=0)


def test_roi_boxes_by_hand():
    lm = torch.full((1, 68, 2), 0.5)
    lm[0, 1] = torch.tensor([10.5, 20.5])  # official frame (0.5 px lower): extent 10 x 20 around (5, 10)
    half = 10 * math.sqrt(2)  # side 20 * sqrt(2)
    torch.testing.assert_close(roi_box_from_landmarks(lm),
                               torch.tensor([[5 - half, 10 - half, 5 + half, 10 + half]], dtype=torch.float64))
    # detector box 100 x 80 at (10, 20): mean side 90, centre (60, 60 + 0.14 * 90 = 72.6), side int(1.58 * 90) = 142
    torch.testing.assert_close(roi_box_from_bbox(torch.tensor([[10.0, 20.0, 110.0, 100.0]])),
                               torch.tensor([[-11.0, 1.6, 131.0, 143.6]], dtype=torch.float64))


def test_pose_convention_against_the_official_angles():
    # A head turned so that its nose (model z) moves toward image right (+x), up (+y, the model frame's up), or
    # rotated counter-clockwise: positive yaw, pitch, roll in genfields' convention; 3DDFA_V2 negates yaw and pitch.
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    yaw_right = torch.tensor([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0]])
    pitch_up = torch.tensor([[1, 0, 0, 0], [0, c, s, 0], [0, -s, c, 0]])
    roll_ccw = torch.tensor([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0]])
    P = 0.001 * torch.stack([yaw_right, pitch_up, roll_ccw])  # the scale cancels
    torch.testing.assert_close(pose_from_matrix(P), torch.tensor([[-20.0, 0, 0], [0, -20.0, 0], [0, 0, 20.0]]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(genfields_pose_from_matrix(P), 20 * torch.eye(3), atol=1e-4, rtol=0)
    from genfields.synthface.geometry import rotation_matrix  # the renderer's own rotation, any pose

    pose = torch.tensor([[30.0, -15.0, 10.0], [-40.0, 25.0, -20.0]])
    P = torch.cat([0.002 * rotation_matrix(pose).float(), torch.ones(2, 3, 1)], dim=2)
    torch.testing.assert_close(genfields_pose_from_matrix(P), pose, atol=1e-4, rtol=0)


def test_network_sees_bgr_normalised_crop(tmp_path):
    _hand_files(tmp_path)
    est = load_tddfa(path_of(tmp_path, "3ddfa-mobilenet"), path_of(tmp_path, "3ddfa-param-mean-std"),
                     path_of(tmp_path, "3ddfa-bfm"), passes=1)
    seen = []
    est.network.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 60, 60)
    est(red, box=torch.tensor([[0.0, 0.0, 120.0, 120.0]]))  # the right and lower halves lie outside: black
    x = seen[0]
    assert x.shape == (1, 3, 120, 120)
    inside, outside = x[0, :, :50, :50], x[0, :, 70:, 70:]
    torch.testing.assert_close(inside[2], torch.full_like(inside[2], 127.5 / 128))  # red is channel 2 (BGR)
    torch.testing.assert_close(inside[0], torch.full_like(inside[0], -127.5 / 128))
    torch.testing.assert_close(outside, torch.full_like(outside, -127.5 / 128))  # (0 - 127.5) / 128


def test_random_weights_are_differentiable_and_refine_the_box(tmp_path):
    _hand_files(tmp_path)
    write_tddfa_weights(tmp_path, seed=3)
    random_bfm(tmp_path)
    est = load_tddfa(path_of(tmp_path, "3ddfa-mobilenet"), path_of(tmp_path, "3ddfa-param-mean-std"),
                     path_of(tmp_path, "3ddfa-bfm"), passes=2)
    images = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    found = est(images)
    assert found.landmarks.shape == (2, 68, 2) and found.pose.shape == (2, 3)
    (found.landmarks.sum() + found.pose.sum()).backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    single = copy.copy(est)
    single.passes = 1
    x = images.detach()
    roi = roi_box_from_landmarks(single(x).landmarks)  # the second pass crops around the first pass's landmarks
    torch.testing.assert_close(est(x).landmarks, est.landmarks_of(est.parameters_62(x, roi), roi))


def test_pickles_go_through_the_allow_list(tmp_path):
    write_tddfa_stats(tmp_path, np.arange(62), np.ones(62))
    mean, std = load_param_stats(path_of(tmp_path, "3ddfa-param-mean-std"))
    assert mean.dtype == torch.float32 and torch.equal(mean, torch.arange(62.0)) and torch.equal(std, torch.ones(62))
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")
    with pytest.raises(UnsafePickleError, match="os.system"):
        read_pickle_arrays(evil, ["mean"])
    (tmp_path / "objects.pkl").write_bytes(pickle.dumps({"mean": np.array([1, "a"], dtype=object)}, protocol=3))
    with pytest.raises(UnsafePickleError, match="object"):
        read_pickle_arrays(tmp_path / "objects.pkl", ["mean"])
    (tmp_path / "short.pkl").write_bytes(pickle.dumps({"mean": np.zeros(3)}, protocol=3))
    with pytest.raises(CheckpointError, match=r"missing \['std'\]"):
        load_param_stats(tmp_path / "short.pkl")
    (tmp_path / "wrong.pkl").write_bytes(pickle.dumps({"mean": np.zeros(61), "std": np.ones(61)}, protocol=4))
    with pytest.raises(CheckpointError, match="62 values"):
        load_param_stats(tmp_path / "wrong.pkl")


def test_bfm_keypoint_rows(tmp_path):
    rng = np.random.default_rng(0)
    u, w_shp, w_exp = rng.normal(size=300), rng.normal(size=(300, 45)), rng.normal(size=(300, 12))
    vertices = rng.permutation(100)[:68]
    write_bfm(tmp_path, u, w_shp, w_exp, vertices)
    ub, sb, eb = load_bfm_keypoints(path_of(tmp_path, "3ddfa-bfm"))
    rows = (3 * vertices[:, None] + np.arange(3)).reshape(-1)
    np.testing.assert_allclose(ub.numpy(), u[rows].astype(np.float32))
    np.testing.assert_allclose(sb.numpy(), w_shp[rows, :40].astype(np.float32))
    np.testing.assert_allclose(eb.numpy(), w_exp[rows, :10].astype(np.float32))
    write_bfm(tmp_path, u, w_shp[:, :30], w_exp, vertices)
    with pytest.raises(CheckpointError, match="w_shp"):
        load_bfm_keypoints(path_of(tmp_path, "3ddfa-bfm"))


def test_wrong_weights_and_missing_files(tmp_path, monkeypatch):
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(32, 3, 3, 3)}}, tmp_path / "bad.pth")
    _hand_files(tmp_path)
    refused = r"not the 3DDFA_V2 MobileNet \(width 1\) state dict: missing \['bn1.bias'"
    with pytest.raises(CheckpointError, match=refused):
        load_tddfa(tmp_path / "bad.pth", path_of(tmp_path, "3ddfa-param-mean-std"), path_of(tmp_path, "3ddfa-bfm"))
    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path / "empty"))
    with pytest.raises(DownloadError, match="mb1_120x120.pth.*genfields download 3ddfa-mobilenet"):
        load_tddfa()


def test_real_files_if_downloaded():
    paths = [asset_path(get_asset(n)) for n in ("3ddfa-mobilenet", "3ddfa-param-mean-std", "3ddfa-bfm")]
    if not all(p.is_file() for p in paths):
        pytest.skip("real 3DDFA_V2 files not downloaded; run `genfields download 3ddfa-mobilenet "
                    "3ddfa-param-mean-std 3ddfa-bfm`")
    est = load_tddfa()
    found = est(torch.zeros(1, 3, 256, 256))
    assert torch.isfinite(found.landmarks).all() and torch.isfinite(found.pose).all()


def test_official_layout_with_landmark_head_at_both_widths(tmp_path):
    """The official files carry the unused `fc_lm` head: skipped as the official inference does; width from the file."""
    for width in (1.0, 0.5):
        state = write_tddfa_weights(tmp_path, seed=2, width=width)
        written = torch.load(path_of(tmp_path, "3ddfa-mobilenet"), weights_only=True)["state_dict"]
        assert "module.fc_lm.weight" in written
        random_bfm(tmp_path)
        write_tddfa_stats(tmp_path, np.zeros(62), np.ones(62))
        est = load_tddfa(path_of(tmp_path, "3ddfa-mobilenet"), path_of(tmp_path, "3ddfa-param-mean-std"),
                         path_of(tmp_path, "3ddfa-bfm"))
        assert est.network.width == width and est.network.conv1.out_channels == int(32 * width)
        assert all(torch.equal(est.network.state_dict()[k], v) for k, v in state.items())
    other = torch.load(path_of(tmp_path, "3ddfa-mobilenet"), weights_only=True)
    other["state_dict"]["module.fc_extra.weight"] = torch.zeros(3)  # anything else is still refused
    torch.save(other, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"unexpected \['fc_extra.weight'\]"):
        load_tddfa(tmp_path / "extra.pth", path_of(tmp_path, "3ddfa-param-mean-std"), False)


def test_pose_only_without_the_bfm(tmp_path):
    write_tddfa_weights(tmp_path, seed=4)
    write_tddfa_stats(tmp_path, np.zeros(62), np.ones(62))
    est = load_tddfa(path_of(tmp_path, "3ddfa-mobilenet"), path_of(tmp_path, "3ddfa-param-mean-std"), bfm=False)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    assert est.pose(images).shape == (2, 3) and len(est.run(images)) == 1  # no landmarks: one pass
    with pytest.raises(CheckpointError, match="genfields download 3ddfa-bfm"):
        est(images)


SHARED_3DDFA = SHARED / "weights" / "3ddfa_v2"


def test_shipped_mb05_is_the_official_file_and_loads():
    digests = {SHIPPED_WEIGHTS: "f93ed7f1c4c0382b16d7c18480a5f67473c1917a47475a9823924f38aeb27280",
               SHIPPED_STATS: "090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795"}
    for name, digest in digests.items():
        assert hashlib.sha256((SHIPPED_DIR / name).read_bytes()).hexdigest() == digest
    est = load_shipped_tddfa()  # offline: the BFM only if it was downloaded
    assert est.network.width == 0.5 and est.pose(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_real_mb05_from_shared_loads_with_no_workaround():
    if not (SHARED_3DDFA / "mb05_120x120.pth").is_file():
        pytest.skip(f"real 3DDFA_V2 weights not found at {SHARED_3DDFA} (needs ../shared beside the repo)")
    est = load_tddfa(SHARED_3DDFA / "mb05_120x120.pth", SHARED_3DDFA / "param_mean_std_62d_120x120.pkl", bfm=False)
    shipped = load_tddfa(SHIPPED_DIR / SHIPPED_WEIGHTS, SHIPPED_DIR / SHIPPED_STATS, bfm=False)
    assert est.network.width == 0.5
    assert all(torch.equal(v, shipped.network.state_dict()[k]) for k, v in est.network.state_dict().items())


def test_crop_equals_opencv_resize_bit_for_bit():
    """`resize_like_opencv` against `cv2.resize(INTER_LINEAR)` on 8-bit crops smaller and larger than 120 px."""
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (extra [real]) not installed")
    from genfields.perception.tddfa import resize_like_opencv

    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), (0, 0), 3)  # photo-like
    for h, w in [(37, 41), (103, 104), (120, 120), (150, 151), (299, 233)]:
        for img in (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.ascontiguousarray(smooth[:h, :w])):
            ours = resize_like_opencv(torch.from_numpy(img).permute(2, 0, 1).float(), 120)
            expected = cv2.resize(img, (120, 120), interpolation=cv2.INTER_LINEAR)
            assert torch.equal(ours.permute(1, 2, 0).to(torch.uint8), torch.from_numpy(expected)), (h, w)
