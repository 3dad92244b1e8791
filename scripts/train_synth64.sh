#!/usr/bin/env bash
# Train (or resume) the first embedded generator, synth64, with the options its run started with.
#   scripts/train_synth64.sh [MAX_MINUTES] [TRAIN-GAN OPTIONS...]   # resumes automatically from a checkpoint
#   scripts/train_synth64.sh 120 --change r1_gamma=0.2             # a recipe change from here on (recorded)
set -euo pipefail
MINUTES="${1:-120}"
shift $(( $# > 0 ? 1 : 0 ))
exec "$(dirname "$0")/train_gan_chunk.sh" train-gan-synth64-seed0 29611 "$MINUTES" \
  --arch synth64 --kimg 300 --batch 32 --seed 0 --r1-gamma 0.05 "$@"
