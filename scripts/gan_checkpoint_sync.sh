#!/usr/bin/env bash
# Keep a GAN run resumable across machines: its checkpoint and small records travel in the repository.
#   scripts/gan_checkpoint_sync.sh save RUN_NAME      # run folder -> resumable/RUN_NAME (commit it afterwards)
#   scripts/gan_checkpoint_sync.sh restore RUN_NAME   # resumable/RUN_NAME -> run folder, if it is further along
# The run folder is $GENFIELDS_RUNS/RUN_NAME (default ~/genfields-runs). Saved: checkpoint/, config.json,
# metrics.jsonl, status.json, quality.jsonl and edit_probe.jsonl (with its contact sheets), the latest
# sample grid, and the snapshots at multiples of 250 kimg (the probe's). Other snapshots stay local.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ACTION="$1"
NAME="$2"
RUN="${GENFIELDS_RUNS:-$HOME/genfields-runs}/$NAME"
KEPT="$REPO/resumable/$NAME"
images_seen() {  # the checkpoint's images seen, 0 when there is none
  [ -f "$1/checkpoint/state.json" ] || { echo 0; return; }
  "$REPO/.venv/bin/python" -c "import json, sys; print(json.load(open(sys.argv[1]))['images_seen'])" \
    "$1/checkpoint/state.json"
}
copy_run() {  # copy_run FROM TO: the files listed above, replacing the checkpoint as a whole
  local from="$1" to="$2"
  mkdir -p "$to"
  rm -rf "$to/checkpoint.incoming"
  cp -r "$from/checkpoint" "$to/checkpoint.incoming"
  rm -rf "$to/checkpoint"
  mv "$to/checkpoint.incoming" "$to/checkpoint"
  for f in config.json metrics.jsonl status.json quality.jsonl edit_probe.jsonl; do
    [ -f "$from/$f" ] && cp "$from/$f" "$to/$f"
  done
  [ -d "$from/edit_probe" ] && mkdir -p "$to/edit_probe" && cp -r "$from/edit_probe/." "$to/edit_probe/"
  mkdir -p "$to/samples" "$to/snapshots"
  latest=$(ls "$from/samples" 2>/dev/null | grep '^fakes[0-9]*\.png$' | sort | tail -1 || true)
  if [ -n "$latest" ]; then  # the latest grid only
    find "$to/samples" -maxdepth 1 -name 'fakes[0-9]*.png' ! -name "$latest" -delete
    cp "$from/samples/$latest" "$to/samples/"
  fi
  [ -f "$from/samples/reals.png" ] && cp "$from/samples/reals.png" "$to/samples/"
  for snap in "$from"/snapshots/kimg*; do
    [ -d "$snap" ] || continue
    kimg=$((10#$(basename "$snap" | sed 's/^kimg0*\([0-9]*\).*/0\1/')))
    [ $((kimg % 250)) -eq 0 ] && [ "$kimg" -gt 0 ] && cp -r "$snap" "$to/snapshots/"
  done
  return 0
}
case "$ACTION" in
  save)
    [ -f "$RUN/checkpoint/state.json" ] || { echo "no checkpoint in $RUN" >&2; exit 2; }
    copy_run "$RUN" "$KEPT"
    echo "saved $RUN ($(images_seen "$KEPT") images seen) to $KEPT"
    ;;
  restore)
    have=$(images_seen "$RUN"); kept=$(images_seen "$KEPT")
    if [ "$kept" -gt "$have" ]; then
      copy_run "$KEPT" "$RUN"
      echo "restored $RUN from $KEPT ($kept images seen; the run folder had $have)"
    else
      echo "$RUN is as far as $KEPT or further ($have >= $kept images seen): nothing restored"
    fi
    ;;
  *) echo "usage: $0 save|restore RUN_NAME" >&2; exit 2 ;;
esac
