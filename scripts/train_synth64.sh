#!/usr/bin/env bash
# Train (or resume) the shipped synth64 GAN: 2 single-threaded DDP processes, which degrade
# gracefully when other work shares the 2 cores (one 2-thread process does not).
#   scripts/train_synth64.sh [MAX_MINUTES] [TRAIN-GAN OPTIONS...]   # resumes automatically from a checkpoint
#   scripts/train_synth64.sh 120 --change r1_gamma=0.2             # a recipe change from here on (recorded)
# The run folder lives outside the work tree (GENFIELDS_RUNS, default ~/genfields-runs) so that it
# survives a fresh checkout between sessions.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${GENFIELDS_RUNS:-$HOME/genfields-runs}/train-gan-synth64-seed0"
MINUTES="${1:-120}"
shift $(( $# > 0 ? 1 : 0 ))
RESUME=""
[ -f "$RUN/checkpoint/state.json" ] && RESUME="--resume"
mkdir -p "$(dirname "$RUN")"
cd "$(dirname "$RUN")"
# torchrun's agent kills its workers when it is signalled itself, before they can save: forward
# SIGTERM/SIGINT to the workers only; each saves a checkpoint and exits, then the agent exits.
OMP_NUM_THREADS=1 "$REPO/.venv/bin/python" -m torch.distributed.run --nproc_per_node=2 --master_port=29611 \
  -m genfields train-gan --arch synth64 --outdir "$RUN" --kimg 300 --batch 32 --seed 0 --r1-gamma 0.05 \
  --max-minutes "$MINUTES" $RESUME "$@" &
AGENT=$!
trap 'pkill -TERM -P "$AGENT"' TERM INT
while true; do  # a trapped signal interrupts `wait`: wait again until the agent has exited
  wait "$AGENT" && status=0 || status=$?
  kill -0 "$AGENT" 2>/dev/null || exit "$status"
done
