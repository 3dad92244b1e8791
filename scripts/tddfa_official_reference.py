"""Write tests/data/tddfa_official/reference.npz: the official 3DDFA_V2 code's outputs on real photos.

Runs a checkout of cleardusk/3DDFA_V2 (imported from --official, never copied here) with the real
mb05 files on the faces listed in FACES, each given the same detector box we give our code (dlib's
HOG box, [left, top, right + 1, bottom + 1]), and records per face and pass (1: from the detector
box, 2: `crop_policy='landmark'` from the first pass's landmarks) the ROI box, the 62 parameters,
the `calc_pose` angles and the 68 landmarks (official pixel frame).

The real BFM is not available here, so the landmarks come from a BFM in the official file format
whose 68 keypoint rows are the synthface average face (scaled to BFM units) plus small random
bases; it is stored in the reference file and fed to both codes alike, which tests the landmark
convention and the second-pass box just as the real BFM would.

The official code needs torchvision only for `transforms.Compose` and NumPy < 1.24 for `np.long`;
run it with a one-class Compose stub on the path and `np.long` set to `np.int64`:

    PYTHONPATH=/work/scratch/issue13/stubs:. .venv/bin/python scripts/tddfa_official_reference.py \
        --official /work/scratch/issue13/official --photos <face_recognition-1.3.0>/tests/test_images \
        --weights /work/shared/weights/3ddfa_v2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "tddfa_official" / "reference.npz"
# (name, source, mirrored): source is "astronaut" (scikit-image) or a file of the face_recognition 1.3.0 sdist.
FACES = (("astronaut", "astronaut", False), ("astronaut_mirrored", "astronaut", True),
         ("obama", "obama.jpg", False), ("obama2", "obama2.jpg", False), ("obama3", "obama3.jpg", False),
         ("biden", "biden.jpg", False), ("obama_partial_face", "obama_partial_face.jpg", False))
BFM_UNITS_PER_PIXEL = 1000.0  # synthface 256-px render units -> BFM units (faces ~75 px wide in the 120 crop)
BFM_BASIS_SCALE = 0.02  # random basis columns, as a fraction of the face's extent per standard deviation


def load_face_image(source: str, mirrored: bool, photos: Path) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a reference face (decoded with PIL, as genfields does)."""
    if source == "astronaut":
        import skimage.data

        rgb = skimage.data.astronaut()
    else:
        rgb = np.asarray(Image.open(photos / source).convert("RGB"))
    return np.ascontiguousarray(rgb[:, ::-1] if mirrored else rgb)


def dlib_box(rgb: np.ndarray) -> np.ndarray:
    """The largest dlib HOG face box as [left, top, right + 1, bottom + 1] (dlib's corners are inclusive)."""
    from genfields.perception.real import dlib_models

    rects = dlib_models()[0](rgb, 1)
    r = max(rects, key=lambda r: r.width() * r.height())
    return np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], np.float64)


def face_bfm(param_std: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Keypoint rows (u [204], w_shp [204, 40], w_exp [204, 10]) of a stand-in BFM: the synthface average
    face in BFM units (x right, y up, z to the camera) and random bases of a plausible size."""
    from genfields.perception.real import generic_head

    head = generic_head()
    u = ((head - head.mean(0)) * BFM_UNITS_PER_PIXEL).astype(np.float32).reshape(-1)
    extent = float(np.ptp(u.reshape(-1, 3)[:, 0]))
    rng = np.random.default_rng(seed)
    w_shp = rng.normal(size=(204, 40)) * BFM_BASIS_SCALE * extent / param_std[12:52]
    w_exp = rng.normal(size=(204, 10)) * BFM_BASIS_SCALE * extent / param_std[52:62]
    return {"bfm_u": u, "bfm_w_shp": w_shp.astype(np.float32), "bfm_w_exp": w_exp.astype(np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of cleardusk/3DDFA_V2")
    parser.add_argument("--photos", type=Path, required=True, help="face_recognition-1.3.0/tests/test_images")
    parser.add_argument("--weights", type=Path, required=True, help="folder of mb05_120x120.pth and the mean/std pkl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    np.long = np.int64  # removed in NumPy 1.24; the official bfm.py still names it
    sys.path.insert(0, str(args.official))
    sys.path.insert(0, str(REPO / "tests"))
    from official_files import write_bfm  # noqa: E402  (our writer of the official BFM format)
    from TDDFA import TDDFA  # noqa: E402  (the official code)
    from utils.pose import calc_pose  # noqa: E402

    import pickle

    stats = pickle.loads((args.weights / "param_mean_std_62d_120x120.pkl").read_bytes())
    bfm = face_bfm(np.asarray(stats["std"], np.float64))
    commit = subprocess.run(["git", "-C", str(args.official), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        bfm_path = Path(tmp) / "bfm_noneck_v3.pkl"  # the official BFMModel takes its triangles from configs/tri.pkl
        write_bfm(Path(tmp), bfm["bfm_u"], bfm["bfm_w_shp"], bfm["bfm_w_exp"], np.arange(68), path=bfm_path)
        tddfa = TDDFA(arch="mobilenet", widen_factor=0.5, checkpoint_fp=str(args.weights / "mb05_120x120.pth"),
                      bfm_fp=str(bfm_path), size=120, num_params=62,
                      param_mean_std_fp=str(args.weights / "param_mean_std_62d_120x120.pkl"))
        rows = {k: [] for k in ("box", "roi", "params", "pose", "landmarks")}
        for name, source, mirrored in FACES:
            rgb = load_face_image(source, mirrored, args.photos)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            box = dlib_box(rgb)
            objs, policy = [list(box) + [1.0]], "box"
            per_pass = {k: [] for k in ("roi", "params", "pose", "landmarks")}
            for _ in range(2):
                params, rois = tddfa(bgr, objs, crop_policy=policy)
                landmarks = tddfa.recon_vers(params, rois, dense_flag=False)[0]
                per_pass["roi"].append(rois[0])
                per_pass["params"].append(params[0])
                per_pass["pose"].append(calc_pose(params[0])[1])
                per_pass["landmarks"].append(landmarks[:2].T)
                objs, policy = [landmarks], "landmark"
            rows["box"].append(box)
            for k, v in per_pass.items():
                rows[k].append(np.asarray(v))
            print(f"{name}: box {np.round(box, 1).tolist()}, pose (official convention) "
                  f"{np.round(per_pass['pose'][-1], 2).tolist()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, names=np.array([f[0] for f in FACES]), sources=np.array([f[1] for f in FACES]),
                        mirrored=np.array([f[2] for f in FACES]), box=np.stack(rows["box"]),
                        roi=np.stack(rows["roi"]).astype(np.float64), params=np.stack(rows["params"]),
                        pose=np.stack(rows["pose"]).astype(np.float64), landmarks=np.stack(rows["landmarks"]),
                        commit=np.array(commit), **bfm)
    print(f"wrote {args.out} (official commit {commit})")


if __name__ == "__main__":
    main()
