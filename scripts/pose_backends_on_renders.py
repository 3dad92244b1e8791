"""Every pose backend against the renderer's exact labels on synthface renders (docs/perception.md, "Pose convention").

Renders N faces (256x256, `pose_dist="uniform"`: yaw +-45, pitch and roll +-30 degrees) and asks each
available backend for yaw, pitch, roll in genfields' convention: the shipped synthetic network, dlib +
PnP, and 3DDFA_V2 (shipped official mb05) from dlib's box and from the aligned-face box (and, for
comparison, 3DDFA_V2's own calc_pose angles with only their signs flipped). Prints per
backend and angle: faces answered, correlation with the label, least-squares slope, mean offset
(estimate - label), MAE, and the MAE once the mean offset is removed.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/pose_backends_on_renders.py --n 100 --seed 7
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

ANGLES = ("yaw", "pitch", "roll")


def agreement(estimate: np.ndarray, label: np.ndarray) -> dict[str, dict[str, float]]:
    """Per angle: correlation, slope of estimate on label, mean offset, MAE and MAE without the offset."""
    out = {}
    for k, name in enumerate(ANGLES):
        e, t = estimate[:, k], label[:, k]
        offset = float((e - t).mean())
        out[name] = {"corr": float(np.corrcoef(e, t)[0, 1]), "slope": float(np.polyfit(t, e, 1)[0]),
                     "offset": offset, "mae": float(np.abs(e - t).mean()),
                     "mae_offset_removed": float(np.abs(e - t - offset).mean())}
    return out


def per_image(fn, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Run `fn` on each image [1, 3, H, W]; (poses of the answered ones [M, 3], answered mask [N])."""
    from genfields.perception.real import NoFaceError

    poses, ok = [], []
    for i in range(images.shape[0]):
        try:
            poses.append(np.asarray(fn(images[i:i + 1]), np.float64).reshape(3))
            ok.append(True)
        except NoFaceError:
            ok.append(False)
    return np.array(poses).reshape(-1, 3), np.array(ok)


@torch.no_grad()
def measure(n: int, seed: int, res: int = 256) -> dict[str, dict]:
    from genfields.perception.shipped import load_network
    from genfields.perception.tddfa import load_shipped_tddfa
    from genfields.synthface import render_batch

    batch = render_batch(n, res=res, seed=seed, pose_dist="uniform")
    images, labels = batch.images, batch.pose.double().numpy()
    tddfa = load_shipped_tddfa()
    last = tddfa.run(images)[-1]
    flipped = last.official_pose.double().numpy() * [-1, -1, 1]  # the official angles, yaw and pitch negated
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "synth network (synth_landmarks)": (load_network("synth_landmarks")(images).pose.double().numpy(),
                                            np.ones(n, bool)),
        "3DDFA_V2 mb05, aligned-face box": (last.pose.double().numpy(), np.ones(n, bool)),
        "(3DDFA_V2 official calc_pose, yaw and pitch negated; aligned box)": (flipped, np.ones(n, bool)),
    }
    try:
        from genfields.perception.real import DlibTDDFAPose, detect_dlib

        judge = DlibTDDFAPose(tddfa)
        results["dlib + PnP"] = per_image(lambda x: detect_dlib(x).pose, images)
        results["3DDFA_V2 mb05, dlib box"] = per_image(lambda x: judge(x)[0].numpy(), images)
    except ImportError as exc:
        print(f"dlib backends skipped: {exc}")
    report = {}
    for name, (poses, ok) in results.items():
        report[name] = {"answered": int(ok.sum()), "of": n, **agreement(poses, labels[ok])}
    report["_setup"] = {"n": n, "seed": seed, "res": res, "pose_dist": "uniform", "bfm": tddfa.has_bfm}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.n, args.seed)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{args.n} renders, seed {args.seed}, 256 px, uniform poses; 3DDFA_V2 BFM present: {report['_setup']['bfm']}")
    print("| backend | faces | angle | corr | slope | offset (deg) | MAE (deg) | MAE without offset (deg) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in report.items():
        if name.startswith("_"):
            continue
        for angle in ANGLES:
            a = r[angle]
            print(f"| {name} | {r['answered']}/{r['of']} | {angle} | {a['corr']:+.3f} | {a['slope']:.2f} | "
                  f"{a['offset']:+.1f} | {a['mae']:.1f} | {a['mae_offset_removed']:.1f} |")


if __name__ == "__main__":
    main()
