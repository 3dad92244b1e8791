"""facenet InceptionResnetV1 (E_id): official key layout, strict loading of a random-weight file, crop and embedding."""

from __future__ import annotations

import pytest
import torch

from genfields.downloads import DownloadError, asset_path, get_asset
from genfields.errors import CheckpointError
from genfields.perception.facenet import ALIGNED_FACE_BOX, InceptionResnetV1, load_facenet
from genfields.perception.interfaces import IdentityEncoder
from genfields.perception.weights import state_shapes
from official_files import path_of, write_facenet


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = tmp_path_factory.mktemp("facenet")
    return path_of(folder, "facenet-vggface2"), write_facenet(folder)


def test_official_layout():
    shapes = state_shapes(InceptionResnetV1())
    convs = 6 + 5 * 6 + 4 + 10 * 4 + 7 + 6 * 4  # BasicConv2d units: stem, repeat_1, mixed_6a, repeat_2, mixed_7a, Block8s
    assert len(shapes) == convs * 5 + 21 * 2 + 1 + 4 + 2  # + 21 residual 1x1 convs, last_linear, last_bn, logits
    assert shapes["conv2d_1a.conv.weight"] == (32, 3, 3, 3)
    assert shapes["repeat_1.4.branch2.2.conv.weight"] == (32, 32, 3, 3)
    assert shapes["repeat_2.0.branch1.2.conv.weight"] == (128, 128, 7, 1)
    assert shapes["mixed_6a.branch0.conv.weight"] == (384, 256, 3, 3)
    assert shapes["mixed_7a.branch2.2.bn.running_var"] == (256,)
    assert shapes["repeat_3.0.conv2d.weight"] == (1792, 384, 1, 1)
    assert shapes["block8.conv2d.bias"] == (1792,)
    assert shapes["last_linear.weight"] == (512, 1792) and "last_linear.bias" not in shapes
    assert shapes["last_bn.running_mean"] == (512,)
    assert shapes["logits.weight"] == (8631, 512)


def test_random_official_file_loads_strictly(official):
    path, state = official
    enc = load_facenet(path)
    loaded = enc.network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert isinstance(enc, IdentityEncoder) and enc.embedding_dim == 512
    assert not any(p.requires_grad for p in enc.parameters())


def test_embedding_unit_norm_and_differentiable(official):
    torch.set_num_threads(1)
    enc = load_facenet(official[0])
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    e = enc(x)
    assert e.shape == (2, 512)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    enc.similarity(e, e.flip(0)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_crop_is_the_face_box_standardised(official):
    enc = load_facenet(official[0], box=(0.25, 0.25, 0.75, 0.75))
    x = -torch.ones(1, 3, 40, 40)
    x[..., 8:32, 8:32] = 0.5  # the box (10..30) and the pixels its bilinear samples touch
    crop = enc.crop(x)
    assert crop.shape == (1, 3, 160, 160)
    torch.testing.assert_close(crop, torch.full_like(crop, 0.5 * 127.5 / 128))  # (x255 - 127.5) / 128
    assert ALIGNED_FACE_BOX[2] - ALIGNED_FACE_BOX[0] == pytest.approx(ALIGNED_FACE_BOX[3] - ALIGNED_FACE_BOX[1])


def test_wrong_file_and_missing_download(tmp_path, monkeypatch):
    torch.save({"last_linear.weight": torch.zeros(128, 1792)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"not the facenet.*last_linear\.weight"):
        load_facenet(tmp_path / "bad.pt")
    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path / "empty"))
    with pytest.raises(DownloadError, match="20180402-114759-vggface2.pt.*genfields download facenet-vggface2"):
        load_facenet()


def test_real_weights_if_downloaded():
    path = asset_path(get_asset("facenet-vggface2"))
    if not path.is_file():
        pytest.skip(f"real weights not downloaded ({path}); run `genfields download facenet-vggface2`")
    enc = load_facenet()
    e = enc(torch.zeros(1, 3, 256, 256))
    assert torch.isfinite(e).all()
