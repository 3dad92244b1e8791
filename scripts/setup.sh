#!/usr/bin/env bash
# Create .venv and install genfields into it: PyTorch 2.13.0 (CPU build) first, then the project
# with its test extras. Safe to re-run: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
pip_install() {  # pip install, without this machine's noisy local-index warnings, keeping pip's exit status
  .venv/bin/pip install --quiet --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
  return "${PIPESTATUS[0]}"
}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(not torch.__version__.startswith('2.13.0'))" 2>/dev/null; then
  echo "setup: installing torch==2.13.0 ..."
  pip_install torch==2.13.0
fi
if ! command -v chromium >/dev/null 2>&1; then  # Debian's Chromium, for the explore page's browser test
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium (apt) ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
      echo "setup: chromium did not install; the explore browser test will be skipped"
  else
    echo "setup: no chromium; the explore browser test will be skipped (as root: apt-get install chromium)"
  fi
fi
if ! pip_install -e ".[test,real]"; then
  echo "setup: the optional real-photo backends ([real]) did not install; continuing without them"
  pip_install -e ".[test]"
fi
.venv/bin/python -c "import genfields, torch; print(f'setup: genfields {genfields.__version__}, torch {torch.__version__}')"
