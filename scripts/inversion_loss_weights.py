"""Which loss weights invert this world's renders best: the pixels alone, or with the perceptual and identity terms.

Inverts N synthface renders (seed 777, never used elsewhere) with `genfields.editing.inversion` at each weight
setting and prints, per setting, each render's L1, MS-SSIM and the identity judge's similarity between the
render and its reconstruction (the judge is not one of the losses). The defaults of `InversionConfig` come
from this comparison (docs/inversion.md).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/inversion_loss_weights.py --n 3 --steps 300
"""

from __future__ import annotations

import argparse
import json
import time

from genfields.editing.inversion import (STATS_SAMPLES, STATS_SEED, InversionConfig, invert, reconstruct,
                                         reconstruction_measures)
from genfields.editing.regularizer import mapped_statistics
from genfields.perception import load_judges, load_perception
from genfields.stylegan2 import load_generator
from genfields.synthface import render_batch

SETTINGS = ({"perceptual": 0.0, "identity": 0.0}, {"perceptual": 0.3, "identity": 0.1},
            {"perceptual": 1.0, "identity": 0.5}, {"perceptual": 0.3, "identity": 0.1, "lr": 0.1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synth64")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--space", default="s")
    args = parser.parse_args()
    G, nets, judges = load_generator(args.model), load_perception("synth"), load_judges("synth")
    stats = mapped_statistics(G, STATS_SAMPLES, STATS_SEED)
    renders = render_batch(args.n, res=G.config.img_resolution, seed=777).images
    for setting in SETTINGS:
        start, rows = time.monotonic(), []
        cfg = InversionConfig(space=args.space, steps=args.steps, **setting)
        for i in range(args.n):
            target = renders[i:i + 1]
            rows.append(reconstruction_measures(target, reconstruct(G, invert(G, nets, target, cfg, stats)), judges))
        print(json.dumps({"setting": setting, "seconds": round(time.monotonic() - start, 1),
                          "per_render": [{k: round(v, 4) for k, v in r.items()} for r in rows]}), flush=True)


if __name__ == "__main__":
    main()
