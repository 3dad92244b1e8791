#!/usr/bin/env bash
# Train every editor `genfields reproduce` needs (paper, wspace, the Table 2 ablations, the five
# Table 3 masks, then Table 1's further operating points and the paper+id / paper+ids extensions),
# one after another, in resumable chunks: finished runs are skipped, interrupted ones resume. Each
# run is one process of 2 threads (1.2x faster here than 2 single-threaded DDP processes:
# docs/benchmarks.md, "Editor training"); a run started under DDP resumes under DDP (its
# checkpoint's world size), so a run is never split between the two launches.
#   scripts/train_editors.sh [MAX_MINUTES] [EDITORS_DIR] [STEPS]
# Defaults: 120 minutes, ${GENFIELDS_RUNS:-~/genfields-runs}/editors-$PRESET, the preset's steps;
# PRESET=tiny16 for a smoke run; ONLY="paper default no-concat" trains just those (in that order).
# DEVICE=cuda PARALLEL=8: each editor as one process on that device, PARALLEL of them at once (a GPU
# has room for several of these small runs).
# Afterwards: genfields reproduce --preset $PRESET --editors EDITORS_DIR --out report/
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
GF="$REPO/.venv/bin/genfields"
MINUTES="${1:-120}"
PRESET="${PRESET:-synth64}"
EDITORS="${2:-${GENFIELDS_RUNS:-$HOME/genfields-runs}/editors-$PRESET}"
STEPS="${3:-}"
DEADLINE=$(( $(date +%s) + ${MINUTES%.*} * 60 ))
mkdir -p "$EDITORS"
cd "$(dirname "$EDITORS")"   # the plan's relative data/ folder lives beside the editors

mapfile -t PLAN < <(OMP_NUM_THREADS=2 "$GF" reproduce --preset "$PRESET" --plan --editors "$EDITORS")
read -r -a MAKE <<< "${PLAN[0]}"
DATA="${MAKE[-1]}"
[ -f "$DATA/dataset.json" ] || OMP_NUM_THREADS=2 "$GF" "${MAKE[@]:1}" --threads 2

RUNS=("${PLAN[@]:1}")
if [ -n "${ONLY:-}" ]; then
  RUNS=()
  for name in $ONLY; do
    found=""
    for line in "${PLAN[@]:1}"; do [[ "$line" == *"--outdir $EDITORS/$name" || "$line" == *"--outdir $EDITORS/$name "* ]] && found="$line"; done
    [ -n "$found" ] || { echo "ONLY: no editor '$name' in the plan" >&2; exit 2; }
    RUNS+=("$found")
  done
fi

for line in "${RUNS[@]}"; do
  read -r -a CMD <<< "$line"
  for i in "${!CMD[@]}"; do [ "${CMD[$i]}" = "--outdir" ] && OUT="${CMD[$((i + 1))]}"; done
  if [ -f "$OUT/status.json" ] && grep -q '"done": true' "$OUT/status.json"; then
    echo "done already: $OUT"; continue
  fi
  LEFT=$(( (DEADLINE - $(date +%s)) / 60 ))
  if [ "$LEFT" -lt 2 ]; then echo "out of time: rerun to continue"; exit 0; fi
  EXTRA=(--max-minutes "$LEFT" --sample-every 1000)
  [ -n "$STEPS" ] && EXTRA+=(--steps "$STEPS")
  if [ -f "$OUT/checkpoint/state.json" ]; then
    ARGS=(train-editor --outdir "$OUT" --resume --max-minutes "$LEFT")
    [ -n "$STEPS" ] && ARGS+=(--steps "$STEPS")
  else
    ARGS=("${CMD[@]:1}" "${EXTRA[@]}")
  fi
  echo "== ${ARGS[*]}"
  if [ -n "${DEVICE:-}" ]; then
    while [ "$(jobs -rp | wc -l)" -ge "${PARALLEL:-1}" ]; do wait -n || true; done
    ARGS+=(--device "$DEVICE")  # a run may resume on another device
    mkdir -p "$OUT"
    OMP_NUM_THREADS=2 "$GF" "${ARGS[@]}" > "$OUT.log" 2>&1 &
  elif [ -f "$OUT/checkpoint/state.json" ] && grep -q '"world_size": 2' "$OUT/checkpoint/state.json"; then
    OMP_NUM_THREADS=1 "$REPO/.venv/bin/python" -m torch.distributed.run --nproc_per_node=2 --master_port=29621 \
      -m genfields "${ARGS[@]}"
  else
    OMP_NUM_THREADS=2 "$GF" "${ARGS[@]}"
  fi
done
wait
