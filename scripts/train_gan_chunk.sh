#!/usr/bin/env bash
# Train (or resume) one GAN run for MINUTES: 2 single-threaded DDP processes, which degrade
# gracefully when other work shares the 2 cores (one 2-thread process does not).
#   scripts/train_gan_chunk.sh RUN_NAME PORT MINUTES [TRAIN-GAN OPTIONS...]   # resumes from a checkpoint
# The run folder, RUN_NAME, lives outside the work tree (GENFIELDS_RUNS, default ~/genfields-runs) so
# that it survives a fresh checkout between sessions. SIGTERM/SIGINT save a checkpoint and stop.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
NAME="$1"
RUN="${GENFIELDS_RUNS:-$HOME/genfields-runs}/$NAME"
PORT="$2"
MINUTES="$3"
shift 3
"$REPO/scripts/gan_checkpoint_sync.sh" restore "$NAME"  # a fresh machine continues from the committed checkpoint
RESUME=""
# a checkpoint, or one left as checkpoint.old/ by a crash between the two renames of a save
{ [ -f "$RUN/checkpoint/state.json" ] || [ -f "$RUN/checkpoint.old/state.json" ]; } && RESUME="--resume"
mkdir -p "$(dirname "$RUN")"
cd "$(dirname "$RUN")"
# torchrun's agent kills its workers when it is signalled itself, before they can save: forward
# SIGTERM/SIGINT to the workers only; each saves a checkpoint and exits, then the agent exits.
OMP_NUM_THREADS=1 "$REPO/.venv/bin/python" -m torch.distributed.run --nproc_per_node=2 --master_port="$PORT" \
  -m genfields train-gan --outdir "$RUN" --max-minutes "$MINUTES" $RESUME "$@" &
AGENT=$!
trap 'pkill -TERM -P "$AGENT"' TERM INT
while true; do  # a trapped signal interrupts `wait`: wait again until the agent has exited
  wait "$AGENT" && status=0 || status=$?
  kill -0 "$AGENT" 2>/dev/null || exit "$status"
done
