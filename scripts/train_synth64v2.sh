#!/usr/bin/env bash
# Train (or resume) synth64v2: synth64's architecture with StyleGAN2's complete recipe from the start
# (lazy path-length regularisation, weight 2 every 4 steps on half the batch, decay 0.01; style mixing
# 0.9; the mapping's learning rate x10 and minibatch-std group 8 and R1 gamma 0.2 as synth64 learned
# them; EMA 10 kimg). Run it in chunks, over days; each chunk resumes exactly.
#   scripts/train_synth64v2.sh [MAX_MINUTES] [TRAIN-GAN OPTIONS...]
#   scripts/train_synth64v2.sh 150 --kimg 2500                      # a longer run (recorded)
#   scripts/train_synth64v2.sh 150 --change style_mixing=0.5         # a recipe change from here on (recorded)
set -euo pipefail
MINUTES="${1:-120}"
shift $(( $# > 0 ? 1 : 0 ))
exec "$(dirname "$0")/train_gan_chunk.sh" train-gan-synth64v2-seed0 29612 "$MINUTES" \
  --arch synth64 --kimg 1500 --batch 32 --seed 0 --r1-gamma 0.2 --pl-weight 2 --lr-mapping-scale 10 \
  --mbstd-group 8 "$@"
